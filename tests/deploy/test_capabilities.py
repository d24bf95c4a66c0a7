"""
The deployment follows from what the driver advertises: which sidecars run, what the CSIDriver
object tells kubelet, what the StorageClasses promise.

The capability sets live in tests/deploy_support.py (the agreed contract); the e2e test
tests/e2e/deploy/test_live_driver.py asks the running driver for its own and compares.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import pytest

from tests.deploy_support import (
    CONTROLLER_CAPABILITIES,
    NODE_CAPABILITIES,
    PLUGIN_CAPABILITIES,
    Obj,
    by_kind,
    containers,
    manifest_objects,
    one,
    render_chart,
    sidecar_name,
    values_like_the_manifests,
)


def deployment_problems(
    objects: list[Obj],
    *,
    plugin: Iterable[str] = PLUGIN_CAPABILITIES,
    controller: Iterable[str] = CONTROLLER_CAPABILITIES,
    node: Iterable[str] = NODE_CAPABILITIES,
) -> list[str]:
    """Everything in a set of objects that contradicts the given capabilities."""
    caps = Capabilities(set(plugin), set(controller), set(node))
    return (
        _csidriver_problems(objects, caps)
        + _controller_problems(objects, caps)
        + _node_problems(objects)
        + _storage_class_problems(objects, caps)
    )


@attrs.frozen
class Capabilities:
    plugin: set[str]
    controller: set[str]
    node: set[str]

    @property
    def publishes(self) -> bool:
        return "PUBLISH_UNPUBLISH_VOLUME" in self.controller

    @property
    def expands(self) -> bool:
        return "EXPAND_VOLUME" in self.controller or "EXPAND_VOLUME" in self.node


def _csidriver_problems(objects: list[Obj], caps: Capabilities) -> list[str]:
    spec = one(objects, "CSIDriver")["spec"]
    problems = []
    if spec["attachRequired"] is not caps.publishes:
        problems.append(
            f"CSIDriver.attachRequired must be {caps.publishes}: PUBLISH_UNPUBLISH_VOLUME is "
            f"{'' if caps.publishes else 'not '}advertised"
        )
    if spec["volumeLifecycleModes"] != ["Persistent"]:
        problems.append("only persistent volumes are served")
    if spec.get("requiresRepublish") is not False:
        problems.append("nothing needs a periodic NodePublishVolume")
    return problems


def _sidecars(workload: Obj) -> dict[str, Obj]:
    return {
        sidecar_name(c["image"]): c for c in containers(workload).values() if c["name"] != "rds-csi"
    }


def _controller_problems(objects: list[Obj], caps: Capabilities) -> list[str]:
    deployments = by_kind(objects, "Deployment")
    if len(deployments) != ("CONTROLLER_SERVICE" in caps.plugin):
        return ["a controller Deployment exists exactly when CONTROLLER_SERVICE is advertised"]
    if not deployments:
        return []
    sidecars = _sidecars(deployments[0])
    wanted = {"livenessprobe"}
    for sidecar, needed in (
        ("csi-provisioner", "CREATE_DELETE_VOLUME" in caps.controller),
        ("csi-attacher", caps.publishes),
        ("csi-resizer", caps.expands),
        ("csi-snapshotter", "CREATE_DELETE_SNAPSHOT" in caps.controller),
    ):
        if needed:
            wanted.add(sidecar)
    problems = []
    if set(sidecars) != wanted:
        problems.append(f"controller sidecars {sorted(sidecars)} != {sorted(wanted)}")
    provisioner = sidecars.get("csi-provisioner", {}).get("args", [])
    topology = "VOLUME_ACCESSIBILITY_CONSTRAINTS" in caps.plugin
    if ("--feature-gates=Topology=true" in provisioner) is not topology:
        problems.append(f"the provisioner's Topology gate must be {'on' if topology else 'off'}")
    if provisioner and "--extra-create-metadata" not in provisioner:
        problems.append("the provisioner must pass PVC metadata (--extra-create-metadata)")
    capacity = "--enable-capacity" in provisioner
    if one(objects, "CSIDriver")["spec"]["storageCapacity"] is not capacity:
        problems.append("CSIDriver.storageCapacity iff the provisioner has --enable-capacity")
    if capacity and "GET_CAPACITY" not in caps.controller:
        problems.append("--enable-capacity needs GET_CAPACITY")
    return problems


def _node_problems(objects: list[Obj]) -> list[str]:
    return [
        f"node sidecars {sorted(found)}"
        for daemonset in by_kind(objects, "DaemonSet")
        if (found := set(_sidecars(daemonset))) != {"csi-node-driver-registrar", "livenessprobe"}
    ]


def _storage_class_problems(objects: list[Obj], caps: Capabilities) -> list[str]:
    driver_name = one(objects, "CSIDriver")["metadata"]["name"]
    problems = []
    for storage_class in by_kind(objects, "StorageClass"):
        name = storage_class["metadata"]["name"]
        if storage_class["provisioner"] != driver_name:
            problems.append(f"{name}: provisioner is not {driver_name}")
        if storage_class.get("allowVolumeExpansion", False) is not caps.expands:
            problems.append(f"{name}: allowVolumeExpansion must be {caps.expands}")
        if storage_class.get("volumeBindingMode") != "WaitForFirstConsumer":
            problems.append(f"{name}: volumeBindingMode must be WaitForFirstConsumer")
    return problems


def test_the_manifests_match_the_advertised_capabilities() -> None:
    assert deployment_problems(manifest_objects()) == []


def test_the_chart_matches_the_advertised_capabilities() -> None:
    assert deployment_problems(render_chart(values_like_the_manifests())) == []


@pytest.mark.parametrize(
    ("change", "expected_problems"),
    [
        ({"controller": CONTROLLER_CAPABILITIES - {"PUBLISH_UNPUBLISH_VOLUME"}}, 2),
        ({"plugin": PLUGIN_CAPABILITIES | {"VOLUME_ACCESSIBILITY_CONSTRAINTS"}}, 1),
        (
            {
                "controller": CONTROLLER_CAPABILITIES
                - {"CREATE_DELETE_SNAPSHOT", "LIST_SNAPSHOTS", "CLONE_VOLUME"}
            },
            1,
        ),
        (
            {
                "controller": CONTROLLER_CAPABILITIES - {"EXPAND_VOLUME"},
                "node": NODE_CAPABILITIES - {"EXPAND_VOLUME"},
            },
            3,
        ),
        ({"plugin": set()}, 1),
    ],
    ids=["publish", "topology", "no-snapshots", "no-expansion", "no-controller"],
)
def test_a_capability_change_shows_in_the_check(
    change: dict[str, set[str]], expected_problems: int
) -> None:
    # Guards the guard: the check must notice when the driver advertises something else.
    assert len(deployment_problems(manifest_objects(), **change)) == expected_problems
