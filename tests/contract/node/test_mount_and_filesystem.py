"""
The Mounter and Filesystem contract, on the in-memory fakes and on real block devices and real
mounts (root).

One volume's life on a node, step by step: blank -> formatted once -> mounted at the staging path
-> bound into pods (read-write, read-only, raw block) -> grown -> measured -> unmounted. Where the
fakes legitimately differ (they keep no files, only a device's raw bytes), ``real_data`` says so
and only the real adapters are asked about files.
"""

from __future__ import annotations

import errno
import os
import pathlib
import shutil

import pytest

from rds_csi.domain import BackendError, Conflict, InvalidArgument, NotFound
from rds_csi.domain.size import MIB
from tests.support.root import CAP_SYS_RESOURCE, has_capability

from .conftest import MountHarness


def _need_tools_for(node_fs: MountHarness, fs_type: str) -> None:
    tool = "mkfs.xfs" if fs_type == "xfs" else f"mkfs.{fs_type}"
    if node_fs.real_data and shutil.which(tool) is None:
        pytest.skip(f"needs {tool} (apt-get install xfsprogs e2fsprogs)")


def _staged(node_fs: MountHarness, fs_type: str = "ext4", size: int = 64 * MIB) -> tuple[str, str]:
    _need_tools_for(node_fs, fs_type)
    device = node_fs.device(size)
    node_fs.filesystem.make(device, fs_type)
    staging = node_fs.mount_point("staging")
    node_fs.mounter.mount(device, staging, fs_type, [])
    return device, staging


class TestFormat:
    def test_a_blank_device_detects_as_none(self, node_fs: MountHarness) -> None:
        assert node_fs.filesystem.detect(node_fs.device()) is None

    @pytest.mark.parametrize(
        ("fs_type", "size"), [("ext4", 64 * MIB), ("ext3", 64 * MIB), ("xfs", 320 * MIB)]
    )
    def test_format_once_then_detect(self, node_fs: MountHarness, fs_type: str, size: int) -> None:
        _need_tools_for(node_fs, fs_type)
        device = node_fs.device(size)
        node_fs.filesystem.make(device, fs_type)
        assert node_fs.filesystem.detect(device) == fs_type

    def test_a_device_with_a_filesystem_is_never_formatted_again(
        self, node_fs: MountHarness
    ) -> None:
        device, staging = _staged(node_fs)
        if node_fs.real_data:
            pathlib.Path(staging, "keep.txt").write_text("precious")
        node_fs.mounter.unmount(staging)
        with pytest.raises(Conflict, match="already holds ext4"):
            node_fs.filesystem.make(device, "xfs")
        node_fs.mounter.mount(device, staging, "ext4", [])
        assert node_fs.filesystem.detect(device) == "ext4"
        if node_fs.real_data:
            assert pathlib.Path(staging, "keep.txt").read_text() == "precious"

    def test_detect_of_a_missing_device_is_an_error_not_blank(self, node_fs: MountHarness) -> None:
        with pytest.raises(BackendError, match="does not exist"):
            node_fs.filesystem.detect(node_fs.path("no-such-device"))

    def test_an_unsupported_type_is_refused_before_anything_runs(
        self, node_fs: MountHarness
    ) -> None:
        device = node_fs.device()
        with pytest.raises(InvalidArgument):
            node_fs.filesystem.make(device, "vfat")
        assert node_fs.filesystem.detect(device) is None


class TestMount:
    def test_mount_shows_in_the_table_with_its_options(self, node_fs: MountHarness) -> None:
        device = node_fs.device()
        node_fs.filesystem.make(device, "ext4")
        staging = node_fs.mount_point("staging")
        node_fs.mounter.mount(device, staging, "ext4", ["noatime", "nodev"])
        info = node_fs.mounter.mount_at(staging)
        assert info is not None
        assert (info.source, info.fs_type, info.root) == (device, "ext4", "/")
        assert info.major_minor == node_fs.filesystem.device_number(device)
        assert {"noatime", "nodev"} <= set(info.options)
        assert not info.read_only
        assert info in node_fs.mounter.mounts()

    def test_mount_is_idempotent_and_never_stacks(self, node_fs: MountHarness) -> None:
        device, staging = _staged(node_fs)
        node_fs.mounter.mount(device, staging, "ext4", [])
        assert [m.target for m in node_fs.mounter.mounts()].count(staging) == 1
        node_fs.mounter.unmount(staging)
        assert node_fs.mounter.mount_at(staging) is None

    def test_something_else_mounted_there_is_a_conflict(self, node_fs: MountHarness) -> None:
        _, staging = _staged(node_fs)
        other = node_fs.device()
        node_fs.filesystem.make(other, "ext4")
        with pytest.raises(Conflict):
            node_fs.mounter.mount(other, staging, "ext4", [])

    def test_a_failed_mount_says_why_and_leaves_nothing_mounted(
        self, node_fs: MountHarness
    ) -> None:
        device = node_fs.device()  # blank: nothing to mount
        staging = node_fs.mount_point("staging")
        with pytest.raises(BackendError, match="cannot mount") as caught:
            node_fs.mounter.mount(device, staging, "ext4", [])
        assert "wrong fs type" in str(caught.value) or "bad superblock" in str(caught.value)
        assert node_fs.mounter.mount_at(staging) is None

    def test_a_missing_mount_point_is_an_error_and_is_not_created(
        self, node_fs: MountHarness
    ) -> None:
        device = node_fs.device()
        node_fs.filesystem.make(device, "ext4")
        staging = node_fs.path("never-made")
        with pytest.raises(BackendError):
            node_fs.mounter.mount(device, staging, "ext4", [])
        assert not pathlib.Path(staging).exists()
        assert node_fs.mounter.mount_at(staging) is None

    def test_options_that_could_smuggle_arguments_are_refused(self, node_fs: MountHarness) -> None:
        device, _ = _staged(node_fs)
        other = node_fs.mount_point("other")
        for options in (["ro,remount"], ["-o", "x"], ["a b"]):
            with pytest.raises(InvalidArgument):
                node_fs.mounter.mount(device, other, "ext4", options)


class TestBind:
    def test_bind_shows_the_staged_files_in_the_pod_path(self, node_fs: MountHarness) -> None:
        device, staging = _staged(node_fs)
        pod = node_fs.mount_point("pods", "uid-1", "volume")
        node_fs.mounter.bind(staging, pod)
        info = node_fs.mounter.mount_at(pod)
        assert info is not None
        # The port's promise: a bind names the device behind it, as the staging mount does.
        assert (info.source, info.root) == (device, "/")
        assert info.major_minor == node_fs.filesystem.device_number(device)
        if node_fs.real_data:
            pathlib.Path(staging, "data").write_text("hello")
            assert pathlib.Path(pod, "data").read_text() == "hello"
            pathlib.Path(pod, "from-pod").write_text("written in the pod")
            assert pathlib.Path(staging, "from-pod").read_text() == "written in the pod"
        node_fs.mounter.bind(staging, pod)  # idempotent
        assert [m.target for m in node_fs.mounter.mounts()].count(pod) == 1
        node_fs.mounter.unmount(pod)
        node_fs.mounter.remove_mount_point(pod)
        assert not pathlib.Path(pod).exists()
        assert node_fs.mounter.mount_at(staging) is not None

    def test_a_bind_of_a_subdirectory_names_its_root(self, node_fs: MountHarness) -> None:
        device, staging = _staged(node_fs)
        pathlib.Path(staging, "sub").mkdir()
        pod = node_fs.mount_point("pods", "uid-sub", "volume")
        node_fs.mounter.bind(str(pathlib.Path(staging, "sub")), pod)
        info = node_fs.mounter.mount_at(pod)
        assert info is not None
        assert (info.source, info.root) == (device, "/sub")

    def test_a_read_only_bind_refuses_writes(self, node_fs: MountHarness) -> None:
        _, staging = _staged(node_fs)
        pod = node_fs.mount_point("pods", "uid-2", "volume")
        node_fs.mounter.bind(staging, pod, read_only=True)
        info = node_fs.mounter.mount_at(pod)
        assert info is not None
        assert info.read_only
        staged = node_fs.mounter.mount_at(staging)
        assert staged is not None
        assert not staged.read_only
        if node_fs.real_data:
            with pytest.raises(OSError) as caught:
                pathlib.Path(pod, "nope").write_text("x")
            assert caught.value.errno == errno.EROFS
            pathlib.Path(staging, "still-writable").write_text("yes")

    def test_binding_again_with_the_other_read_only_flag_is_a_conflict(
        self, node_fs: MountHarness
    ) -> None:
        _, staging = _staged(node_fs)
        pod = node_fs.mount_point("pods", "uid-3", "volume")
        node_fs.mounter.bind(staging, pod, read_only=True)
        with pytest.raises(Conflict):
            node_fs.mounter.bind(staging, pod, read_only=False)

    def test_a_bind_onto_a_missing_target_is_an_error(self, node_fs: MountHarness) -> None:
        _, staging = _staged(node_fs)
        pod = node_fs.path("pods", "never-made")
        with pytest.raises(BackendError):
            node_fs.mounter.bind(staging, pod)
        assert not pathlib.Path(pod).exists()

    def test_a_raw_block_device_binds_onto_a_file(self, node_fs: MountHarness) -> None:
        device = node_fs.device(16 * MIB)
        first = node_fs.mount_point("pods", "vm-a", "disk", file=True)
        second = node_fs.mount_point("pods", "vm-b", "disk", file=True)
        node_fs.mounter.bind(device, first)
        node_fs.mounter.bind(device, second)  # live migration: two pods, one device
        node_fs.mounter.bind(device, second)  # idempotent
        for target in (first, second):
            info = node_fs.mounter.mount_at(target)
            assert info is not None
            # The device, not the devtmpfs it lives in: the use cases compare it with
            # NvmeInitiator.device_for.
            assert info.source == device
            assert info.root == "/" + pathlib.Path(device).name
            assert info.major_minor == node_fs.filesystem.device_number(device)
            assert node_fs.filesystem.is_block_device(target)
            assert node_fs.filesystem.device_size(target) == 16 * MIB
        # Two pods, one device: what one writes, the other reads from the device.
        node_fs.write_block(first, 3 * MIB, b"through the first target")
        assert node_fs.read_block_direct(second, 3 * MIB)[:24] == b"through the first target"
        assert node_fs.filesystem.detect(device) is None  # raw block is never formatted
        for target in (first, second):
            node_fs.mounter.unmount(target)
            assert not node_fs.filesystem.is_block_device(target)
            node_fs.mounter.remove_mount_point(target)
            assert not pathlib.Path(target).exists()

    def test_a_directory_is_no_block_device(self, node_fs: MountHarness) -> None:
        _, staging = _staged(node_fs)
        assert not node_fs.filesystem.is_block_device(staging)
        assert not node_fs.filesystem.is_block_device(node_fs.path("missing"))


class TestMountPoints:
    def test_make_says_whether_it_made_one(self, node_fs: MountHarness) -> None:
        directory = node_fs.path("a", "b", "dir")
        assert node_fs.mounter.make_mount_point(directory) is True
        assert node_fs.mounter.make_mount_point(directory) is False
        assert pathlib.Path(directory).is_dir()
        file = node_fs.path("c", "file")
        assert node_fs.mounter.make_mount_point(file, file=True) is True
        assert node_fs.mounter.make_mount_point(file, file=True) is False
        assert pathlib.Path(file).is_file()

    def test_the_wrong_kind_in_the_way_is_an_error(self, node_fs: MountHarness) -> None:
        directory = node_fs.mount_point("dir")
        with pytest.raises(BackendError):
            node_fs.mounter.make_mount_point(directory, file=True)

    def test_remove_is_idempotent(self, node_fs: MountHarness) -> None:
        directory = node_fs.mount_point("dir")
        assert node_fs.mounter.remove_mount_point(directory) is True
        assert node_fs.mounter.remove_mount_point(directory) is False
        assert not pathlib.Path(directory).exists()

    def test_a_made_file_is_removed(self, node_fs: MountHarness) -> None:
        file = node_fs.mount_point("pods", "vm", "disk", file=True)
        assert node_fs.mounter.remove_mount_point(file) is True
        assert not pathlib.Path(file).exists()

    def test_remove_never_deletes_data(self, node_fs: MountHarness) -> None:
        directory = pathlib.Path(node_fs.path("not-a-mount"))
        directory.mkdir(parents=True)
        (directory / "file").write_text("someone's data")
        assert node_fs.mounter.remove_mount_point(str(directory)) is False
        assert node_fs.mounter.remove_mount_point(str(directory / "file")) is False
        assert (directory / "file").read_text() == "someone's data"

    def test_what_it_did_not_make_is_left_alone_even_empty(self, node_fs: MountHarness) -> None:
        directory = pathlib.Path(node_fs.path("kubelets"))
        directory.mkdir(parents=True)
        empty = directory / "empty-file"
        empty.touch()
        link = directory / "link"
        link.symlink_to(node_fs.mount_point("made"))
        for path in (directory, empty, link):
            assert node_fs.mounter.remove_mount_point(str(path)) is False
            assert path.exists()

    def test_a_made_directory_someone_filled_is_refused(self, node_fs: MountHarness) -> None:
        directory = pathlib.Path(node_fs.mount_point("filled"))
        (directory / "file").write_text("someone's data")
        with pytest.raises(BackendError):
            node_fs.mounter.remove_mount_point(str(directory))
        assert (directory / "file").read_text() == "someone's data"

    def test_a_mounted_mount_point_is_not_removed(self, node_fs: MountHarness) -> None:
        _, staging = _staged(node_fs)
        with pytest.raises(BackendError):
            node_fs.mounter.remove_mount_point(staging)
        assert node_fs.mounter.mount_at(staging) is not None


class TestResolve:
    def test_symlinks_and_dots_are_resolved(self, node_fs: MountHarness) -> None:
        real = pathlib.Path(node_fs.mount_point("real"))
        link = pathlib.Path(node_fs.path("link"))
        link.symlink_to(real)
        resolved = node_fs.mounter.resolve(f"{link}/./sub//missing")
        assert resolved == f"{os.path.realpath(real)}/sub/missing"

    def test_proc_self_root_is_the_root(self, node_fs: MountHarness) -> None:
        assert node_fs.mounter.resolve("/proc/self/root/etc") == "/etc"

    def test_a_link_out_of_the_directory_resolves_outside(self, node_fs: MountHarness) -> None:
        link = pathlib.Path(node_fs.path("to-etc"))
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/etc")
        assert node_fs.mounter.resolve(str(link)) == "/etc"


class TestUnmount:
    def test_unmount_is_idempotent(self, node_fs: MountHarness) -> None:
        _, staging = _staged(node_fs)
        node_fs.mounter.unmount(staging)
        node_fs.mounter.unmount(staging)
        node_fs.mounter.unmount(node_fs.path("never-existed"))
        assert node_fs.mounter.mount_at(staging) is None
        assert pathlib.Path(staging).is_dir()  # the mount point stays

    def test_a_busy_mount_is_an_error_and_stays_mounted(self, node_fs: MountHarness) -> None:
        _, staging = _staged(node_fs)
        with pathlib.Path(staging, "open.txt").open("w"):
            with pytest.raises(BackendError, match="busy"):
                node_fs.mounter.unmount(staging)
            assert node_fs.mounter.mount_at(staging) is not None
        node_fs.mounter.unmount(staging)


class TestGrowAndStats:
    @pytest.mark.parametrize(
        ("fs_type", "size", "grown"),
        [("ext4", 64 * MIB, 128 * MIB), ("xfs", 320 * MIB, 400 * MIB)],
    )
    def test_grow_after_the_device_grew(
        self, node_fs: MountHarness, fs_type: str, size: int, grown: int
    ) -> None:
        if node_fs.real_data and fs_type != "xfs" and not has_capability(CAP_SYS_RESOURCE):
            pytest.skip("online ext4 resize needs CAP_SYS_RESOURCE, which this sandbox lacks")
        device, staging = _staged(node_fs, fs_type, size)
        before = node_fs.filesystem.stats(staging).bytes_total
        node_fs.grow_device(device, grown)
        assert node_fs.filesystem.device_size(device) == grown
        node_fs.filesystem.grow(device, staging, fs_type)
        after = node_fs.filesystem.stats(staging).bytes_total
        assert after - before > (grown - size) * 9 // 10

    def test_an_ext4_grow_without_the_capability_says_what_is_missing(
        self, node_fs: MountHarness
    ) -> None:
        if not node_fs.real_data or has_capability(CAP_SYS_RESOURCE):
            pytest.skip("needs the real resize2fs run without CAP_SYS_RESOURCE")
        device, staging = _staged(node_fs, "ext4", 64 * MIB)
        node_fs.grow_device(device, 128 * MIB)
        with pytest.raises(BackendError, match="CAP_SYS_RESOURCE"):
            node_fs.filesystem.grow(device, staging, "ext4")

    def test_stats_count_bytes_and_inodes(self, node_fs: MountHarness) -> None:
        device, staging = _staged(node_fs)
        empty = node_fs.filesystem.stats(staging)
        assert 0 <= empty.bytes_used < empty.bytes_total <= 64 * MIB
        assert empty.bytes_available <= empty.bytes_total - empty.bytes_used
        assert 0 < empty.inodes_used < empty.inodes_total
        assert empty.inodes_available <= empty.inodes_total - empty.inodes_used
        assert node_fs.filesystem.device_size(device) == 64 * MIB
        if not node_fs.real_data:
            return
        pathlib.Path(staging, "blob").write_bytes(os.urandom(4 * MIB))
        for i in range(10):
            pathlib.Path(staging, f"f{i}").touch()
        os.sync()
        full = node_fs.filesystem.stats(staging)
        assert full.bytes_used - empty.bytes_used >= 4 * MIB
        assert full.inodes_used - empty.inodes_used == 11

    def test_stats_of_a_missing_path_is_not_found(self, node_fs: MountHarness) -> None:
        with pytest.raises(NotFound):
            node_fs.filesystem.stats(node_fs.path("gone"))

    def test_device_number_of_something_else_is_an_error(self, node_fs: MountHarness) -> None:
        with pytest.raises(BackendError):
            node_fs.filesystem.device_number(node_fs.path("no-such-device"))
        with pytest.raises(BackendError):
            node_fs.filesystem.device_number(node_fs.mount_point("a-directory"))
