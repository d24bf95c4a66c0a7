"""A fake of blkid, mkfs, resize and statvfs over the DeviceTable's media."""

from __future__ import annotations

from pathlib import Path

from rds_csi.adapters.fake_node.devices import DeviceTable, FakeDevice
from rds_csi.adapters.fake_node.mounter import FakeMounter
from rds_csi.adapters.fake_rds import FaultPlan
from rds_csi.application.ports import Filesystem, FilesystemStats
from rds_csi.domain import BackendError
from rds_csi.domain.capability import SUPPORTED_FS_TYPES


__all__ = ["FakeFilesystem"]

_BYTES_PER_INODE = 16384  # mkfs.ext4's default ratio
_RESERVED_INODES = 11  # ext4 keeps the first 11 for itself


class FakeFilesystem(Filesystem):
    """
    Filesystems on fake devices. ``make`` refuses a device that has one already (our mkfs
    must never run over data), ``grow`` fills the device as the node last saw it, ``stats``
    answers for mount points only.

    Attributes:
        faults: Operations: detect, make, grow, stats.
    """

    def __init__(self, devices: DeviceTable, mounter: FakeMounter) -> None:
        self._devices = devices
        self._mounter = mounter
        self.faults = FaultPlan()

    def _device(self, path: str) -> FakeDevice:
        device = self._devices.get(path)
        if device is None:
            raise BackendError(f"{path}", "no such block device")
        return device

    def detect(self, device: str) -> str | None:
        self.faults.before("detect")
        return self._device(device).medium.fs_type

    def make(self, device: str, fs_type: str) -> None:
        self.faults.before("make")
        dev = self._device(device)
        if fs_type not in SUPPORTED_FS_TYPES:
            raise BackendError(f"mkfs on {device} failed", f"unknown filesystem {fs_type!r}")
        if dev.medium.fs_type is not None:
            raise BackendError(
                f"mkfs on {device} refused", f"it already holds {dev.medium.fs_type}"
            )
        dev.medium.fs_type = fs_type
        dev.medium.fs_size = dev.size

    def grow(self, device: str, mount_path: str, fs_type: str) -> None:
        self.faults.before("grow")
        dev = self._device(device)
        if dev.medium.fs_type != fs_type:
            raise BackendError(
                f"growing {fs_type} on {device} failed",
                f"it holds {dev.medium.fs_type or 'no filesystem'}",
            )
        mounted = self._mounter.mount_at(mount_path)
        if mounted is None or mounted.source != device:
            raise BackendError(f"growing {device} failed", f"it is not mounted at {mount_path}")
        dev.medium.fs_size = max(dev.medium.fs_size, dev.size)

    def stats(self, path: str) -> FilesystemStats:
        self.faults.before("stats")
        mounted = self._mounter.mount_at(path)
        if mounted is None:
            raise BackendError(f"statvfs {path} failed", "not a mount point of a volume")
        medium = self._device(mounted.source).medium
        inodes = medium.fs_size // _BYTES_PER_INODE
        used_inodes = min(inodes, _RESERVED_INODES + medium.used // _BYTES_PER_INODE)
        return FilesystemStats(
            bytes_total=medium.fs_size,
            bytes_available=max(medium.fs_size - medium.used, 0),
            bytes_used=medium.used,
            inodes_total=inodes,
            inodes_available=inodes - used_inodes,
            inodes_used=used_inodes,
        )

    def device_size(self, device: str) -> int:
        dev = self._devices.get(device)
        if dev is None:
            mounted = self._mounter.mount_at(device)
            dev = self._devices.get(mounted.source) if mounted is not None else None
        if dev is None:
            raise BackendError(f"{device}", "no such block device")
        return dev.size

    def is_block_device(self, path: str) -> bool:
        if self._devices.get(path) is not None:
            return True
        mounted = self._mounter.mount_at(path)
        return (
            mounted is not None
            and self._devices.get(mounted.source) is not None
            and not Path(path).is_dir()
        )
