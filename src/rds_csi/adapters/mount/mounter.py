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

from rds_csi.adapters.mount.parse import parse_mountinfo
from rds_csi.adapters.process import ToolTimeout, run_tool
from rds_csi.application.ports import Mounter, MountInfo
from rds_csi.domain import BackendError, Conflict, InvalidArgument


__all__ = ["LinuxMounter", "check_mount_option", "check_path"]

_log = logging.getLogger(__name__)
_FS_TYPE_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
# One mount(8) option: no separators, spaces, quotes or leading dash.
_OPTION_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:=/+@-]{0,255}")
_MAX_STACK: Final = 16


def check_path(value: str, *, field: str) -> str:
    """An absolute path without NUL or newline (mountinfo could not represent it)."""
    if not value or not value.startswith("/") or "\0" in value or "\n" in value:
        raise InvalidArgument(field, f"{value[:128]!r} is not an absolute path")
    return value


def check_mount_option(value: str) -> str:
    if _OPTION_RE.fullmatch(value) is None:
        raise InvalidArgument("mount option", f"{value[:64]!r} cannot be passed to mount(8)")
    return value


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
        return parse_mountinfo(text)

    def mount_at(self, target: str) -> MountInfo | None:
        wanted = _real(check_path(target, field="target"))
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
        check_path(source, field="source")
        check_path(target, field="target")
        if _FS_TYPE_RE.fullmatch(fs_type) is None:
            raise InvalidArgument("fs_type", f"{fs_type[:64]!r} is not a filesystem type")
        opts = [check_mount_option(o) for o in options]
        if self._already(target, lambda st: _device_of(source) == st.st_dev, source):
            return
        _make_directory(target)
        argv = [self._mount, "-t", fs_type]
        if opts:
            argv += ["-o", ",".join(opts)]
        argv += ["--", source, target]
        self._run(argv, f"cannot mount {source} ({fs_type}) on {target}")
        _log.info("mounted %s (%s, %s) on %s", source, fs_type, ",".join(opts) or "-", target)

    def bind(self, source: str, target: str, *, read_only: bool = False) -> None:
        check_path(source, field="source")
        check_path(target, field="target")
        try:
            src = pathlib.Path(source).stat()
        except OSError as exc:
            raise BackendError(f"cannot bind {source}", exc.strerror or str(exc)) from exc

        def same(st: os.stat_result) -> bool:
            return (st.st_dev, st.st_ino) == (src.st_dev, src.st_ino)

        if self._already(target, same, source, read_only=read_only):
            return
        if stat.S_ISDIR(src.st_mode):
            _make_directory(target)
        else:
            _make_file(target)
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

    def unmount(self, target: str, *, remove: bool = False) -> None:
        check_path(target, field="target")
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
        if remove:
            _remove_mount_point(target)


def _device_of(source: str) -> int | None:
    try:
        st = pathlib.Path(source).stat()
    except OSError:
        return None
    return st.st_rdev if stat.S_ISBLK(st.st_mode) else None


def _make_directory(path: str) -> None:
    try:
        pathlib.Path(path).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise BackendError(f"cannot mount on {path}", "it exists and is not a directory") from None
    except OSError as exc:
        raise BackendError(f"cannot create the mount point {path}", str(exc)) from exc


def _make_file(path: str) -> None:
    """A block device is bound onto a plain file (kubelet passes the file's path)."""
    target = pathlib.Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise BackendError(f"cannot bind a device on {path}", "it is a directory")
        if not target.exists():
            target.touch()
    except OSError as exc:
        raise BackendError(f"cannot create the mount point {path}", str(exc)) from exc


def _remove_mount_point(path: str) -> None:
    point = pathlib.Path(path)
    try:
        st = point.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise BackendError(f"cannot remove {path}", str(exc)) from exc
    try:
        if stat.S_ISDIR(st.st_mode):
            point.rmdir()  # only ever empty: never a recursive delete of a volume's data
        elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
            point.unlink()
        else:
            raise BackendError(f"will not remove {path}", "it is not an empty file or directory")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise BackendError(f"cannot remove {path}", str(exc)) from exc
    _log.info("removed the mount point %s", path)
