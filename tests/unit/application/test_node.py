"""The node use cases over the fake node ports, linked to an in-memory RDS."""

from __future__ import annotations

import pathlib

import attrs
import pytest
from prometheus_client import CollectorRegistry

from rds_csi.adapters.fake_node import DeviceTable, FakeFilesystem, FakeMounter, FakeNvmeInitiator
from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.adapters.metrics import PrometheusMetrics
from rds_csi.application.locks import KeyedLocks
from rds_csi.application.node import (
    NodeExpandVolume,
    NodeGetVolumeStats,
    NodePublishVolume,
    NodeStageVolume,
    NodeUnpublishVolume,
    NodeUnstageVolume,
)
from rds_csi.application.provisioning import CreateVolume
from rds_csi.application.structure import structure_context
from rds_csi.domain import (
    AccessMode,
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    CapacityRange,
    Conflict,
    InvalidArgument,
    Nqn,
    OperationInProgress,
    OutOfRange,
    Size,
    UnsupportedCapability,
    VolumeCapability,
    VolumeId,
    VolumeNotFound,
    VolumeParameters,
)
from rds_csi.domain.size import GIB


MOUNT = VolumeCapability.mount()
BLOCK = VolumeCapability.block()


@attrs.define
class Node:
    rds: InMemoryRds
    devices: DeviceTable
    initiator: FakeNvmeInitiator
    mounter: FakeMounter
    fs: FakeFilesystem
    locks: KeyedLocks
    root: pathlib.Path
    metrics: PrometheusMetrics

    @property
    def stage(self) -> NodeStageVolume:
        return NodeStageVolume(self.initiator, self.mounter, self.fs, self.locks, self.metrics)

    @property
    def unstage(self) -> NodeUnstageVolume:
        return NodeUnstageVolume(self.initiator, self.mounter, self.fs, self.locks)

    @property
    def publish(self) -> NodePublishVolume:
        return NodePublishVolume(self.initiator, self.mounter, self.fs, self.locks, self.metrics)

    @property
    def unpublish(self) -> NodeUnpublishVolume:
        return NodeUnpublishVolume(self.mounter, self.locks)

    @property
    def stats(self) -> NodeGetVolumeStats:
        return NodeGetVolumeStats(self.initiator, self.mounter, self.fs)

    @property
    def expand(self) -> NodeExpandVolume:
        return NodeExpandVolume(self.initiator, self.mounter, self.fs, self.locks)

    def create(self, name: str, size: int = GIB) -> tuple[str, dict[str, str]]:
        made = CreateVolume(self.rds, self.locks, VolumeParameters(rds_address="10.0.0.1"))(
            name, CapacityRange(required=size), [MOUNT], {}
        )
        return str(made.volume.volume_id), made.context.to_mapping()

    def staging(self, name: str = "staging") -> str:
        path = self.root / name
        path.mkdir(exist_ok=True)  # kubelet creates the staging directory
        return str(path)

    def target(self, name: str = "target") -> str:
        return str(self.root / "pods" / name)

    def connects(self, outcome: str) -> float:
        return self._sample("rds_csi_nvme_connect_total", outcome)

    def recoveries(self, outcome: str) -> float:
        return self._sample("rds_csi_mount_recovery_total", outcome)

    def _sample(self, name: str, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"outcome": outcome})
        return value or 0.0

    def device(self, ctx: dict[str, str]) -> str:
        device = self.initiator.device_for(Nqn(ctx["nqn"]))
        assert device is not None
        return device


@pytest.fixture
def node(tmp_path: pathlib.Path) -> Node:
    rds = InMemoryRds(Size(100 * GIB))
    devices = DeviceTable()
    mounter = FakeMounter(devices)
    return Node(
        rds=rds,
        devices=devices,
        initiator=FakeNvmeInitiator(devices, exports=rds),
        mounter=mounter,
        fs=FakeFilesystem(devices, mounter),
        locks=KeyedLocks(),
        root=tmp_path,
        metrics=PrometheusMetrics(CollectorRegistry()),
    )


class TestStage:
    def test_mount_volume_is_connected_formatted_and_mounted(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        device = node.initiator.device_for(Nqn(ctx["nqn"]))
        assert device is not None
        assert device != "/dev/nvme0n1"
        assert node.fs.detect(device) == "ext4"
        mounted = node.mounter.mount_at(staging)
        assert mounted is not None
        assert (mounted.source, mounted.fs_type) == (device, "ext4")

    def test_repeat_is_ok_and_changes_nothing(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.stage(vid, staging, MOUNT, ctx)
        assert len(node.initiator.connections()) == 1
        assert len(node.mounter.mounts()) == 1

    def test_a_device_with_data_is_never_reformatted(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        device = node.initiator.device_for(Nqn(ctx["nqn"]))
        assert device is not None
        node.devices.get(device).medium.used = 12345  # type: ignore[union-attr]
        node.unstage(vid, staging)
        node.stage(vid, staging, MOUNT, ctx)
        assert node.fs.stats(staging).bytes_used == 12345

    def test_other_filesystem_on_device_is_conflict_and_leaves_nothing(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, VolumeCapability.mount(fs_type="xfs"), ctx)
        node.unstage(vid, staging)
        with pytest.raises(Conflict, match="refusing to reformat"):
            node.stage(vid, staging, MOUNT, ctx)
        assert node.initiator.connections() == []
        assert node.mounter.mounts() == []

    def test_block_volume_is_connected_but_neither_formatted_nor_mounted(self, node: Node) -> None:
        vid, ctx = node.create("b")
        node.stage(vid, node.staging(), BLOCK, ctx)
        device = node.initiator.device_for(Nqn(ctx["nqn"]))
        assert device is not None
        assert node.fs.detect(device) is None
        assert node.mounter.mounts() == []

    def test_failed_mount_leaves_no_mount_and_no_connection(self, node: Node) -> None:
        vid, ctx = node.create("a")
        node.mounter.faults.fail_next(
            1, lambda: BackendError("mount failed", "injected"), operations={"mount"}
        )
        with pytest.raises(BackendError):
            node.stage(vid, node.staging(), MOUNT, ctx)
        assert node.initiator.connections() == []
        assert node.devices.paths() == []
        assert node.mounter.mounts() == []

    def test_failed_connect_leaves_no_connection(self, node: Node) -> None:
        vid, ctx = node.create("a")
        node.initiator.faults.fail_next(1, operations={"connect"})
        with pytest.raises(BackendUnavailable):
            node.stage(vid, node.staging(), MOUNT, ctx)
        assert node.initiator.connections() == []

    def test_volume_the_target_does_not_export_is_not_found(self, node: Node) -> None:
        vid = str(VolumeId.from_name("never-created"))
        ctx = {"nqn": f"nqn.2000-02.com.mikrotik:{vid}", "nvmeAddress": "10.0.0.1"}
        with pytest.raises(VolumeNotFound):
            node.stage(vid, node.staging(), MOUNT, ctx)
        assert node.initiator.connections() == []

    def test_reads_a_go_driver_context(self, node: Node) -> None:
        vid, _ = node.create("a")
        go_ctx = {
            "rdsAddress": "10.0.0.1",
            "nvmeAddress": "10.0.0.1",
            "nvmePort": "4420",
            "nqn": f"nqn.2000-02.com.mikrotik:{vid}",
            "volumePath": f"/storage-pool/metal-csi/{vid}.img",
            "ctrlLossTmo": "-1",
            "reconnectDelay": "5",
            "keepAliveTmo": "0",
            "migrationTimeoutSeconds": "300",
            "csi.storage.k8s.io/pod.name": "ignored",
        }
        node.stage(vid, node.staging(), MOUNT, go_ctx)
        assert node.initiator.connections() == [Nqn(go_ctx["nqn"])]

    def test_context_naming_another_volume_is_invalid(self, node: Node) -> None:
        vid, _ = node.create("a")
        _, other = node.create("b")
        with pytest.raises(InvalidArgument, match=r"volume_context\.nqn"):
            node.stage(vid, node.staging(), MOUNT, other)

    def test_staging_path_holding_another_volume_is_already_exists(self, node: Node) -> None:
        vid_a, ctx_a = node.create("a")
        vid_b, ctx_b = node.create("b")
        staging = node.staging()
        node.stage(vid_a, staging, MOUNT, ctx_a)
        with pytest.raises(AlreadyExists):
            node.stage(vid_b, staging, MOUNT, ctx_b)

    def test_staged_as_filesystem_then_block_is_already_exists(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        with pytest.raises(AlreadyExists):
            node.stage(vid, staging, BLOCK, ctx)

    @pytest.mark.parametrize("path", ["", "relative/dir", "/a/../b", "/a/b\n"])
    def test_bad_staging_path_is_invalid(self, node: Node, path: str) -> None:
        vid, ctx = node.create("a")
        with pytest.raises(InvalidArgument, match="staging_target_path"):
            node.stage(vid, path, MOUNT, ctx)

    def test_unsupported_capability_is_invalid(self, node: Node) -> None:
        vid, ctx = node.create("a")
        cap = VolumeCapability.mount(AccessMode.MULTI_NODE_MULTI_WRITER)
        with pytest.raises(UnsupportedCapability):
            node.stage(vid, node.staging(), cap, ctx)

    def test_concurrent_operation_is_in_progress(self, node: Node) -> None:
        vid, ctx = node.create("a")
        with node.locks.hold(vid), pytest.raises(OperationInProgress):
            node.stage(vid, node.staging(), MOUNT, ctx)


class TestUnstage:
    def test_unmounts_and_disconnects_and_repeats(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.unstage(vid, staging)
        node.unstage(vid, staging)
        assert node.mounter.mounts() == []
        assert node.initiator.connections() == []
        assert node.devices.paths() == []

    def test_block_volume_is_disconnected(self, node: Node) -> None:
        vid, ctx = node.create("b")
        node.stage(vid, node.staging(), BLOCK, ctx)
        node.unstage(vid, node.staging())
        assert node.initiator.connections() == []

    def test_never_staged_is_ok(self, node: Node) -> None:
        vid, _ = node.create("a")
        node.unstage(vid, node.staging())

    def test_foreign_id_is_not_found(self, node: Node) -> None:
        with pytest.raises(VolumeNotFound):
            node.unstage("some-other-driver-volume", node.staging())


class TestPublish:
    def test_mount_volume_is_bound_onto_a_created_directory(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, MOUNT, ctx)
        node.publish(vid, staging, target, MOUNT)
        assert pathlib.Path(target).is_dir()
        mounted = node.mounter.mount_at(target)
        staged = node.mounter.mount_at(staging)
        assert mounted is not None
        assert staged is not None
        assert mounted.source == staged.source
        assert not mounted.read_only

    def test_repeat_is_ok_and_changes_nothing(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, MOUNT, ctx)
        node.publish(vid, staging, target, MOUNT)
        node.publish(vid, staging, target, MOUNT)
        assert len(node.mounter.mounts()) == 2

    def test_read_only_request_and_reader_modes_bind_read_only(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.publish(vid, staging, node.target("ro"), MOUNT, read_only=True)
        reader = VolumeCapability.mount(AccessMode.SINGLE_NODE_READER_ONLY)
        node.publish(vid, staging, node.target("reader"), reader)
        for name in ("ro", "reader"):
            mounted = node.mounter.mount_at(node.target(name))
            assert mounted is not None
            assert mounted.read_only

    def test_same_path_with_other_arguments_is_already_exists(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, MOUNT, ctx)
        node.publish(vid, staging, target, MOUNT)
        with pytest.raises(AlreadyExists):
            node.publish(vid, staging, target, MOUNT, read_only=True)

    def test_several_targets_are_fine_but_not_for_a_single_writer(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.publish(vid, staging, node.target("pod1"), MOUNT)
        node.publish(vid, staging, node.target("pod2"), MOUNT)
        rwop = VolumeCapability.mount(AccessMode.SINGLE_NODE_SINGLE_WRITER)
        with pytest.raises(Conflict, match="SINGLE_NODE_SINGLE_WRITER"):
            node.publish(vid, staging, node.target("pod3"), rwop)
        assert not pathlib.Path(node.target("pod3")).exists()

    def test_block_volume_binds_the_device_onto_a_created_file(self, node: Node) -> None:
        vid, ctx = node.create("b")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, BLOCK, ctx)
        node.publish(vid, staging, target, BLOCK)
        assert pathlib.Path(target).is_file()
        assert node.fs.is_block_device(target)
        mounted = node.mounter.mount_at(target)
        assert mounted is not None
        assert mounted.source == node.initiator.device_for(Nqn(ctx["nqn"]))
        assert node.fs.detect(mounted.source) is None

    def test_without_staging_path_is_failed_precondition(self, node: Node) -> None:
        vid, _ = node.create("a")
        with pytest.raises(Conflict, match="staging_target_path is required"):
            node.publish(vid, "", node.target(), MOUNT)

    def test_not_staged_is_conflict_and_creates_nothing(self, node: Node) -> None:
        vid, _ = node.create("a")
        with pytest.raises(Conflict, match="not staged"):
            node.publish(vid, node.staging(), node.target(), MOUNT)
        assert not pathlib.Path(node.target()).exists()

    def test_failed_bind_removes_the_target_it_made(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, MOUNT, ctx)
        node.mounter.faults.fail_next(
            1, lambda: BackendError("bind failed", "injected"), operations={"bind"}
        )
        with pytest.raises(BackendError):
            node.publish(vid, staging, target, MOUNT)
        assert not pathlib.Path(target).exists()


class TestUnpublish:
    def test_unmounts_and_removes_the_target_and_repeats(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, MOUNT, ctx)
        node.publish(vid, staging, target, MOUNT)
        node.unpublish(vid, target)
        node.unpublish(vid, target)
        assert node.mounter.mount_at(target) is None
        assert not pathlib.Path(target).exists()
        assert node.mounter.mount_at(staging) is not None

    def test_block_target_file_is_removed(self, node: Node) -> None:
        vid, ctx = node.create("b")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, BLOCK, ctx)
        node.publish(vid, staging, target, BLOCK)
        node.unpublish(vid, target)
        assert not pathlib.Path(target).exists()


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


class TestFormatOnlyBlank:
    @pytest.mark.parametrize("signature", ["gpt partition table", "crypto_LUKS", "ext4"])
    def test_any_signature_other_than_the_fs_type_is_never_formatted(
        self, node: Node, signature: str
    ) -> None:
        vid, ctx = node.create("a")
        nqn = Nqn(ctx["nqn"])
        node.initiator.connect(structure_context(ctx).target)
        node.devices.get(node.device(ctx)).medium.fs_type = signature  # type: ignore[union-attr]
        node.initiator.disconnect(nqn)
        with pytest.raises(Conflict, match="refusing to reformat"):
            node.stage(vid, node.staging(), VolumeCapability.mount(fs_type="xfs"), ctx)
        node.initiator.connect(structure_context(ctx).target)
        assert node.fs.detect(node.device(ctx)) == signature

    def test_a_filesystem_of_the_asked_type_is_mounted_as_it_is(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.devices.get(node.device(ctx)).medium.used = 777  # type: ignore[union-attr]
        node.unstage(vid, staging)
        node.fs.faults.fail_next(
            1, lambda: BackendError("mkfs", "must not run"), operations={"make"}
        )
        node.stage(vid, staging, MOUNT, ctx)
        assert node.fs.stats(staging).bytes_used == 777


class TestStageCleansUp:
    @pytest.mark.parametrize("operation", ["detect", "make"])
    def test_a_failing_filesystem_tool_leaves_no_mount_and_no_connection(
        self, node: Node, operation: str
    ) -> None:
        vid, ctx = node.create("a")
        node.fs.faults.fail_next(
            1, lambda: BackendError(f"{operation} failed", "injected"), operations={operation}
        )
        with pytest.raises(BackendError, match=f"{operation} failed"):
            node.stage(vid, node.staging(), MOUNT, ctx)
        assert node.initiator.connections() == []
        assert node.devices.paths() == []
        assert node.mounter.mounts() == []

    def test_a_staging_dir_the_stage_made_is_removed_again(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = str(node.root / "not-made-by-kubelet")
        node.mounter.faults.fail_next(1, lambda: BackendError("mount", "x"), operations={"mount"})
        with pytest.raises(BackendError):
            node.stage(vid, staging, MOUNT, ctx)
        assert not pathlib.Path(staging).exists()
        node.stage(vid, staging, MOUNT, ctx)  # and when it works, the stage makes it itself
        assert node.mounter.mount_at(staging) is not None

    def test_kubelets_staging_dir_is_kept(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.mounter.faults.fail_next(1, lambda: BackendError("mount", "x"), operations={"mount"})
        with pytest.raises(BackendError):
            node.stage(vid, staging, MOUNT, ctx)
        assert pathlib.Path(staging).is_dir()

    def test_a_connection_the_stage_did_not_make_is_kept(self, node: Node) -> None:
        vid, ctx = node.create("a")
        node.initiator.connect(structure_context(ctx).target)
        node.mounter.faults.fail_next(1, lambda: BackendError("mount", "x"), operations={"mount"})
        with pytest.raises(BackendError):
            node.stage(vid, node.staging(), MOUNT, ctx)
        assert node.initiator.connections() == [Nqn(ctx["nqn"])]
        assert node.mounter.mounts() == []

    def test_a_failing_cleanup_is_noted_on_the_original_error(self, node: Node) -> None:
        vid, ctx = node.create("a")
        node.mounter.faults.fail_next(1, lambda: BackendError("mount", "x"), operations={"mount"})
        node.initiator.faults.fail_next(
            1, lambda: BackendError("disconnect", "stuck"), operations={"disconnect"}
        )
        with pytest.raises(BackendError, match="mount") as caught:
            node.stage(vid, node.staging(), MOUNT, ctx)
        assert any("disconnect" in note for note in caught.value.__notes__)


class TestConnectOutcomes:
    def test_connects_are_counted_by_outcome(self, node: Node) -> None:
        vid, ctx = node.create("a")
        node.stage(vid, node.staging(), BLOCK, ctx)
        node.stage(vid, node.staging(), BLOCK, ctx)  # a block stage reconnects: reused
        node.initiator.faults.fail_next(1, operations={"connect"})
        vid_b, ctx_b = node.create("b")
        with pytest.raises(BackendUnavailable):
            node.stage(vid_b, node.staging("b"), MOUNT, ctx_b)
        missing = str(VolumeId.from_name("never-created"))
        with pytest.raises(VolumeNotFound):
            node.stage(
                missing,
                node.staging("c"),
                MOUNT,
                {"nqn": f"nqn.2000-02.com.mikrotik:{missing}", "nvmeAddress": "10.0.0.1"},
            )
        node.initiator.faults.fail_next(
            1, lambda: BackendError("nvme", "no such tool"), operations={"connect"}
        )
        with pytest.raises(BackendError):
            node.stage(vid_b, node.staging("b"), MOUNT, ctx_b)
        counts = {
            o: node.connects(o)
            for o in ("success", "reused", "unavailable", "not_found", "failure")
        }
        assert counts == {
            "success": 1,
            "reused": 1,
            "unavailable": 1,
            "not_found": 1,
            "failure": 1,
        }


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


class TestUnstageGuards:
    def test_a_volume_still_published_is_not_unstaged(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, MOUNT, ctx)
        node.publish(vid, staging, target, MOUNT)
        with pytest.raises(Conflict, match=f"still published at {target}"):
            node.unstage(vid, staging)
        assert node.mounter.mount_at(staging) is not None
        assert node.initiator.connections() == [Nqn(ctx["nqn"])]

    def test_a_block_volume_still_published_is_not_disconnected(self, node: Node) -> None:
        vid, ctx = node.create("b")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, BLOCK, ctx)
        node.publish(vid, staging, target, BLOCK)
        with pytest.raises(Conflict):
            node.unstage(vid, staging)
        assert node.initiator.connections() == [Nqn(ctx["nqn"])]
        node.unpublish(vid, target)
        node.unstage(vid, staging)
        assert node.initiator.connections() == []

    def test_a_stale_staging_mount_is_unstaged_too(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.initiator.bounce(Nqn(ctx["nqn"]))
        node.unstage(vid, staging)
        assert node.mounter.mounts() == []
        assert node.initiator.connections() == []


class TestRawBlock:
    def test_published_twice_for_a_live_migration(self, node: Node) -> None:
        vid, ctx = node.create("b")
        rwx = VolumeCapability.block(AccessMode.MULTI_NODE_MULTI_WRITER)
        staging = node.staging()
        node.stage(vid, staging, rwx, ctx)
        node.publish(vid, staging, node.target("source-vm"), rwx)
        node.publish(vid, staging, node.target("target-vm"), rwx)
        device = node.device(ctx)
        for name in ("source-vm", "target-vm"):
            mounted = node.mounter.mount_at(node.target(name))
            assert mounted is not None
            assert mounted.source == device
            assert pathlib.Path(node.target(name)).is_file()
        assert node.fs.detect(device) is None

    def test_read_only_block(self, node: Node) -> None:
        vid, ctx = node.create("b")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, BLOCK, ctx)
        node.publish(vid, staging, target, BLOCK, read_only=True)
        mounted = node.mounter.mount_at(target)
        assert mounted is not None
        assert mounted.read_only

    def test_a_mount_published_there_is_not_a_block_publish(self, node: Node) -> None:
        vid, ctx = node.create("b")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, MOUNT, ctx)
        node.publish(vid, staging, target, MOUNT)
        with pytest.raises(AlreadyExists, match="different access type"):
            node.publish(vid, staging, target, BLOCK)


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
