"""NodePublishVolume and NodeUnpublishVolume over the fake node ports."""

from __future__ import annotations

import pathlib

import pytest

from rds_csi.domain import (
    AccessMode,
    AlreadyExists,
    BackendError,
    Conflict,
    Nqn,
    VolumeCapability,
)
from tests.unit.application.node.world import BLOCK, MOUNT, Node


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
