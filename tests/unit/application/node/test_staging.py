"""NodeStageVolume and NodeUnstageVolume over the fake node ports."""

from __future__ import annotations

import pathlib

import pytest

from rds_csi.application.structure import structure_context
from rds_csi.domain import (
    AccessMode,
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    Conflict,
    InvalidArgument,
    Nqn,
    OperationInProgress,
    UnsupportedCapability,
    VolumeCapability,
    VolumeId,
    VolumeNotFound,
)
from tests.unit.application.node.world import BLOCK, MOUNT, Node


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


class TestStageGrowsCopies:
    """A volume restored or cloned larger than its source: its filesystem is grown at stage."""

    def _shrunk(self, node: Node) -> tuple[str, dict[str, str], str]:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        medium = node.devices.get(node.device(ctx)).medium  # type: ignore[union-attr]
        medium.fs_size //= 2  # the source's filesystem, on a device twice its size
        node.unstage(vid, staging)
        return vid, ctx, staging

    def test_a_filesystem_clearly_smaller_than_its_device_is_grown(self, node: Node) -> None:
        vid, ctx, staging = self._shrunk(node)
        node.stage(vid, staging, MOUNT, ctx)
        device = node.devices.get(node.device(ctx))
        assert device is not None
        assert node.fs.stats(staging).bytes_total == device.size

    def test_a_failing_grow_leaves_the_volume_staged(self, node: Node) -> None:
        vid, ctx, staging = self._shrunk(node)
        node.fs.faults.fail_next(1, lambda: BackendError("resize2fs", "EPERM"), operations={"grow"})
        node.stage(vid, staging, MOUNT, ctx)
        assert node.mounter.mount_at(staging) is not None

    def test_a_full_size_filesystem_runs_no_resize(
        self, node: Node, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        node.unstage(vid, staging)
        grows: list[str] = []
        monkeypatch.setattr(node.fs, "grow", lambda device, *_: grows.append(device))
        node.stage(vid, staging, MOUNT, ctx)
        assert grows == []
