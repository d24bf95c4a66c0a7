"""A fake mount table over real mount points: mounts live in memory, directories on disk."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from rds_csi.adapters.fake_node.devices import DeviceTable
from rds_csi.adapters.fake_rds import FaultPlan
from rds_csi.application.ports import Mounter, MountInfo
from rds_csi.domain import BackendError


__all__ = ["FakeMounter"]

# What /proc/self/mountinfo calls the filesystem of a bound device node.
DEVICE_BIND_FS = "devtmpfs"


def _key(path: str) -> str:
    return os.path.normpath(path)


class FakeMounter(Mounter):
    """
    ``mount``/``umount`` in memory, with the kernel's checks that matter to the use cases:
    the source device must exist and carry the filesystem asked for, the target must exist
    (a directory, or a file for a device node), mounts stack, a mounted path cannot be
    removed. Mount points themselves are created and removed on the real filesystem.

    Attributes:
        faults: Operations: mount, bind, unmount, make_mount_point, remove_mount_point.
    """

    def __init__(self, devices: DeviceTable) -> None:
        self._devices = devices
        self._lock = threading.Lock()
        self._table: dict[str, list[MountInfo]] = {}
        self.faults = FaultPlan()

    def mount(self, source: str, target: str, fs_type: str, options: Sequence[str]) -> None:
        self.faults.before("mount")
        device = self._devices.get(source)
        if device is None:
            raise BackendError(
                f"mount {source} on {target} failed", "special device does not exist"
            )
        if not Path(target).is_dir():
            raise BackendError(f"mount {source} on {target} failed", "mount point does not exist")
        if device.medium.fs_type != fs_type:
            raise BackendError(
                f"mount {source} on {target} failed",
                f"wrong fs type, bad option, bad superblock on {source} (it holds "
                f"{device.medium.fs_type or 'no filesystem'}, not {fs_type})",
            )
        opts = tuple(options) if "ro" in options else (*options, "rw")
        self._push(MountInfo(source, _key(target), fs_type, opts))

    def bind(self, source: str, target: str, *, read_only: bool = False) -> None:
        self.faults.before("bind")
        mode = "ro" if read_only else "rw"
        if self._devices.get(source) is not None:
            if not Path(target).is_file():
                raise BackendError(
                    f"bind {source} on {target} failed", "the target is not an existing file"
                )
            self._push(MountInfo(source, _key(target), DEVICE_BIND_FS, ("bind", mode)))
            return
        if not Path(source).is_dir():
            raise BackendError(f"bind {source} on {target} failed", "the source does not exist")
        if not Path(target).is_dir():
            raise BackendError(
                f"bind {source} on {target} failed", "the target is not an existing directory"
            )
        below = self.mount_at(source)
        origin = below.source if below is not None else _key(source)
        fs_type = below.fs_type if below is not None else "none"
        self._push(MountInfo(origin, _key(target), fs_type, ("bind", mode)))

    def _push(self, info: MountInfo) -> None:
        with self._lock:
            self._table.setdefault(info.target, []).append(info)

    def unmount(self, target: str) -> None:
        self.faults.before("unmount")
        with self._lock:
            stack = self._table.get(_key(target))
            if stack:
                stack.pop()
                if not stack:
                    del self._table[_key(target)]

    def mount_at(self, target: str) -> MountInfo | None:
        with self._lock:
            stack = self._table.get(_key(target))
            return stack[-1] if stack else None

    def mounts(self) -> list[MountInfo]:
        """The whole table, bottom of each stack first (for assertions)."""
        with self._lock:
            return [info for stack in self._table.values() for info in stack]

    def make_mount_point(self, path: str, *, file: bool = False) -> bool:
        self.faults.before("make_mount_point")
        target = Path(path)
        if target.exists():
            return False
        try:
            if file:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch(exist_ok=False)
            else:
                target.mkdir(parents=True)
        except OSError as exc:
            raise BackendError(f"cannot create mount point {path}", str(exc)) from exc
        return True

    def remove_mount_point(self, path: str) -> None:
        self.faults.before("remove_mount_point")
        if self.mount_at(path) is not None:
            raise BackendError(f"cannot remove {path}", "it is still mounted (busy)")
        target = Path(path)
        try:
            if target.is_dir():
                target.rmdir()
            else:
                target.unlink(missing_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot remove mount point {path}", str(exc)) from exc
