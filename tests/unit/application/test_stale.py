"""The stale-attachment report: found, told, counted, and nothing detached."""

from __future__ import annotations

from rds_csi.adapters.kubernetes import FakeKubernetes
from rds_csi.application.attachment import AttachmentState
from rds_csi.application.events import STALE_ATTACHMENT, EventRecorder
from rds_csi.application.kubernetes import PersistentVolumeInfo
from rds_csi.application.stale import StaleAttachment, StaleAttachments
from rds_csi.domain import AccessMode, Attachment, Usage, VolumeId
from tests.unit.application.test_attachment import FakeClock, Recorded


def _setup() -> tuple[FakeKubernetes, AttachmentState, FakeClock, StaleAttachments, Recorded]:
    clock = FakeClock()
    k8s = FakeKubernetes()
    state = AttachmentState(clock)
    metrics = Recorded()
    stale = StaleAttachments(
        k8s,
        state,
        clock,
        grace=300,
        interval=60,
        events=EventRecorder(k8s, clock),
        metrics=metrics,
    )
    return k8s, state, clock, stale, metrics


def _attach(state: AttachmentState, name: str, *nodes: str) -> VolumeId:
    vid = VolumeId.from_name(name)
    usage = Usage(AccessMode.MULTI_NODE_READER_ONLY)
    state.put(vid, Attachment(vid, nodes, usage))
    return vid


def test_deleted_and_long_not_ready_nodes_are_reported_not_detached() -> None:
    k8s, state, clock, stale, metrics = _setup()
    k8s.put_node("up", ready=True)
    k8s.put_node("flapping", ready=False, since=clock.now - 10)
    k8s.put_node("dead", ready=False, since=clock.now - 3600)
    vid = _attach(state, "v", "up", "flapping", "dead", "deleted")
    k8s.put_persistent_volume(
        PersistentVolumeInfo("pv", str(vid), claim_namespace="ns", claim_name="c")
    )
    found = stale.check()
    assert [(f.node, f.reason.split()[1]) for f in found] == [("dead", "node"), ("deleted", "Node")]
    assert isinstance(found[0], StaleAttachment)
    assert state.nodes_of(vid) == ("up", "flapping", "dead", "deleted")  # never detached
    assert [e.reason for e in k8s.events] == [STALE_ATTACHMENT]  # rate-limited per PVC
    assert "delete the Node" in k8s.events[0].message
    assert metrics_count(metrics) == 2


def test_nothing_stale_sets_the_gauge_to_zero() -> None:
    k8s, state, _, stale, metrics = _setup()
    k8s.put_node("up")
    _attach(state, "v", "up")
    assert stale.check() == []
    assert metrics_count(metrics) == 0
    assert k8s.events == []


def metrics_count(metrics: Recorded) -> int:
    return metrics.stale


def test_only_the_lease_holder_reports() -> None:
    k8s, state, clock, _, _ = _setup()
    one, two = (
        StaleAttachments(k8s, state, clock, grace=300, interval=60, identity=name)
        for name in ("replica-1", "replica-2")
    )
    assert one.leading()
    assert not two.leading()
    assert one.leading()  # renewed
    k8s.leases["rds-csi-stale-attachments"] = ("replica-1", 0.0)  # it stopped renewing
    assert two.leading()
    assert not one.leading()
