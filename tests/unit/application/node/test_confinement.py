"""
What the node may touch (issue 12, items 4 and 11) over the fake node ports: paths below the
kubelet directory only, mounts of the volume asked about only, mount points it made only, and
argument checks before the volume ID is looked at.
"""

from __future__ import annotations

import os
import pathlib

import pytest

from rds_csi.application.node import KubeletDir
from rds_csi.application.ports import MountInfo
from rds_csi.domain import CapacityRange, Conflict, InvalidArgument, VolumeId, VolumeNotFound
from rds_csi.domain.size import GIB
from tests.unit.application.node.world import BLOCK, MOUNT, Node


FOREIGN_ID = "vol-from-another-driver"


def _random_id() -> str:
    return str(VolumeId.from_name("nobody staged this"))


class TestKubeletDir:
    @pytest.mark.parametrize("outside", ["/etc", "/proc/self/root/etc", "/"])
    def test_stage_outside_is_refused_and_nothing_is_done(self, node: Node, outside: str) -> None:
        vid, ctx = node.create("a")
        with pytest.raises(InvalidArgument) as info:
            node.stage(vid, outside, MOUNT, ctx)
        assert info.value.field == "staging_target_path"
        assert "--kubelet-dir" in str(info.value)
        assert node.initiator.connections() == []
        assert node.mounter.mounts() == []

    def test_a_symlink_out_is_refused_naming_where_it_leads(self, node: Node) -> None:
        vid, ctx = node.create("a")
        link = node.root / "plugins" / "globalmount"
        link.parent.mkdir()
        link.symlink_to("/etc")
        with pytest.raises(InvalidArgument, match="resolves to '/etc'"):
            node.stage(vid, str(link), MOUNT, ctx)
        assert node.mounter.mounts() == []

    def test_the_kubelet_dir_itself_is_refused(self, node: Node) -> None:
        vid, ctx = node.create("a")
        with pytest.raises(InvalidArgument):
            node.stage(vid, str(node.root), MOUNT, ctx)

    def test_a_symlink_in_stays_allowed_and_the_real_path_is_used(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        link = node.root / "link-to-staging"
        link.symlink_to(staging)
        node.stage(vid, str(link), MOUNT, ctx)
        assert node.mounter.mount_at(os.path.realpath(staging)) is not None
        node.unstage(vid, str(link))
        assert node.mounter.mounts() == []

    def test_a_symlinked_kubelet_dir_is_followed(self, node: Node, tmp_path: pathlib.Path) -> None:
        alias = tmp_path.parent / f"{tmp_path.name}-alias"
        alias.symlink_to(tmp_path)
        try:
            node.root = alias
            vid, ctx = node.create("a")
            node.stage(vid, str(tmp_path / "staging-real"), BLOCK, ctx)
        finally:
            alias.unlink()

    def test_publish_refuses_a_target_or_staging_outside(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging = node.staging()
        node.stage(vid, staging, MOUNT, ctx)
        with pytest.raises(InvalidArgument) as target:
            node.publish(vid, staging, "/etc", MOUNT)
        with pytest.raises(InvalidArgument) as source:
            node.publish(vid, "/proc/self/root/etc", node.target(), MOUNT)
        assert (target.value.field, source.value.field) == ("target_path", "staging_target_path")
        assert len(node.mounter.mounts()) == 1

    @pytest.mark.parametrize("outside", ["/etc", "/proc"])
    def test_unpublish_and_unstage_refuse_paths_outside(self, node: Node, outside: str) -> None:
        node.mounter.mount_foreign(MountInfo("proc", outside, "proc", ("rw",), "/", "0:22"))
        with pytest.raises(InvalidArgument):
            node.unpublish(_random_id(), outside)
        with pytest.raises(InvalidArgument):
            node.unstage(_random_id(), outside)
        assert node.mounter.mount_at(outside) is not None
        assert pathlib.Path(outside).is_dir()

    @pytest.mark.parametrize("outside", ["/etc", "/proc"])
    def test_expand_refuses_a_volume_path_outside(self, node: Node, outside: str) -> None:
        node.mounter.mount_foreign(MountInfo("proc", outside, "proc", ("rw",), "/", "0:22"))
        with pytest.raises(InvalidArgument, match="volume_path"):
            node.expand(_random_id(), outside, CapacityRange(required=GIB))

    def test_the_setting_is_checked(self) -> None:
        with pytest.raises(InvalidArgument, match="kubelet_dir"):
            KubeletDir.parse("var/lib/kubelet")


class TestUnmountsOnlyItsOwn:
    def test_unpublish_leaves_a_foreign_tmpfs_mounted(self, node: Node) -> None:
        target = node.target()
        pathlib.Path(target).mkdir(parents=True)
        node.mounter.mount_foreign(MountInfo("tmpfs", target, "tmpfs", ("rw",), "/", "0:55"))
        with pytest.raises(Conflict, match="not ours to unmount"):
            node.unpublish(_random_id(), target)
        assert node.mounter.mount_at(target) is not None
        assert pathlib.Path(target).is_dir()

    def test_unpublish_leaves_a_live_host_disk_mounted(self, node: Node) -> None:
        # An ext4 of a device that is live (not this volume's, not gone): not a stale mount.
        other, other_ctx = node.create("other")
        staging = node.staging("other-staging")
        node.stage(other, staging, MOUNT, other_ctx)
        with pytest.raises(Conflict):
            node.unpublish(_random_id(), staging)
        with pytest.raises(Conflict):
            node.unstage(_random_id(), staging)
        assert node.mounter.mount_at(staging) is not None

    def test_unpublish_deletes_no_file_or_directory_it_did_not_make(self, node: Node) -> None:
        directory = node.root / "pods" / "someone" / "dir"
        directory.mkdir(parents=True)
        empty = directory.parent / "empty-file"
        empty.touch()
        node.unpublish(_random_id(), str(directory))
        node.unpublish(_random_id(), str(empty))
        assert directory.is_dir()
        assert empty.is_file()

    def test_unpublish_removes_what_publish_made(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, MOUNT, ctx)
        node.publish(vid, staging, target, MOUNT)
        node.unpublish(vid, target)
        assert not pathlib.Path(target).exists()

    def test_unpublish_of_a_stale_bind_still_unmounts_it(self, node: Node) -> None:
        vid, ctx = node.create("a")
        staging, target = node.staging(), node.target()
        node.stage(vid, staging, MOUNT, ctx)
        node.publish(vid, staging, target, MOUNT)
        node.initiator.disconnect(next(iter(node.initiator.connections())))  # the device is gone
        node.unpublish(vid, target)
        assert node.mounter.mount_at(target) is None
        assert not pathlib.Path(target).exists()

    def test_unstage_removes_a_staging_dir_only_if_stage_made_it(self, node: Node) -> None:
        vid, ctx = node.create("a")
        kubelets = node.staging()
        node.stage(vid, kubelets, MOUNT, ctx)
        node.unstage(vid, kubelets)
        assert pathlib.Path(kubelets).is_dir()
        made = str(node.root / "made-by-stage")
        node.stage(vid, made, MOUNT, ctx)
        node.unstage(vid, made)
        assert not pathlib.Path(made).exists()


class TestArgumentsBeforeTheVolumeId:
    """Item 11: a missing path is INVALID_ARGUMENT even for an ID that is not ours."""

    def test_stage_without_a_staging_path(self, node: Node) -> None:
        with pytest.raises(InvalidArgument, match="staging_target_path"):
            node.stage(FOREIGN_ID, "", MOUNT, {})

    def test_unstage_without_a_staging_path(self, node: Node) -> None:
        with pytest.raises(InvalidArgument, match="staging_target_path"):
            node.unstage(FOREIGN_ID, "")

    def test_publish_without_a_target_path(self, node: Node) -> None:
        with pytest.raises(InvalidArgument, match="target_path"):
            node.publish(FOREIGN_ID, node.staging(), "", MOUNT)

    def test_unpublish_without_a_target_path(self, node: Node) -> None:
        with pytest.raises(InvalidArgument, match="target_path"):
            node.unpublish(FOREIGN_ID, "")

    def test_stats_without_a_volume_path(self, node: Node) -> None:
        with pytest.raises(InvalidArgument, match="volume_path"):
            node.stats(FOREIGN_ID, "")

    @pytest.mark.parametrize("path", ["relative/path", "/no/volume/here"])
    def test_stats_where_no_volume_is_is_not_found(self, node: Node, path: str) -> None:
        with pytest.raises(VolumeNotFound):
            node.stats(_random_id(), path)
