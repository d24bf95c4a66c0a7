"""
The controller's PodDisruptionBudget: it covers the controller pods and nothing else, and it
never blocks a node drain (at least one of the controller's replicas may always go).
"""

from __future__ import annotations

from tests.deploy_support import (
    Obj,
    by_kind,
    manifest_objects,
    one,
    render_chart,
    values_like_the_manifests,
)


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    assert set(selector) == {"matchLabels"}, "only matchLabels is expected here"
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def _problems(objects: list[Obj]) -> list[str]:
    budgets = by_kind(objects, "PodDisruptionBudget")
    if len(budgets) != 1:
        return [f"expected one PodDisruptionBudget, found {len(budgets)}"]
    spec = budgets[0]["spec"]
    problems = []
    controller = one(objects, "Deployment")
    if not _selects(spec["selector"], controller["spec"]["template"]["metadata"]["labels"]):
        problems.append("the budget does not select the controller pods")
    if any(
        _selects(spec["selector"], daemonset["spec"]["template"]["metadata"]["labels"])
        for daemonset in by_kind(objects, "DaemonSet")
    ):
        problems.append("the budget selects node plugin pods too")
    replicas = controller["spec"].get("replicas", 1)
    if "maxUnavailable" in spec:
        allowed = int(spec["maxUnavailable"])
    else:
        allowed = replicas - int(spec["minAvailable"])
    if allowed < 1:
        problems.append(f"with {replicas} replica(s) the budget allows no eviction: drains hang")
    return problems


def test_the_manifests_budget_the_controller_without_blocking_drains() -> None:
    assert _problems(manifest_objects()) == []


def test_the_check_catches_a_budget_that_blocks_drains() -> None:
    objects = manifest_objects()
    budget = one(objects, "PodDisruptionBudget")
    replicas = one(objects, "Deployment")["spec"]["replicas"]
    budget["spec"] = {"minAvailable": replicas, "selector": budget["spec"]["selector"]}
    assert any("drains hang" in p for p in _problems(objects))


def test_the_chart_renders_it_and_can_leave_it_out() -> None:
    assert _problems(render_chart(values_like_the_manifests())) == []
    values = values_like_the_manifests() | {
        "controller": {"podDisruptionBudget": {"enabled": False}}
    }
    assert by_kind(render_chart(values), "PodDisruptionBudget") == []
