"""The node's block devices, as the fakes see them."""

from __future__ import annotations

import errno
import os
import threading

import attrs

from rds_csi.domain import Nqn


__all__ = ["DeviceTable", "FakeDevice", "FakeMedium"]


@attrs.define
class FakeMedium:
    """
    The bytes behind one NQN (the disk file on the RDS): what outlives a reconnect.

    Attributes:
        fs_type: The filesystem mkfs wrote, or None while blank.
        fs_size: The filesystem's size (grows only when grown).
        used: Bytes the workload wrote (tests set it to see it in stats).
        data: The bytes written through a device, from offset 0 (reads past it are zeros).
    """

    fs_type: str | None = None
    fs_size: int = 0
    used: int = 0
    data: bytearray = attrs.field(factory=bytearray, repr=False)


@attrs.define
class FakeDevice:
    """
    One block device node on the node.

    Attributes:
        size: The size this node sees; it changes only on a rescan, as with NVMe.
        number: Its ``major:minor``; every attach gets a new one, so a device that came
            back after a reconnect is another device, even under a reused name.
        nqn: The NVMe subsystem it belongs to (sysfs ``subsysnqn``), None for other devices.
    """

    path: str
    size: int
    medium: FakeMedium
    number: str = ""
    nqn: Nqn | None = None

    def write(self, offset: int, data: bytes) -> None:
        """``pwrite`` on the device node: onto the medium, never past the size seen here."""
        if offset < 0 or offset + len(data) > self.size:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)
        stored = self.medium.data
        if len(stored) < offset + len(data):
            stored.extend(bytes(offset + len(data) - len(stored)))
        stored[offset : offset + len(data)] = data

    def read(self, offset: int, length: int) -> bytes:
        """``pread``: short at the end of the device, zeros where nothing was written."""
        length = max(0, min(length, self.size - offset))
        chunk = bytes(self.medium.data[offset : offset + length])
        return chunk + bytes(length - len(chunk))


class DeviceTable:
    """
    Block devices by path: ``/dev/nvme<N>n1``, numbered in connect order from 1, so code that
    assumes ``/dev/nvme0n1`` fails here as it would on a real node. Device numbers are
    ``259:<N>`` (the kernel's block extended major), never reused.

    It is the node's whole state, as the kernel is: every fake answers from it, so a fake
    built anew over the same table (a restarted node plugin) finds what the old one made.
    It also keeps the media behind the NQNs this node has seen, since the fakes have no RDS
    to read bytes back from.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._devices: dict[str, FakeDevice] = {}
        self._media: dict[Nqn, FakeMedium] = {}
        self._next = 1

    def attach(
        self, size: int, medium: FakeMedium, *, name: str | None = None, nqn: Nqn | None = None
    ) -> FakeDevice:
        """
        A new device for ``medium``; ``name`` reuses a path that is free again (a device
        that came back under its old name, with a new number).
        """
        with self._lock:
            number = self._next
            self._next += 1
            path = name or f"/dev/nvme{number}n1"
            if path in self._devices:
                raise ValueError(f"{path} is attached already")
            device = FakeDevice(path, size, medium, f"259:{number}", nqn)
            self._devices[path] = device
            return device

    def medium_of(self, nqn: Nqn) -> FakeMedium:
        """The bytes behind ``nqn``: the same medium on every connect, blank the first time."""
        with self._lock:
            return self._media.setdefault(nqn, FakeMedium())

    def of_subsystem(self, nqn: Nqn) -> FakeDevice | None:
        """The device of a connected NQN, as sysfs ``subsysnqn`` finds it."""
        with self._lock:
            return next((d for d in self._devices.values() if d.nqn == nqn), None)

    def subsystems(self) -> list[Nqn]:
        """The NQNs with a device, in connect order."""
        with self._lock:
            return [d.nqn for d in self._devices.values() if d.nqn is not None]

    def detach(self, path: str) -> None:
        with self._lock:
            self._devices.pop(path, None)

    def get(self, path: str) -> FakeDevice | None:
        with self._lock:
            return self._devices.get(path)

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._devices)
