"""The node's block devices, as the fakes see them."""

from __future__ import annotations

import threading

import attrs


__all__ = ["DeviceTable", "FakeDevice", "FakeMedium"]


@attrs.define
class FakeMedium:
    """
    The bytes behind one NQN (the disk file on the RDS): what outlives a reconnect.

    Attributes:
        fs_type: The filesystem mkfs wrote, or None while blank.
        fs_size: The filesystem's size (grows only when grown).
        used: Bytes the workload wrote (tests set it to see it in stats).
    """

    fs_type: str | None = None
    fs_size: int = 0
    used: int = 0


@attrs.define
class FakeDevice:
    """
    One block device node on the node.

    Attributes:
        size: The size this node sees; it changes only on a rescan, as with NVMe.
        number: Its ``major:minor``; every attach gets a new one, so a device that came
            back after a reconnect is another device, even under a reused name.
    """

    path: str
    size: int
    medium: FakeMedium
    number: str = ""


class DeviceTable:
    """
    Block devices by path: ``/dev/nvme<N>n1``, numbered in connect order from 1, so code that
    assumes ``/dev/nvme0n1`` fails here as it would on a real node. Device numbers are
    ``259:<N>`` (the kernel's block extended major), never reused.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._devices: dict[str, FakeDevice] = {}
        self._next = 1

    def attach(self, size: int, medium: FakeMedium, *, name: str | None = None) -> FakeDevice:
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
            device = FakeDevice(path, size, medium, f"259:{number}")
            self._devices[path] = device
            return device

    def detach(self, path: str) -> None:
        with self._lock:
            self._devices.pop(path, None)

    def get(self, path: str) -> FakeDevice | None:
        with self._lock:
            return self._devices.get(path)

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._devices)
