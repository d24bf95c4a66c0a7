"""The node's cluster client is built on first use, once, and a failure to build is kept."""

from __future__ import annotations

from rds_csi.adapters.clock import SystemClock
from rds_csi.adapters.kubernetes import FakeKubernetes
from rds_csi.application.events import EventRecorder
from rds_csi.application.kubernetes import Kubernetes, ObjectRef
from rds_csi.domain import BackendUnavailable
from rds_csi.entrypoints.kube_wiring import BuiltOnFirstUse


POD = ObjectRef("Pod", "virt-launcher-a", "vms")


class Builds:
    def __init__(self, cluster: Kubernetes | None) -> None:
        self.cluster = cluster
        self.count = 0

    def __call__(self) -> Kubernetes:
        self.count += 1
        if self.cluster is None:
            raise BackendUnavailable("no in-cluster config and no kubeconfig")
        return self.cluster


def test_nothing_is_built_until_the_first_event_and_then_once() -> None:
    builds = Builds(FakeKubernetes(["n1"]))
    recorder = EventRecorder(BuiltOnFirstUse(builds), SystemClock())
    assert builds.count == 0
    assert recorder.record(POD, "MountFailed", "no device")
    assert recorder.record(POD, "MountRecovered", "remounted")
    assert builds.count == 1


def test_a_node_without_a_cluster_serves_and_tries_to_build_only_once() -> None:
    builds = Builds(None)
    recorder = EventRecorder(BuiltOnFirstUse(builds), SystemClock())
    assert not recorder.record(POD, "MountFailed", "no device")
    assert not recorder.record(POD, "MountRecovered", "remounted")
    assert builds.count == 1
