"""Stale mounts after a reconnect: recovered by stage and publish, reported, refused."""

from __future__ import annotations

import attrs
import pytest

from rds_csi.adapters.clock import SystemClock
from rds_csi.adapters.fake_node import FakeNvmeInitiator
from rds_csi.adapters.kubernetes import FakeKubernetes
from rds_csi.application.events import MOUNT_RECOVERED, EventRecorder
from rds_csi.application.kubernetes import ObjectRef
from rds_csi.domain import (
    AlreadyExists,
    BackendError,
    CapacityRange,
    Conflict,
    Nqn,
    NvmeTarget,
)
from rds_csi.domain.size import GIB
from rds_csi.entrypoints.csi._pb import csi_pb2
from rds_csi.entrypoints.csi.node import NodeInfo, NodeService, NodeUseCases
from tests.unit.application.node.world import BLOCK, MOUNT, Node


class TestStaleStagingMount:
    def test_a_device_back_under_another_name_is_remounted(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        old = node.device(ctx)
        new = node.initiator.bounce(Nqn(ctx["nqn"]))
        assert new != old
        node.stage(vid, staging, MOUNT, ctx)
        mounted = node.mounter.mount_at(staging)
        assert mounted is not None
        assert mounted.source == new
        assert len(node.mounter.mounts()) == 1
        assert node.recoveries("recovered") == 1
        assert not node.stats(vid, staging).abnormal

    def test_a_device_back_under_the_same_name_is_told_by_its_number(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        old = node.mounter.mount_at(staging)
        assert old is not None
        assert node.initiator.bounce(Nqn(ctx["nqn"]), same_name=True) == old.source
        assert node.stats(vid, staging).abnormal
        node.stage(vid, staging, MOUNT, ctx)
        mounted = node.mounter.mount_at(staging)
        assert mounted is not None
        assert mounted.major_minor != old.major_minor
        assert mounted.major_minor == node.fs.device_number(node.device(ctx))
        assert node.recoveries("recovered") == 1

    def test_a_lost_connection_is_reconnected_and_remounted(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.initiator.disconnect(Nqn(ctx["nqn"]))  # ctrl-loss-tmo ran out
        node.stage(vid, staging, MOUNT, ctx)
        mounted = node.mounter.mount_at(staging)
        assert mounted is not None
        assert mounted.source == node.device(ctx)
        assert node.connects("success") == 2
        assert node.recoveries("recovered") == 1

    def test_no_recovery_while_a_pod_still_holds_the_old_device(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, MOUNT, ctx)
        node.publish(vid, staging, target, MOUNT)
        before = node.mounter.mounts()
        node.initiator.bounce(Nqn(ctx["nqn"]))
        with pytest.raises(Conflict, match=f"{target} still uses the old device"):
            node.stage(vid, staging, MOUNT, ctx)
        assert node.mounter.mounts() == before
        assert node.recoveries("refused") == 1
        # The pod goes; then the staging mount is recovered.
        node.unpublish(vid, target)
        node.stage(vid, staging, MOUNT, ctx)
        assert node.recoveries("recovered") == 1

    def test_a_failed_recovery_is_counted_and_drops_the_connection_it_made(
        self, node: Node
    ) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.initiator.disconnect(Nqn(ctx["nqn"]))
        node.mounter.faults.fail_next(1, lambda: BackendError("mount", "x"), operations={"mount"})
        with pytest.raises(BackendError):
            node.stage(vid, staging, MOUNT, ctx)
        assert node.recoveries("failed") == 1
        assert node.initiator.connections() == []
        assert node.mounter.mount_at(staging) is None

    def test_a_recovery_never_formats(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        new = node.initiator.bounce(Nqn(ctx["nqn"]))
        node.devices.get(new).medium.fs_type = None  # type: ignore[union-attr]
        with pytest.raises(Conflict, match="never formats"):
            node.stage(vid, staging, MOUNT, ctx)
        assert node.fs.detect(new) is None
        assert node.recoveries("failed") == 1

    def test_a_mount_that_is_not_a_volume_is_left_alone(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        elsewhere = node.staging("host-dir")
        node.mounter.bind(elsewhere, staging)
        with pytest.raises(AlreadyExists):
            node.stage(vid, staging, MOUNT, ctx)
        assert node.mounter.mount_at(staging) is not None
        assert node.initiator.connections() == []

    def test_a_mount_of_a_foreign_targets_device_is_left_alone(self, node: Node) -> None:
        # A connection whose NQN names no volume of ours is still someone's: its mount at the
        # staging path is not a stale mount of this volume, whatever its filesystem.
        node = attrs.evolve(node, initiator=FakeNvmeInitiator(node.devices))
        foreign = Nqn("nqn.2000-02.com.mikrotik:hand-made-disk")
        device = node.initiator.connect(NvmeTarget(address="10.0.0.1", port=4420, nqn=foreign))
        node.fs.make(device, "ext4")
        staging = node.staging()
        node.mounter.mount(device, staging, "ext4", [])
        vid, ctx = node.create("a")
        with pytest.raises(AlreadyExists, match=r"hand-made-disk's device"):
            node.stage(vid, staging, MOUNT, ctx)
        info = node.mounter.mount_at(staging)
        assert info is not None
        assert info.source == device
        assert node.initiator.connections() == [foreign]

    def test_publish_recovers_the_staging_mount_first(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, MOUNT, ctx)
        new = node.initiator.bounce(Nqn(ctx["nqn"]))
        node.publish(vid, staging, target, MOUNT)
        for path in (staging, target):
            mounted = node.mounter.mount_at(path)
            assert mounted is not None
            assert mounted.source == new
        assert node.recoveries("recovered") == 1

    def test_publish_replaces_a_stale_block_bind(self, node: Node) -> None:
        vid, ctx = node.create("b")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, BLOCK, ctx)
        node.publish(vid, staging, target, BLOCK)
        new = node.initiator.bounce(Nqn(ctx["nqn"]))
        assert node.stats(vid, target).abnormal
        node.publish(vid, staging, target, BLOCK)
        mounted = node.mounter.mount_at(target)
        assert mounted is not None
        assert mounted.source == new
        assert node.recoveries("recovered") == 1
        assert not node.stats(vid, target).abnormal

    def test_expand_refuses_a_stale_mount(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.initiator.bounce(Nqn(ctx["nqn"]))
        with pytest.raises(Conflict, match="stale mount"):
            node.expand(vid, staging, CapacityRange(required=GIB))


POD = {  # what podInfoOnMount adds to the volume context
    "csi.storage.k8s.io/pod.name": "vm-0",
    "csi.storage.k8s.io/pod.namespace": "apps",
    "csi.storage.k8s.io/pod.uid": "u-1",
}


class TestTheRecoveryIsToldToThePod:
    """NodePublishVolume's recovery of a stale mount: a MountRecovered Event on the pod."""

    def _service(self, node: Node, k8s: FakeKubernetes) -> NodeService:
        use_cases = NodeUseCases(
            stage=node.stage,
            unstage=node.unstage,
            publish=node.publish,
            unpublish=node.unpublish,
            stats=node.stats,
            expand=node.expand,
            info=NodeInfo("n1"),
        )
        return NodeService(use_cases, EventRecorder(k8s, SystemClock()))

    def _publish(
        self, service: NodeService, vid: str, staging: str, target: str, ctx: dict[str, str]
    ) -> None:
        request = csi_pb2.NodePublishVolumeRequest(
            volume_id=vid,
            staging_target_path=staging,
            target_path=target,
            volume_capability=csi_pb2.VolumeCapability(
                mount=csi_pb2.VolumeCapability.MountVolume(fs_type="ext4"),
                access_mode=csi_pb2.VolumeCapability.AccessMode(
                    mode=csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
                ),
            ),
            volume_context=ctx,
        )
        service.NodePublishVolume(request, None)  # type: ignore[arg-type]

    def test_a_recovered_staging_mount_is_told_with_the_devices(self, node: Node) -> None:
        k8s = FakeKubernetes()
        service = self._service(node, k8s)
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        self._publish(service, vid, staging, node.target("first"), {**ctx, **POD})
        assert k8s.events == []  # nothing to recover, nothing told
        node.unpublish(vid, node.target("first"))
        new = node.initiator.bounce(Nqn(ctx["nqn"]))
        self._publish(service, vid, staging, node.target("second"), {**ctx, **POD})
        (event,) = k8s.events
        assert (event.reason, event.warning) == (MOUNT_RECOVERED, False)
        assert event.about == ObjectRef("Pod", "vm-0", "apps", "u-1")
        assert new in event.message
        assert node.recoveries("recovered") == 1

    def test_without_pod_info_nothing_is_told(self, node: Node) -> None:
        k8s = FakeKubernetes()
        service = self._service(node, k8s)
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.initiator.bounce(Nqn(ctx["nqn"]))
        self._publish(service, vid, staging, node.target(), ctx)
        assert k8s.events == []
        assert node.recoveries("recovered") == 1
