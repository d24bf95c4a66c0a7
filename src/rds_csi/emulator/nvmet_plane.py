"""
The kernel data plane: each exported disk really served over NVMe/TCP by the Linux target.

Where the kernel has nvmet (``/sys/kernel/config/nvmet``, or the modules load), a disk with
``nvme-tcp-export=yes`` becomes::

    subsystem <the disk's NQN>          any host may connect
        namespace 1 -> the disk's image file (buffered I/O where the file system has no
                       O_DIRECT, tmpfs before Linux 6.6)
    port <data address>:<nvme-tcp-server-port>, tcp, linked to the subsystem

A resize grows the file first (the pool does), then asks the target to revalidate the size;
connected hosts get a namespace-changed event and see the new size. A port or NQN change moves
the export; turning the export off or ``/disk remove`` withdraws the subsystem, which drops
connected hosts' controllers. Ports this plane made are removed once nothing is linked to them.

``open_data_plane`` picks what the emulator runs: the exports file alone (``json``), or the
exports file and the kernel target (``nvmet``; ``auto`` when the kernel has it). The exports
file is always written, so the loop-device initiator keeps working beside real NVMe/TCP.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import pathlib
import shutil
import subprocess
import threading
from collections.abc import Sequence
from typing import Final

import attrs

from rds_csi.emulator.dataplane import (
    EXPORTS_FILE,
    DataPlane,
    ExportedDisk,
    JsonExportsDataPlane,
)
from rds_csi.emulator.nvmet import DEFAULT_ROOT, ConfigfsOps, NvmetConfigfs, NvmetError


__all__ = [
    "DATA_PLANES",
    "CompositeDataPlane",
    "DataPlaneError",
    "NvmetDataPlane",
    "check_data_address",
    "nvmet_available",
    "open_data_plane",
]

log = logging.getLogger("rds_csi.emulator.nvmet")

DATA_PLANES: Final = ("json", "nvmet", "auto")
NSID: Final = 1
NVMET_MODULES: Final = ("nvmet", "nvmet-tcp")
_MODPROBE_TIMEOUT: Final = 30.0


class DataPlaneError(OSError):
    """
    The data plane could not carry out an export change. An OSError, so the console answers
    the command that caused it with ``failure: <reason>`` as it does for storage errors.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.EIO, message)


def check_data_address(address: str, *, field: str = "data address") -> str:
    """An IP literal (the kernel target listens on addresses, not names)."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise ValueError(f"{field} {address!r} is not an IP address") from None


class CompositeDataPlane(DataPlane):
    """Every change goes to each plane in turn (the exports file, then the kernel target)."""

    def __init__(self, *planes: DataPlane) -> None:
        self.planes = planes

    def export(self, disk: ExportedDisk) -> None:
        for plane in self.planes:
            plane.export(disk)

    def unexport(self, disk: ExportedDisk) -> None:
        for plane in self.planes:
            plane.unexport(disk)

    def resized(self, disk: ExportedDisk) -> None:
        for plane in self.planes:
            plane.resized(disk)

    def close(self) -> None:
        for plane in reversed(self.planes):
            plane.close()


@attrs.frozen
class _Exported:
    image: pathlib.Path
    port_id: int


class NvmetDataPlane(DataPlane):
    """
    Exports disks through the kernel NVMe target on ``address``.

    Every call is idempotent, so the emulator's start (which exports every disk of its table)
    adopts what an earlier run left in the kernel without disturbing connected hosts.
    ``close`` withdraws everything this plane exported: the emulated RDS is going away.
    """

    def __init__(self, nvmet: NvmetConfigfs, address: str) -> None:
        self.nvmet = nvmet
        self.address = check_data_address(address)
        self._lock = threading.Lock()
        self._exports: dict[str, _Exported] = {}
        self._made_ports: set[int] = set()

    def exported(self) -> dict[str, tuple[pathlib.Path, int]]:
        """NQN -> (image, port ID) of what this plane exports now."""
        with self._lock:
            return {nqn: (e.image, e.port_id) for nqn, e in self._exports.items()}

    def export(self, disk: ExportedDisk) -> None:
        with self._lock:
            try:
                self._export(disk)
            except NvmetError as exc:
                raise DataPlaneError(f"cannot export {disk.slot} over NVMe/TCP: {exc}") from exc
        log.info(
            "exported %s (%s) on %s:%d through nvmet", disk.nqn, disk.image, self.address, disk.port
        )

    def _export(self, disk: ExportedDisk) -> None:
        nqn = disk.nqn
        self.nvmet.create_subsystem(nqn)
        namespace = self.nvmet.namespace(nqn, NSID)
        kept = (
            namespace is not None and namespace.enabled and namespace.device_path == str(disk.image)
        )
        if namespace is not None and not kept:
            # Another image (or a disabled namespace left by a crash): hosts see it replaced.
            self.nvmet.remove_namespace(nqn, NSID)
        self.nvmet.add_namespace(nqn, NSID, disk.image)
        if kept:
            # Adopted from an earlier run: the image may have grown since.
            self.nvmet.notify_resized(nqn, NSID)
        port_id = self._port(disk.port)
        for other in self.nvmet.ports():
            if other != port_id and self._links(other, nqn):
                self.nvmet.unexport(other, nqn)
                self._drop_port_if_unused(other)
        self.nvmet.export(port_id, nqn)
        self._exports[nqn] = _Exported(disk.image, port_id)

    def _links(self, port_id: int, nqn: str) -> bool:
        info = self.nvmet.port(port_id)
        return info is not None and nqn in info.subsystems

    def _port(self, trsvcid: int) -> int:
        found = self.nvmet.find_port(self.address, trsvcid)
        if found is not None:
            return found
        port_id = self.nvmet.ensure_port(self.address, trsvcid)
        self._made_ports.add(port_id)
        return port_id

    def _drop_port_if_unused(self, port_id: int) -> None:
        info = self.nvmet.port(port_id)
        if port_id in self._made_ports and info is not None and not info.subsystems:
            self.nvmet.remove_port(port_id)
            self._made_ports.discard(port_id)

    def unexport(self, disk: ExportedDisk) -> None:
        with self._lock:
            try:
                self._withdraw(disk.nqn)
            except NvmetError as exc:
                raise DataPlaneError(f"cannot withdraw the export of {disk.slot}: {exc}") from exc
        log.info("withdrew %s from nvmet", disk.nqn)

    def _withdraw(self, nqn: str) -> None:
        ports = [p for p in self.nvmet.ports() if self._links(p, nqn)]
        self.nvmet.remove_subsystem(nqn)
        self._exports.pop(nqn, None)
        for port_id in ports:
            self._drop_port_if_unused(port_id)

    def resized(self, disk: ExportedDisk) -> None:
        with self._lock:
            try:
                if self.nvmet.namespace(disk.nqn, NSID) is None:
                    self._export(disk)  # an earlier export failed: make it now
                    return
                if not self.nvmet.notify_resized(disk.nqn, NSID):
                    log.warning(
                        "this kernel cannot revalidate a namespace's size (before 5.15): "
                        "hosts connected to %s keep seeing its old size",
                        disk.nqn,
                    )
            except NvmetError as exc:
                raise DataPlaneError(f"cannot resize the export of {disk.slot}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            for nqn in list(self._exports):
                try:
                    self._withdraw(nqn)
                except NvmetError as exc:
                    log.warning("leaving %s in nvmet: %s", nqn, exc)
            for port_id in sorted(self._made_ports):
                try:
                    self._drop_port_if_unused(port_id)
                except NvmetError as exc:
                    log.warning("leaving nvmet port %d: %s", port_id, exc)


def _modprobe() -> str | None:
    found = shutil.which("modprobe")  # PATH may lack the sbin directories
    return found or next(
        (p for p in ("/usr/sbin/modprobe", "/sbin/modprobe") if pathlib.Path(p).exists()), None
    )


def nvmet_available(
    root: pathlib.Path = DEFAULT_ROOT,
    ops: ConfigfsOps | None = None,
    *,
    load_modules: bool = True,
    modules: Sequence[str] = NVMET_MODULES,
) -> bool:
    """
    Whether the kernel target can be configured at ``root``; as root, ``modprobe`` its
    modules first when it cannot (configfs itself is mounted by the system at boot).
    """
    nvmet = NvmetConfigfs(root, ops)
    if nvmet.available():
        return True
    modprobe = _modprobe()
    if not load_modules or os.geteuid() != 0 or modprobe is None:
        return False
    try:
        done = subprocess.run(
            [modprobe, "-q", "-a", "--", *modules],
            capture_output=True,
            text=True,
            timeout=_MODPROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("modprobe %s failed: %s", " ".join(modules), exc)
        return False
    if done.returncode != 0:
        log.info(
            "modprobe %s exited %d %s", " ".join(modules), done.returncode, done.stderr.strip()
        )
    return nvmet.available()


def open_data_plane(
    kind: str,
    data_dir: pathlib.Path,
    address: str,
    *,
    nvmet_root: pathlib.Path = DEFAULT_ROOT,
    ops: ConfigfsOps | None = None,
    load_modules: bool = True,
) -> DataPlane:
    """
    The data plane ``kind`` names: ``json`` (the exports file), ``nvmet`` (the exports file
    and the kernel target; refused where the kernel has none) or ``auto`` (``nvmet`` where the
    kernel has it, else ``json``).

    Raises:
        ValueError: an unknown kind, an address that is no IP, or ``nvmet`` without nvmet.
    """
    if kind not in DATA_PLANES:
        raise ValueError(f"data plane {kind!r} is not one of {', '.join(DATA_PLANES)}")
    if kind != "json":
        check_data_address(address)
    data_dir.mkdir(parents=True, exist_ok=True)
    json_plane = JsonExportsDataPlane(data_dir / EXPORTS_FILE)
    if kind == "json":
        return json_plane
    if not nvmet_available(nvmet_root, ops, load_modules=load_modules):
        if kind == "auto":
            log.info("no kernel NVMe target (%s): exports go to %s only", nvmet_root, EXPORTS_FILE)
            return json_plane
        raise ValueError(
            f"data plane nvmet: the kernel NVMe target is not available ({nvmet_root} is "
            f"missing and `modprobe {' '.join(NVMET_MODULES)}` did not provide it; it needs "
            "root and a kernel with those modules)"
        )
    log.info("exports are served by the kernel NVMe/TCP target on %s", address)
    return CompositeDataPlane(json_plane, NvmetDataPlane(NvmetConfigfs(nvmet_root, ops), address))
