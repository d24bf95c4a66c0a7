"""
The Filesystem on blkid, mkfs, resize2fs/xfs_growfs and statvfs.

The one rule that protects data: ``make`` probes the device itself and refuses anything that is
not blank. mke2fs does not ask before overwriting when stdin is not a terminal, so the check
cannot be left to the tool, nor only to the caller.
"""

from __future__ import annotations

import errno
import logging
import os
import pathlib
import stat
from typing import Final

from rds_csi.adapters.mount.parse import parse_blkid_export
from rds_csi.adapters.process import ToolTimeout, describe, run_tool
from rds_csi.application.ports import Filesystem, FilesystemStats
from rds_csi.domain import BackendError, Conflict, InvalidArgument, NodePath, NotFound


__all__ = ["LinuxFilesystem"]

_log = logging.getLogger(__name__)

# blkid(8) exit codes for a low-level probe (-p).
_BLKID_FOUND: Final = 0
_BLKID_NOTHING: Final = 2
_BLKID_AMBIVALENT: Final = 8

# ext3/ext4 with no root reserve: a volume's space belongs to the pod, whatever its UID
# (the Kubernetes mount-utils convention, -m0).
_MKFS: Final = {
    "ext4": ["mkfs.ext4", "-q", "-m", "0"],
    "ext3": ["mkfs.ext3", "-q", "-m", "0"],
    "xfs": ["mkfs.xfs", "-q"],
}


def _check_fs_type(fs_type: str) -> str:
    if fs_type not in _MKFS:
        raise InvalidArgument(
            "fs_type", f"{fs_type!r} is not supported (use one of {sorted(_MKFS)})"
        )
    return fs_type


class LinuxFilesystem(Filesystem):
    """
    Args:
        command_timeout: Seconds for blkid and the resize tools.
        mkfs_timeout: Seconds for mkfs (large volumes with discard take a while).
        blkid, resize2fs, xfs_growfs: The executables; mkfs.<type> is found on PATH.
    """

    def __init__(
        self,
        *,
        command_timeout: float = 120.0,
        mkfs_timeout: float = 600.0,
        blkid: str = "blkid",
        resize2fs: str = "resize2fs",
        xfs_growfs: str = "xfs_growfs",
    ) -> None:
        self._timeout = command_timeout
        self._mkfs_timeout = mkfs_timeout
        self._blkid = blkid
        self._resize2fs = resize2fs
        self._xfs_growfs = xfs_growfs

    def _run(self, argv: list[str], what: str, timeout: float) -> str:
        try:
            result = run_tool(argv, timeout=timeout)
        except ToolTimeout as exc:
            raise BackendError(what, str(exc)) from None
        if not result.ok:
            raise BackendError(what, result.detail())
        return result.stdout

    def detect(self, device: str) -> str | None:
        NodePath.parse(device, field="device")
        # blkid answers "nothing found" (2) for a path that does not exist, too.
        _require_device(device)
        argv = [self._blkid, "-p", "-o", "export", "--", device]
        try:
            result = run_tool(argv, timeout=self._timeout)
        except ToolTimeout as exc:
            raise BackendError(f"cannot probe {device}", str(exc)) from None
        if result.returncode == _BLKID_NOTHING and not result.stderr.strip():
            return None
        if result.returncode == _BLKID_AMBIVALENT:
            raise BackendError(
                f"{device} carries several conflicting signatures; refusing to guess",
                result.detail(),
            )
        if result.returncode != _BLKID_FOUND:
            raise BackendError(f"cannot probe {device}", result.detail())
        tags = parse_blkid_export(result.stdout)
        if tags.get("TYPE"):
            return tags["TYPE"]
        if tags.get("PTTYPE"):
            return f"{tags['PTTYPE']} partition table"
        # A signature blkid recognised but could not name: data, not blank.
        return "unknown signature"

    def make(self, device: str, fs_type: str) -> None:
        _check_fs_type(fs_type)
        found = self.detect(device)
        if found is not None:
            raise Conflict(f"{device} already holds {found}; refusing to format it")
        argv = [*_MKFS[fs_type], "--", device]
        self._run(argv, f"{describe(argv)} failed", self._mkfs_timeout)
        _log.info("made %s on %s", fs_type, device)

    def grow(self, device: str, mount_path: str, fs_type: str) -> None:
        _check_fs_type(fs_type)
        NodePath.parse(device, field="device")
        NodePath.parse(mount_path, field="mount_path")
        if fs_type == "xfs":
            # xfs grows through its mount point, online only.
            argv = [self._xfs_growfs, "-d", "--", mount_path]
        else:
            argv = [self._resize2fs, "--", device]
        what = f"cannot grow the {fs_type} filesystem on {device}"
        try:
            self._run(argv, what, self._timeout)
        except BackendError as exc:
            if fs_type != "xfs" and "Permission denied" in exc.backend_message:
                # EXT4_IOC_RESIZE_FS answers EPERM without CAP_SYS_RESOURCE, and when the
                # filesystem has recorded errors: say both, the tool says neither.
                raise BackendError(
                    what,
                    f"{exc.backend_message} (online ext resize needs CAP_SYS_RESOURCE in the "
                    "node plugin, and a filesystem without recorded errors; see dmesg)",
                ) from exc
            raise
        _log.info("grew %s on %s (%s)", fs_type, device, mount_path)

    def stats(self, path: str) -> FilesystemStats:
        NodePath.parse(path, field="path")
        try:
            st = os.statvfs(path)
        except FileNotFoundError:
            raise NotFound(f"{path} does not exist") from None
        except OSError as exc:
            raise BackendError(f"cannot read the filesystem at {path}", str(exc)) from exc
        return FilesystemStats(
            bytes_total=st.f_blocks * st.f_frsize,
            bytes_available=st.f_bavail * st.f_frsize,
            bytes_used=(st.f_blocks - st.f_bfree) * st.f_frsize,
            inodes_total=st.f_files,
            inodes_available=st.f_favail,
            inodes_used=max(st.f_files - st.f_ffree, 0),
        )

    def device_size(self, device: str) -> int:
        NodePath.parse(device, field="device")
        _require_device(device)
        try:
            fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise BackendError(f"cannot open {device}", str(exc)) from exc
        try:
            # The end of a block device is its size: no tool, no sysfs name mapping.
            return os.lseek(fd, 0, os.SEEK_END)
        except OSError as exc:
            raise BackendError(f"cannot size {device}", str(exc)) from exc
        finally:
            os.close(fd)

    def device_number(self, device: str) -> str:
        NodePath.parse(device, field="device")
        st = _stat(device)
        if not stat.S_ISBLK(st.st_mode):
            raise BackendError(f"{device} is not a block device")
        return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"

    def is_block_device(self, path: str) -> bool:
        NodePath.parse(path, field="path")
        try:
            return stat.S_ISBLK(pathlib.Path(path).stat().st_mode)
        except OSError:
            return False


def _stat(device: str) -> os.stat_result:
    try:
        return pathlib.Path(device).stat()
    except FileNotFoundError:
        raise BackendError(f"device {device} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise BackendError(f"device {device} is gone (no such device)") from exc
        raise BackendError(f"cannot stat {device}", str(exc)) from exc


def _require_device(device: str) -> None:
    st = _stat(device)
    if not (stat.S_ISBLK(st.st_mode) or stat.S_ISREG(st.st_mode)):
        raise BackendError(f"{device} is neither a block device nor an image file")
