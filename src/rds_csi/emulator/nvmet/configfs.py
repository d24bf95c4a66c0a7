"""
The Linux kernel NVMe target (nvmet), configured through configfs.

nvmet's control plane is a directory tree (the kernel's drivers/nvme/target/configfs.c)::

    <root>/subsystems/<nqn>/                  one NVMe subsystem, named by its NQN
        attr_allow_any_host, attr_model, attr_serial, ...
        namespaces/<nsid>/                    device_path, buffered_io, device_uuid, enable,
                                              revalidate_size (write-only)
    <root>/ports/<id>/                        addr_trtype, addr_adrfam, addr_traddr, addr_trsvcid
        subsystems/<nqn> -> <root>/subsystems/<nqn>    the link that exports a subsystem

Making a directory makes the kernel object, with its attribute files already in it; writing an
attribute sets it; ``rmdir`` destroys the object once its child objects and links are gone.
Behaviour measured on Debian's 6.1 kernel and relied on here: a port's address cannot change
while a subsystem is linked to it (EACCES); a namespace's device path cannot change while it is
enabled (EBUSY); a file on tmpfs does not enable without ``buffered_io`` (EINVAL: tmpfs has no
O_DIRECT before 6.6); ``revalidate_size`` needs an enabled namespace (EINVAL); a linked
subsystem cannot be removed (EBUSY).

A data plane exports, resizes and withdraws a disk like this::

    nvmet = NvmetConfigfs()  # tests: NvmetConfigfs(tmp, FakeConfigfs(tmp))
    nvmet.create_subsystem(nqn)
    nvmet.add_namespace(nqn, 1, Path(image_file))
    nvmet.export(nvmet.ensure_port(data_address, 4420), nqn)
    os.truncate(image_file, new_size)
    nvmet.notify_resized(nqn, 1)  # connected hosts see the new size
    nvmet.remove_subsystem(nqn)  # unexports, removes namespaces; hosts lose the controller

Pure standard library, for the emulator's kernel data plane and the VM tests. Every filesystem
call goes through :class:`ConfigfsOps`, so the same code runs against the kernel
(:class:`KernelConfigfs`) or the fake tree in :mod:`rds_csi.emulator.nvmet.fake`.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rds_csi.emulator.nvmet.ops import ConfigfsOps, KernelConfigfs


__all__ = [
    "DEFAULT_ROOT",
    "ConfigfsOps",
    "KernelConfigfs",
    "NamespaceInfo",
    "NvmetConfigfs",
    "NvmetError",
    "PortInfo",
    "direct_io_works",
    "is_printable_ascii",
]

DEFAULT_ROOT: Final = Path("/sys/kernel/config/nvmet")
DISCOVERY_NQN: Final = "nqn.2014-08.org.nvmexpress.discovery"
NQN_MAX_BYTES: Final = 223
MODEL_MAX: Final = 40
SERIAL_MAX: Final = 20
# An NQN becomes a directory name: printable ASCII without "/" or space, "nqn." first.
_NQN_RE: Final = re.compile(r"nqn\.[\x21-\x2e\x30-\x7e]+")
NSID_MAX: Final = 0xFFFFFFFE
PORT_MAX: Final = 0xFFFF
_PRINTABLE: Final = range(0x20, 0x7F)


class NvmetError(Exception):
    """A configfs operation on nvmet failed or was refused; the message names object and cause."""


@dataclass(frozen=True)
class NamespaceInfo:
    nqn: str
    nsid: int
    device_path: str
    enabled: bool
    buffered_io: bool
    uuid: str


@dataclass(frozen=True)
class PortInfo:
    port_id: int
    trtype: str
    adrfam: str
    traddr: str
    trsvcid: str
    subsystems: tuple[str, ...]


def _check_nqn(nqn: str) -> str:
    if not _NQN_RE.fullmatch(nqn):
        raise NvmetError(f"NQN {nqn!r}: must start with 'nqn.' and be printable ASCII without '/'")
    if len(nqn.encode()) > NQN_MAX_BYTES:
        raise NvmetError(f"NQN {nqn[:40]!r}...: longer than {NQN_MAX_BYTES} bytes")
    if nqn == DISCOVERY_NQN:
        raise NvmetError(f"NQN {nqn}: the discovery subsystem cannot be created or changed")
    return nqn


def _check_nsid(nsid: int) -> int:
    if isinstance(nsid, bool) or not 1 <= nsid <= NSID_MAX:
        raise NvmetError(f"namespace ID {nsid!r}: must be an integer in 1..{NSID_MAX}")
    return nsid


def _check_port(port_id: int) -> int:
    if isinstance(port_id, bool) or not 0 <= port_id <= PORT_MAX:
        raise NvmetError(f"port ID {port_id!r}: must be an integer in 0..{PORT_MAX}")
    return port_id


def is_printable_ascii(text: str) -> bool:
    """Only characters 0x20..0x7E, as NVMe requires of model and serial strings."""
    return all(ord(c) in _PRINTABLE for c in text)


def _check_text(value: str, what: str, limit: int) -> str:
    if not value or len(value) > limit or not is_printable_ascii(value):
        raise NvmetError(f"{what} {value!r}: must be 1..{limit} printable ASCII characters")
    return value


def _backing_is_file(device: Path, what: str) -> bool:
    """True for a regular file, False for a block device; anything else is refused."""
    if not device.is_absolute():
        raise NvmetError(f"{what}: device path {device} must be absolute")
    try:
        mode = device.stat().st_mode
    except OSError as exc:
        raise NvmetError(f"{what}: backing {device}: {exc.strerror}") from exc
    if stat.S_ISREG(mode):
        return True
    if stat.S_ISBLK(mode):
        return False
    raise NvmetError(f"{what}: backing {device} is neither a regular file nor a block device")


def direct_io_works(path: Path) -> bool:
    """Whether ``path`` opens with O_DIRECT (tmpfs refuses it, and so must nvmet's default)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECT", 0))
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return False
        raise
    os.close(fd)
    return True


class NvmetConfigfs:
    """
    Subsystems, namespaces and TCP ports of the kernel NVMe target.

    Create calls are idempotent when the object already exists as asked (so an exporter can be
    re-run after a restart) and refuse, with :class:`NvmetError`, when it exists differently.
    Remove calls are idempotent: removing what is not there succeeds. Host access control is not
    modelled: every subsystem allows any host.
    """

    def __init__(self, root: Path = DEFAULT_ROOT, ops: ConfigfsOps | None = None) -> None:
        self.root = root
        self._ops: ConfigfsOps = ops or KernelConfigfs()

    # ---- paths ----
    def _subsys(self, nqn: str) -> Path:
        return self.root / "subsystems" / _check_nqn(nqn)

    def _ns(self, nqn: str, nsid: int) -> Path:
        return self._subsys(nqn) / "namespaces" / str(_check_nsid(nsid))

    def _port(self, port_id: int) -> Path:
        return self.root / "ports" / str(_check_port(port_id))

    def _attr(self, path: Path) -> str:
        return self._ops.read(path).rstrip("\n")

    def _set(self, path: Path, value: str, what: str) -> None:
        try:
            self._ops.write(path, value)
        except OSError as exc:
            raise NvmetError(
                f"{what}: writing {value!r} to {path.name} failed: {exc.strerror}"
            ) from exc

    # ---- queries ----
    def available(self) -> bool:
        """Whether nvmet is loaded and configfs mounted at ``root``."""
        return self._ops.exists(self.root / "subsystems") and self._ops.exists(self.root / "ports")

    def subsystems(self) -> list[str]:
        return self._ops.listdir(self.root / "subsystems")

    def namespaces(self, nqn: str) -> list[int]:
        path = self._subsys(nqn) / "namespaces"
        return sorted(int(n) for n in self._ops.listdir(path)) if self._ops.exists(path) else []

    def namespace(self, nqn: str, nsid: int) -> NamespaceInfo | None:
        path = self._ns(nqn, nsid)
        if not self._ops.exists(path):
            return None
        device = self._attr(path / "device_path")
        return NamespaceInfo(
            nqn=nqn,
            nsid=nsid,
            device_path="" if device == "(null)" else device,
            enabled=self._attr(path / "enable") == "1",
            buffered_io=self._attr(path / "buffered_io") == "1",
            uuid=self._attr(path / "device_uuid"),
        )

    def ports(self) -> list[int]:
        return sorted(int(p) for p in self._ops.listdir(self.root / "ports"))

    def port(self, port_id: int) -> PortInfo | None:
        path = self._port(port_id)
        if not self._ops.exists(path):
            return None
        return PortInfo(
            port_id=port_id,
            trtype=self._attr(path / "addr_trtype"),
            adrfam=self._attr(path / "addr_adrfam"),
            traddr=self._attr(path / "addr_traddr"),
            trsvcid=self._attr(path / "addr_trsvcid"),
            subsystems=tuple(self._ops.listdir(path / "subsystems")),
        )

    def find_port(self, traddr: str, trsvcid: int) -> int | None:
        """The TCP port listening on ``traddr:trsvcid``, if one is configured."""
        for port_id in self.ports():
            info = self.port(port_id)
            if (
                info
                and info.trtype == "tcp"
                and (info.traddr, info.trsvcid) == (traddr, str(trsvcid))
            ):
                return port_id
        return None

    # ---- subsystems and namespaces ----
    def create_subsystem(
        self, nqn: str, *, model: str | None = None, serial: str | None = None
    ) -> None:
        """
        A subsystem any host may connect to; ``model``/``serial`` as the initiator will see them.

        The kernel accepts model and serial only before the first host connects, so they are set
        when the subsystem is made; an existing subsystem is left as it is.
        """
        path = self._subsys(nqn)
        if model is not None:
            _check_text(model, "model", MODEL_MAX)
        if serial is not None:
            _check_text(serial, "serial", SERIAL_MAX)
        if self._ops.exists(path):
            return
        try:
            self._ops.mkdir(path)
        except OSError as exc:
            raise NvmetError(f"nvmet subsystem {nqn}: cannot create: {exc.strerror}") from exc
        try:
            what = f"nvmet subsystem {nqn}"
            self._set(path / "attr_allow_any_host", "1", what)
            if model is not None:
                self._set(path / "attr_model", model, what)
            if serial is not None:
                self._set(path / "attr_serial", serial, what)
        except NvmetError:
            self._ops.rmdir(path)
            raise

    def add_namespace(
        self,
        nqn: str,
        nsid: int,
        device_path: Path,
        *,
        buffered_io: bool | None = None,
        ns_uuid: uuid.UUID | None = None,
    ) -> None:
        """
        Namespace ``nsid`` of ``nqn``, backed by a regular file or a block device, enabled.

        ``buffered_io=None`` picks it for the backing: a file where O_DIRECT does not work
        (tmpfs before Linux 6.6) needs the page cache; everything else gets the kernel's
        default, direct I/O. A namespace that already exists enabled on the same device is left
        as it is; one that exists otherwise is refused. One that fails to enable is removed.
        """
        path = self._ns(nqn, nsid)
        device = Path(device_path)
        what = f"nvmet namespace {nsid} of {nqn}"
        if not self._ops.exists(self._subsys(nqn)):
            raise NvmetError(f"{what}: subsystem {nqn} does not exist")
        existing = self.namespace(nqn, nsid)
        if existing is not None:
            if existing.enabled and existing.device_path == str(device):
                return
            raise NvmetError(
                f"{what}: already exists backed by {existing.device_path or 'nothing'} "
                f"(enabled={existing.enabled}), not {device}"
            )
        is_file = _backing_is_file(device, what)
        if buffered_io is None:
            buffered_io = is_file and not direct_io_works(device)
        try:
            self._ops.mkdir(path)
        except OSError as exc:
            raise NvmetError(f"{what}: cannot create: {exc.strerror}") from exc
        try:
            self._set(path / "device_path", str(device), what)
            if ns_uuid is not None:
                self._set(path / "device_uuid", str(ns_uuid), what)
            if buffered_io:
                self._set(path / "buffered_io", "1", what)
            self._set(path / "enable", "1", f"{what} (backed by {device})")
        except NvmetError:
            self._ops.rmdir(path)
            raise

    def notify_resized(self, nqn: str, nsid: int) -> bool:
        """
        Tell the target a namespace's backing grew (or shrank); connected hosts get an event.

        Grow the file (or ``losetup -c`` the loop device) first. Returns False, changing
        nothing, on a kernel without ``revalidate_size`` (before 5.15): the caller then decides
        whether re-enabling the namespace, which hosts see as a removal, is acceptable.
        """
        path = self._ns(nqn, nsid)
        what = f"nvmet namespace {nsid} of {nqn}"
        if not self._ops.exists(path):
            raise NvmetError(f"{what}: does not exist")
        if not self._ops.exists(path / "revalidate_size"):
            return False
        self._set(path / "revalidate_size", "1", f"{what} (revalidate size; enabled?)")
        return True

    def remove_namespace(self, nqn: str, nsid: int) -> None:
        path = self._ns(nqn, nsid)
        if not self._ops.exists(path):
            return
        try:
            self._ops.rmdir(path)  # the kernel disables it on the way out
        except OSError as exc:
            raise NvmetError(
                f"nvmet namespace {nsid} of {nqn}: cannot remove: {exc.strerror}"
            ) from exc

    def remove_subsystem(self, nqn: str) -> None:
        """Unexport ``nqn`` from every port, remove its namespaces, then the subsystem."""
        path = self._subsys(nqn)
        if not self._ops.exists(path):
            return
        for port_id in self.ports():
            self.unexport(port_id, nqn)
        for nsid in self.namespaces(nqn):
            self.remove_namespace(nqn, nsid)
        try:
            self._ops.rmdir(path)
        except OSError as exc:
            raise NvmetError(f"nvmet subsystem {nqn}: cannot remove: {exc.strerror}") from exc

    # ---- ports ----
    def create_port(self, port_id: int, *, traddr: str, trsvcid: int = 4420) -> None:
        """A TCP port on ``traddr:trsvcid``; an existing port with that address is kept."""
        path = self._port(port_id)
        try:
            ip = ipaddress.ip_address(traddr)
        except ValueError as exc:
            raise NvmetError(
                f"nvmet port {port_id}: address {traddr!r} is not an IP address"
            ) from exc
        if isinstance(trsvcid, bool) or not 1 <= trsvcid <= PORT_MAX:
            raise NvmetError(f"nvmet port {port_id}: TCP port {trsvcid!r} must be in 1..{PORT_MAX}")
        family = "ipv6" if isinstance(ip, ipaddress.IPv6Address) else "ipv4"
        wanted = ("tcp", family, traddr, str(trsvcid))
        existing = self.port(port_id)
        if existing is not None:
            have = (existing.trtype, existing.adrfam, existing.traddr, existing.trsvcid)
            if have == wanted:
                return
            raise NvmetError(
                f"nvmet port {port_id}: already configured as {have[0]} {have[2]}:{have[3]}, "
                f"not tcp {traddr}:{trsvcid}"
            )
        try:
            self._ops.mkdir(path)
        except OSError as exc:
            raise NvmetError(f"nvmet port {port_id}: cannot create: {exc.strerror}") from exc
        try:
            what = f"nvmet port {port_id}"
            for attr, value in zip(
                ("addr_trtype", "addr_adrfam", "addr_traddr", "addr_trsvcid"), wanted, strict=True
            ):
                self._set(path / attr, value, what)
        except NvmetError:
            self._ops.rmdir(path)
            raise

    def ensure_port(self, traddr: str, trsvcid: int = 4420) -> int:
        """The port on ``traddr:trsvcid``, created with the lowest free ID if there is none."""
        found = self.find_port(traddr, trsvcid)
        if found is not None:
            return found
        taken = set(self.ports())
        port_id = next(i for i in range(1, PORT_MAX + 1) if i not in taken)
        self.create_port(port_id, traddr=traddr, trsvcid=trsvcid)
        return port_id

    def export(self, port_id: int, nqn: str) -> None:
        """Make ``nqn`` reachable on the port (the kernel starts listening on the first export)."""
        link = self._port(port_id) / "subsystems" / _check_nqn(nqn)
        if self._ops.exists(link):
            return
        if not self._ops.exists(self._subsys(nqn)):
            raise NvmetError(f"nvmet port {port_id}: cannot export {nqn}: no such subsystem")
        try:
            self._ops.symlink(self._subsys(nqn), link)
        except OSError as exc:
            raise NvmetError(f"nvmet port {port_id}: cannot export {nqn}: {exc.strerror}") from exc

    def unexport(self, port_id: int, nqn: str) -> None:
        """Take ``nqn`` off the port; connected hosts lose their controllers on it."""
        link = self._port(port_id) / "subsystems" / _check_nqn(nqn)
        if not self._ops.exists(link):
            return
        try:
            self._ops.unlink(link)
        except OSError as exc:
            raise NvmetError(
                f"nvmet port {port_id}: cannot unexport {nqn}: {exc.strerror}"
            ) from exc

    def remove_port(self, port_id: int) -> None:
        path = self._port(port_id)
        if not self._ops.exists(path):
            return
        for nqn in self._ops.listdir(path / "subsystems"):
            self.unexport(port_id, nqn)
        try:
            self._ops.rmdir(path)
        except OSError as exc:
            raise NvmetError(f"nvmet port {port_id}: cannot remove: {exc.strerror}") from exc

    def clear(self) -> None:
        """Remove every port and subsystem: a clean target."""
        for port_id in self.ports():
            self.remove_port(port_id)
        for nqn in self.subsystems():
            self.remove_subsystem(nqn)
