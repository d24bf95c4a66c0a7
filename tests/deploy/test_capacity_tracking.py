"""
Storage capacity tracking is deployed whole: the CSIDriver asks the scheduler to use
CSIStorageCapacity objects, the provisioner makes them (from the driver's GetCapacity), owned
by the controller Deployment, and the controller's ServiceAccount may do exactly that. Half of
it is worse than none: ``storageCapacity: true`` with no objects leaves every pod unschedulable.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from tests.deploy_support import (
    CONTROLLER_CAPABILITIES,
    Obj,
    by_kind,
    containers,
    manifest_objects,
    one,
    render_chart,
    values_like_the_manifests,
)


CAPACITY_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}


def _provisioner(objects: list[Obj]) -> Obj:
    return containers(one(objects, "Deployment"))["csi-provisioner"]


def _env(container: Obj) -> dict[str, str]:
    """Environment variable -> the pod field it comes from."""
    return {
        e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
        for e in container.get("env", [])
    }


def _granted(objects: list[Obj], account: str, namespace: str) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) the ServiceAccount may use in ``namespace``."""
    roles = {
        (o["kind"], o["metadata"]["name"]): o
        for o in objects
        if o["kind"] in {"Role", "ClusterRole"}
    }
    granted: set[tuple[str, str, str]] = set()
    for binding in by_kind(objects, "RoleBinding") + by_kind(objects, "ClusterRoleBinding"):
        if binding["kind"] == "RoleBinding" and binding["metadata"]["namespace"] != namespace:
            continue
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == account and s["namespace"] == namespace
            for s in binding["subjects"]
        ):
            continue
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    granted |= {(group, resource, verb) for verb in rule["verbs"]}
    return granted


def _capacity_problems(objects: list[Obj]) -> Iterable[str]:
    driver = one(objects, "CSIDriver")["spec"]
    deployment = one(objects, "Deployment")
    provisioner = _provisioner(objects)
    args = provisioner["args"]
    if driver["storageCapacity"] is not True:
        yield "CSIDriver.storageCapacity must be true"
    if "--enable-capacity" not in args:
        yield "the provisioner needs --enable-capacity"
    # pod -> ReplicaSet -> Deployment: the objects go when the Deployment does.
    if "--capacity-ownerref-level=2" not in args:
        yield "the owner of CSIStorageCapacity objects must be the Deployment (level 2)"
    if not any(a.startswith("--capacity-poll-interval=") for a in args):
        yield "the poll interval should be set explicitly"
    env = _env(provisioner)
    if env.get("POD_NAME") != "metadata.name" or env.get("NAMESPACE") != "metadata.namespace":
        yield f"the provisioner needs POD_NAME and NAMESPACE from the pod, has {env}"
    namespace = deployment["metadata"]["namespace"]
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    granted = _granted(objects, account, namespace)
    missing = {("storage.k8s.io", "csistoragecapacities", verb) for verb in CAPACITY_VERBS}
    missing |= {("", "pods", "get"), ("apps", "replicasets", "get")}
    missing -= granted
    if missing:
        yield f"{account} may not {sorted(missing)}"


def test_the_driver_answers_getcapacity() -> None:
    assert "GET_CAPACITY" in CONTROLLER_CAPABILITIES


def test_the_manifests_deploy_capacity_tracking() -> None:
    assert list(_capacity_problems(manifest_objects())) == []


def test_the_chart_deploys_capacity_tracking_by_default() -> None:
    assert list(_capacity_problems(render_chart(values_like_the_manifests()))) == []


def test_the_check_catches_a_half_deployment() -> None:
    objects = manifest_objects()
    provisioner = _provisioner(objects)
    provisioner["env"] = [e for e in provisioner["env"] if e["name"] != "POD_NAME"]
    objects = [o for o in objects if o["metadata"]["name"] != "rds-csi-capacity"]
    problems = list(_capacity_problems(objects))
    assert any("POD_NAME" in p for p in problems)
    assert any("csistoragecapacities" in p for p in problems)


def test_the_chart_can_turn_it_off_whole() -> None:
    values = values_like_the_manifests() | {"storageCapacity": {"enabled": False}}
    objects = render_chart(values)
    assert one(objects, "CSIDriver")["spec"]["storageCapacity"] is False
    provisioner = _provisioner(objects)
    assert not [a for a in provisioner["args"] if "capacity" in a]
    assert "POD_NAME" not in _env(provisioner)
    rules = [r for o in objects if o["kind"] in {"Role", "ClusterRole"} for r in o["rules"]]
    assert not [r for r in rules if "csistoragecapacities" in r["resources"]]


@pytest.mark.parametrize("interval", ["30s", "5m"])
def test_the_chart_passes_the_poll_interval(interval: str) -> None:
    values = values_like_the_manifests() | {"storageCapacity": {"pollInterval": interval}}
    args = _provisioner(render_chart(values))["args"]
    assert f"--capacity-poll-interval={interval}" in args
