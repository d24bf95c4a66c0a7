"""
The Mounter on util-linux ``mount``/``umount``, with ``/proc/self/mountinfo`` as the truth.

Identity decides idempotency, not names: a target "already has this" when ``stat`` of the
target gives the same filesystem (mount) or the same inode (bind) as the source would. So
``/dev/disk/by-id/...`` and ``/dev/nvme0n1`` are the same device, and nothing is ever mounted
twice on one path.
"""

from __future__ import annotations

import logging
import os
import pathlib
import re
import stat
from collections.abc import Callable, Sequence
from typing import Final

import attrs

from rds_csi.adapters.mount.parse import parse_mountinfo
from rds_csi.adapters.mount.points import make_marked, remove_marked, resolve_path
from rds_csi.adapters.process import ToolTimeout, run_tool
from rds_csi.application.ports import Mounter, MountInfo
from rds_csi.domain import BackendError, Conflict, InvalidArgument, MountOption, NodePath
from rds_csi.domain.text import option_names


__all__ = ["LinuxMounter"]

_log = logging.getLogger(__name__)
_FS_TYPE_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
_MAX_STACK: Final = 16


def _real(path: str) -> str:
    # mountinfo shows resolved paths (/var/lib/kubelet may be a symlink on some distros).
    try:
        return os.path.realpath(path)
    except OSError:
        return os.path.normpath(path)


class LinuxMounter(Mounter):
    """
    Args:
        mountinfo: The mount table to read (``/proc/self/mountinfo``).
        mount_binary, umount_binary: The executables.
        command_timeout: Seconds any one mount/umount may take.
    """

    def __init__(
        self,
        *,
        mountinfo: str | pathlib.Path = "/proc/self/mountinfo",
        mount_binary: str = "mount",
        umount_binary: str = "umount",
        command_timeout: float = 60.0,
    ) -> None:
        self._mountinfo = pathlib.Path(mountinfo)
        self._mount = mount_binary
        self._umount = umount_binary
        self._timeout = command_timeout

    # --- the table ---------------------------------------------------------------------------

    def mounts(self) -> list[MountInfo]:
        try:
            text = self._mountinfo.read_text(errors="replace")
        except OSError as exc:
            raise BackendError(f"cannot read {self._mountinfo}", str(exc)) from exc
        table = parse_mountinfo(text)
        return [_resolve_device_bind(entry, table) for entry in table]

    def mount_at(self, target: str) -> MountInfo | None:
        wanted = _real(NodePath.parse(target, field="target").value)
        found = None
        for entry in self.mounts():
            if entry.target == wanted:
                found = entry
        return found

    # --- mount, bind -------------------------------------------------------------------------

    def _run(self, argv: list[str], what: str) -> None:
        try:
            result = run_tool(argv, timeout=self._timeout)
        except ToolTimeout as exc:
            raise BackendError(what, str(exc)) from None
        if not result.ok:
            raise BackendError(what, result.detail())

    def mount(self, source: str, target: str, fs_type: str, options: Sequence[str]) -> None:
        NodePath.parse(source, field="source")
        NodePath.parse(target, field="target")
        if _FS_TYPE_RE.fullmatch(fs_type) is None:
            raise InvalidArgument("fs_type", f"{fs_type[:64]!r} is not a filesystem type")
        opts = [MountOption.parse(o).value for o in options]
        if self._already(target, lambda st: _device_of(source) == st.st_dev, source):
            return
        if not pathlib.Path(target).is_dir():
            raise BackendError(
                f"cannot mount {source} ({fs_type}) on {target}", "the mount point does not exist"
            )
        argv = [self._mount, "-t", fs_type]
        if opts:
            argv += ["-o", ",".join(opts)]
        argv += ["--", source, target]
        self._run(argv, f"cannot mount {source} ({fs_type}) on {target}")
        _log.info("mounted %s (%s, %s) on %s", source, fs_type, option_names(opts), target)

    def bind(self, source: str, target: str, *, read_only: bool = False) -> None:
        NodePath.parse(source, field="source")
        NodePath.parse(target, field="target")
        try:
            src = pathlib.Path(source).stat()
        except OSError as exc:
            raise BackendError(f"cannot bind {source}", exc.strerror or str(exc)) from exc

        def same(st: os.stat_result) -> bool:
            return (st.st_dev, st.st_ino) == (src.st_dev, src.st_ino)

        if self._already(target, same, source, read_only=read_only):
            return
        _require_mount_point(target, directory=stat.S_ISDIR(src.st_mode), source=source)
        self._run(
            [self._mount, "--bind", "--", source, target], f"cannot bind {source} on {target}"
        )
        if read_only:
            try:
                self._run(
                    [self._mount, "-o", "remount,bind,ro", "--", target],
                    f"cannot make the bind of {source} on {target} read-only",
                )
            except BackendError:
                # Never leave a writable bind where a read-only one was asked for.
                self.unmount(target)
                raise
        _log.info("bound %s on %s%s", source, target, " read-only" if read_only else "")

    def _already(
        self,
        target: str,
        same: Callable[[os.stat_result], bool],
        source: str,
        *,
        read_only: bool | None = None,
    ) -> bool:
        """
        True when ``source`` is already mounted at ``target`` as asked; Conflict when something
        else (or the same, with the other read-only flag) is.
        """
        current = self.mount_at(target)
        if current is None:
            return False
        try:
            st = pathlib.Path(target).stat()
        except OSError as exc:
            raise Conflict(
                f"{target} has {current.source} mounted but cannot be read "
                f"({exc.strerror}); it looks stale"
            ) from exc
        if not same(st):
            raise Conflict(f"{target} already has {current.source} mounted, not {source}")
        if read_only is not None and current.read_only != read_only:
            mode = "read-only" if current.read_only else "read-write"
            raise Conflict(f"{target} already has {source} bound {mode}")
        _log.info("%s is already mounted on %s", source, target)
        return True

    # --- unmount -----------------------------------------------------------------------------

    def unmount(self, target: str) -> None:
        NodePath.parse(target, field="target")
        for _ in range(_MAX_STACK):
            if self.mount_at(target) is None:
                break
            argv = [self._umount, "--", target]
            try:
                result = run_tool(argv, timeout=self._timeout)
            except ToolTimeout as exc:
                raise BackendError(f"cannot unmount {target}", str(exc)) from None
            if not result.ok and self.mount_at(target) is not None:
                raise BackendError(f"cannot unmount {target}", result.detail())
            _log.info("unmounted %s", target)
        else:
            raise BackendError(f"{target} is still mounted after {_MAX_STACK} unmounts")

    # --- mount points ------------------------------------------------------------------------

    def make_mount_point(self, path: str, *, file: bool = False) -> bool:
        NodePath.parse(path, field="path")
        return make_marked(path, file=file)

    def remove_mount_point(self, path: str) -> bool:
        NodePath.parse(path, field="path")
        current = self.mount_at(path)
        if current is not None:
            raise BackendError(f"cannot remove {path}", f"{current.source} is still mounted there")
        return remove_marked(path)

    def resolve(self, path: str) -> str:
        return resolve_path(NodePath.parse(path, field="path").value)


def _device_of(source: str) -> int | None:
    try:
        st = pathlib.Path(source).stat()
    except OSError:
        return None
    return st.st_rdev if stat.S_ISBLK(st.st_mode) else None


def _require_mount_point(target: str, *, directory: bool, source: str) -> None:
    kind = "directory" if directory else "file"
    try:
        st = pathlib.Path(target).stat()
    except OSError as exc:
        raise BackendError(
            f"cannot bind {source} on {target}", f"the mount point: {exc.strerror or exc}"
        ) from exc
    if stat.S_ISDIR(st.st_mode) != directory:
        raise BackendError(f"cannot bind {source} on {target}", f"the mount point is not a {kind}")


# Filesystems a device node can be bound from (a container's /dev may be a tmpfs).
_DEVICE_FS: Final = frozenset({"devtmpfs", "tmpfs"})
_DELETED: Final = "//deleted"


def _resolve_device_bind(entry: MountInfo, table: Sequence[MountInfo]) -> MountInfo:
    """
    A device node bound onto a file shows in mountinfo as the devtmpfs with the node's path
    as root (``/loop0``; ``/nvme1n1//deleted`` once the node is gone). The port wants the device
    behind it: the node's path under /dev, and its device number, read from the bound inode
    itself (it outlives the node's removal).
    """
    if entry.fs_type not in _DEVICE_FS or entry.root == "/":
        return entry
    try:
        st = pathlib.Path(entry.target).stat()
    except OSError:
        return entry
    if not stat.S_ISBLK(st.st_mode):
        return entry
    base = next(
        (m.target for m in table if m.major_minor == entry.major_minor and m.root == "/"),
        "/dev",
    )
    root = entry.root.removesuffix(_DELETED)
    return attrs.evolve(
        entry,
        source=os.path.normpath(base + root),
        major_minor=f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}",
    )
