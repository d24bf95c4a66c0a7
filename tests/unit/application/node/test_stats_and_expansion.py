"""NodeGetVolumeStats and NodeExpandVolume over the fake node ports."""

from __future__ import annotations

import pytest

from rds_csi.application.structure import structure_context
from rds_csi.domain import (
    BackendError,
    CapacityRange,
    Nqn,
    OutOfRange,
    Size,
    VolumeId,
    VolumeNotFound,
)
from rds_csi.domain.size import GIB
from tests.unit.application.node.world import BLOCK, MOUNT, Node


class TestStats:
    def test_mount_volume_reports_bytes_and_inodes(self, node: Node) -> None:
        vid, ctx = node.create("a", 2 * GIB)
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, MOUNT, ctx)
        node.publish(vid, staging, target, MOUNT)
        device = node.initiator.device_for(Nqn(ctx["nqn"]))
        node.devices.get(device).medium.used = GIB  # type: ignore[arg-type, union-attr]
        stats = node.stats(vid, target)
        assert stats.total_bytes == 2 * GIB
        assert stats.filesystem is not None
        assert stats.filesystem.bytes_used == GIB
        assert stats.filesystem.bytes_available == GIB
        assert stats.filesystem.inodes_total > 0
        assert not stats.abnormal

    def test_block_volume_reports_the_device_size_only(self, node: Node) -> None:
        vid, ctx = node.create("b", 3 * GIB)
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, BLOCK, ctx)
        node.publish(vid, staging, target, BLOCK)
        stats = node.stats(vid, target)
        assert stats.total_bytes == 3 * GIB
        assert stats.filesystem is None

    def test_nothing_at_the_path_is_not_found(self, node: Node) -> None:
        vid, _ = node.create("a")
        with pytest.raises(VolumeNotFound):
            node.stats(vid, node.target())

    def test_lost_connection_is_an_abnormal_condition(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.initiator.disconnect(Nqn(ctx["nqn"]))
        stats = node.stats(vid, staging)
        assert stats.abnormal
        assert "no NVMe/TCP connection" in stats.message

    def test_mount_left_on_an_old_device_after_a_reconnect_is_stale(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        nqn = Nqn(ctx["nqn"])
        node.initiator.disconnect(nqn)
        node.initiator.connect(structure_context(ctx).target)
        stats = node.stats(vid, staging)
        assert stats.abnormal
        assert "stale mount" in stats.message


class TestExpand:
    def test_grows_the_filesystem_after_the_controller_grew_the_disk(self, node: Node) -> None:
        vid, ctx = node.create("a", GIB)
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, MOUNT, ctx)
        node.publish(vid, staging, target, MOUNT)
        node.rds.resize_volume(VolumeId(vid), Size(4 * GIB))
        assert node.stats(vid, target).total_bytes == GIB
        size = node.expand(vid, target, CapacityRange(required=4 * GIB))
        assert size == Size(4 * GIB)
        assert node.stats(vid, target).total_bytes == 4 * GIB

    def test_repeat_is_ok(self, node: Node) -> None:
        vid, ctx = node.create("a", GIB)
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.rds.resize_volume(VolumeId(vid), Size(2 * GIB))
        node.expand(vid, staging, CapacityRange(required=2 * GIB))
        assert node.expand(vid, staging, CapacityRange(required=2 * GIB)) == Size(2 * GIB)

    def test_block_volume_is_rescanned_not_grown(self, node: Node) -> None:
        vid, ctx = node.create("b", GIB)
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, BLOCK, ctx)
        node.publish(vid, staging, target, BLOCK)
        node.rds.resize_volume(VolumeId(vid), Size(2 * GIB))
        assert node.expand(vid, target, CapacityRange(), BLOCK) == Size(2 * GIB)
        assert node.stats(vid, target).total_bytes == 2 * GIB

    def test_device_still_smaller_than_required_is_out_of_range(self, node: Node) -> None:
        vid, ctx = node.create("a", GIB)
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        with pytest.raises(OutOfRange):
            node.expand(vid, staging, CapacityRange(required=8 * GIB))

    def test_not_mounted_is_not_found(self, node: Node) -> None:
        vid, _ = node.create("a")
        with pytest.raises(VolumeNotFound):
            node.expand(vid, node.staging(), CapacityRange(required=GIB))


class TestStatsCondition:
    def test_a_block_volume_whose_device_is_gone_is_abnormal(self, node: Node) -> None:
        vid, ctx = node.create("b")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, BLOCK, ctx)
        node.publish(vid, staging, target, BLOCK)
        node.initiator.disconnect(Nqn(ctx["nqn"]))
        stats = node.stats(vid, target)
        assert stats.abnormal
        assert "no NVMe/TCP connection" in stats.message
        assert stats.total_bytes == 0

    def test_unreadable_usage_is_abnormal_not_an_error(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.fs.faults.fail_next(
            1, lambda: BackendError("statvfs", "Input/output error"), operations={"stats"}
        )
        stats = node.stats(vid, staging)
        assert stats.abnormal
        assert "Input/output error" in stats.message
        assert not node.stats(vid, staging).abnormal
