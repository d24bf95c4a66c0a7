"""A fake of blkid, mkfs, resize and statvfs over the DeviceTable's media."""

from __future__ import annotations

from pathlib import Path

from rds_csi.adapters.fake_node.devices import DeviceTable, FakeDevice
from rds_csi.adapters.fake_node.mounter import DEVICE_BIND_FS, FakeMounter
from rds_csi.adapters.fake_rds import FaultPlan
from rds_csi.application.ports import Filesystem, FilesystemStats
from rds_csi.domain import BackendError, Conflict, InvalidArgument, NotFound
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
            raise BackendError(f"device {path} does not exist")
        return device

    def detect(self, device: str) -> str | None:
        self.faults.before("detect")
        return self._device(device).medium.fs_type

    def make(self, device: str, fs_type: str) -> None:
        if fs_type not in SUPPORTED_FS_TYPES:
            raise InvalidArgument(
                "fs_type", f"{fs_type!r} is not supported (use one of {sorted(SUPPORTED_FS_TYPES)})"
            )
        self.faults.before("make")
        dev = self._device(device)
        if dev.medium.fs_type is not None:
            raise Conflict(f"{device} already holds {dev.medium.fs_type}; refusing to format it")
        dev.medium.fs_type = fs_type
        dev.medium.fs_size = dev.size

    def grow(self, device: str, mount_path: str, fs_type: str) -> None:
        if fs_type not in SUPPORTED_FS_TYPES:
            raise InvalidArgument("fs_type", f"{fs_type!r} is not supported")
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
        if not Path(path).exists():
            raise NotFound(f"{path} does not exist")
        mounted = self._mounter.mount_at(path)
        if mounted is None:
            raise BackendError(f"cannot read the filesystem at {path}", "not a volume's mount")
        device = self._mounter.device(mounted)
        if device is None:
            # The kernel keeps a dead superblock's counters; our fake has nothing to read.
            raise BackendError(
                f"cannot read the filesystem at {path}", "Input/output error (device gone)"
            )
        medium = device.medium
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

    def _device_or_bound(self, path: str) -> FakeDevice:
        """The device at ``path``, or the device node bound onto the file ``path``."""
        dev = self._devices.get(path)
        if dev is None:
            mounted = self._mounter.mount_at(path)
            if mounted is not None and mounted.fs_type == DEVICE_BIND_FS:
                dev = self._mounter.device(mounted)
        if dev is None:
            raise BackendError(f"device {path} does not exist")
        return dev

    def device_size(self, device: str) -> int:
        return self._device_or_bound(device).size

    def device_number(self, device: str) -> str:
        return self._device_or_bound(device).number

    def is_block_device(self, path: str) -> bool:
        if self._devices.get(path) is not None:
            return True
        mounted = self._mounter.mount_at(path)
        return mounted is not None and mounted.fs_type == DEVICE_BIND_FS
