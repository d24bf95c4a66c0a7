"""A fake mount table over real mount points: mounts live in memory, directories on disk."""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Sequence
from pathlib import Path

import attrs

from rds_csi.adapters.fake_node.devices import DeviceTable, FakeDevice
from rds_csi.adapters.fake_rds import FaultPlan
from rds_csi.adapters.mount.points import make_marked, remove_marked, resolve_path
from rds_csi.application.ports import Mounter, MountInfo
from rds_csi.domain import BackendError, Conflict, MountOption, NodePath


__all__ = ["DEVICE_BIND_FS", "FakeMounter"]

# What /proc/self/mountinfo calls the filesystem of a bound device node.
DEVICE_BIND_FS = "devtmpfs"


def _key(path: str) -> str:
    return os.path.normpath(path)


def _open_below(target: str) -> bool:
    """
    Whether this process holds a file open under ``target``: the one way a fake mount can
    be busy (the kernel would count every process; the fakes live in one).
    """
    prefix = _key(target).rstrip("/") + "/"
    fd_dir = Path("/proc/self/fd")
    try:
        fds = list(fd_dir.iterdir())
    except OSError:  # no procfs: nothing can be seen holding it
        return False
    for fd in fds:
        try:
            opened = str(fd.readlink())
        except OSError:  # closed meanwhile (the listing's own fd among them)
            continue
        if opened.startswith(prefix):
            return True
    return False


class FakeMounter(Mounter):
    """
    ``mount``/``umount`` in memory, with the kernel's checks that matter to the use cases:
    the source device must exist and carry the filesystem asked for, the target must exist
    (a directory, or a file for a device node), nothing is stacked (the same thing again is
    success, something else is a Conflict), a mounted path cannot be removed. Mount points
    themselves are created and removed on the real filesystem.

    Bind mounts are reported as the kernel reports them, resolved the way the port asks:
    ``source`` is the device behind the bound directory or the bound device node itself,
    ``root`` the path inside that filesystem, ``major_minor`` the device's number.

    Attributes:
        faults: Operations: mount, bind, unmount, make_mount_point, remove_mount_point.
    """

    def __init__(self, devices: DeviceTable) -> None:
        self._devices = devices
        self._lock = threading.Lock()
        self._table: dict[str, list[MountInfo]] = {}
        self.faults = FaultPlan()

    # --- mount, bind -------------------------------------------------------------------------

    def mount(self, source: str, target: str, fs_type: str, options: Sequence[str]) -> None:
        NodePath.parse(source, field="source")
        NodePath.parse(target, field="target")
        for option in options:
            MountOption.parse(option)
        self.faults.before("mount")
        device = self._devices.get(source)
        current = self.mount_at(target)
        if current is not None:
            if device is not None and current.major_minor == device.number:
                return
            raise Conflict(f"{target} already has {current.source} mounted, not {source}")
        if device is None:
            raise BackendError(
                f"cannot mount {source} ({fs_type}) on {target}", "special device does not exist"
            )
        if not Path(target).is_dir():
            raise BackendError(
                f"cannot mount {source} ({fs_type}) on {target}", "mount point does not exist"
            )
        if device.medium.fs_type != fs_type:
            raise BackendError(
                f"cannot mount {source} ({fs_type}) on {target}",
                f"wrong fs type, bad option, bad superblock on {source} (it holds "
                f"{device.medium.fs_type or 'no filesystem'}, not {fs_type})",
            )
        opts = tuple(options) if "ro" in options else ("rw", *options)
        self._push(MountInfo(source, _key(target), fs_type, opts, "/", device.number))

    def bind(self, source: str, target: str, *, read_only: bool = False) -> None:
        NodePath.parse(source, field="source")
        NodePath.parse(target, field="target")
        self.faults.before("bind")
        wanted = self._bound(source, target, read_only=read_only)
        current = self.mount_at(target)
        if current is not None:
            if (current.major_minor, current.root) != (wanted.major_minor, wanted.root):
                raise Conflict(f"{target} already has {current.source} mounted, not {source}")
            if current.read_only != wanted.read_only:
                mode = "read-only" if current.read_only else "read-write"
                raise Conflict(f"{target} already has {source} bound {mode}")
            return
        needs_file = self._devices.get(source) is not None
        if needs_file and not Path(target).is_file():
            raise BackendError(f"cannot bind {source} on {target}", "the target is not a file")
        if not needs_file and not Path(target).is_dir():
            raise BackendError(
                f"cannot bind {source} on {target}", "the target is not an existing directory"
            )
        self._push(wanted)

    def _bound(self, source: str, target: str, *, read_only: bool) -> MountInfo:
        """The mount table entry binding ``source`` onto ``target`` would make."""
        device = self._devices.get(source)
        if device is not None:
            mode = "ro" if read_only else "rw"
            root = "/" + posixpath.basename(device.path)
            return MountInfo(
                device.path, _key(target), DEVICE_BIND_FS, (mode,), root, device.number
            )
        if not Path(source).is_dir():
            raise BackendError(f"cannot bind {source} on {target}", "the source does not exist")
        below = self._containing(source)
        if below is None:
            # A directory on the host's own filesystem: nothing of ours behind it.
            mode = "ro" if read_only else "rw"
            return MountInfo("none", _key(target), "none", (mode,), _key(source), "")
        inside = posixpath.relpath(_key(source), below.target)
        root = posixpath.normpath(posixpath.join(below.root, inside))
        mode = "ro" if read_only or below.read_only else "rw"
        return MountInfo(
            below.source, _key(target), below.fs_type, (mode,), root, below.major_minor
        )

    def _containing(self, path: str) -> MountInfo | None:
        """The topmost mount whose target holds ``path`` (the longest matching prefix)."""
        key = _key(path)
        with self._lock:
            holders = [
                stack[-1]
                for target, stack in self._table.items()
                if key == target or key.startswith(target.rstrip("/") + "/")
            ]
        return max(holders, key=lambda m: len(m.target), default=None)

    def _push(self, info: MountInfo) -> None:
        with self._lock:
            self._table.setdefault(info.target, []).append(info)

    # --- unmount, the table ------------------------------------------------------------------

    def unmount(self, target: str) -> None:
        NodePath.parse(target, field="target")
        self.faults.before("unmount")
        with self._lock:
            if _key(target) in self._table and _open_below(target):
                raise BackendError(f"cannot unmount {target}", "target is busy (a file is open)")
            self._table.pop(_key(target), None)

    def mount_at(self, target: str) -> MountInfo | None:
        with self._lock:
            stack = self._table.get(_key(target))
            return stack[-1] if stack else None

    def mounts(self) -> list[MountInfo]:
        """The whole table, bottom of each stack first."""
        with self._lock:
            return [info for stack in self._table.values() for info in stack]

    # --- mount points ------------------------------------------------------------------------

    def make_mount_point(self, path: str, *, file: bool = False) -> bool:
        NodePath.parse(path, field="path")
        self.faults.before("make_mount_point")
        return make_marked(path, file=file)

    def remove_mount_point(self, path: str) -> bool:
        NodePath.parse(path, field="path")
        self.faults.before("remove_mount_point")
        if self.mount_at(path) is not None:
            raise BackendError(f"cannot remove {path}", "it is still mounted (busy)")
        return remove_marked(path)

    def resolve(self, path: str) -> str:
        return resolve_path(NodePath.parse(path, field="path").value)

    # --- for tests ---------------------------------------------------------------------------

    def mount_foreign(self, info: MountInfo) -> None:
        """Something not of ours (a tmpfs, a host disk) mounted at ``info.target``."""
        self._push(attrs.evolve(info, target=_key(info.target)))

    def device(self, info: MountInfo) -> FakeDevice | None:
        """The live device behind a mount, if it is still attached under that number."""
        device = self._devices.get(info.source)
        return device if device is not None and device.number == info.major_minor else None
