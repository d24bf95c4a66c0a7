"""The driver's entities: volumes on the RDS, capacity, snapshots, NVMe targets."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Final

import attrs

from rds_csi.domain.errors import InvalidArgument
from rds_csi.domain.identity import DiskPath, Nqn, VolumeId
from rds_csi.domain.size import Size
from rds_csi.domain.snapshots import Snapshot


__all__ = [
    "DEFAULT_NVME_PORT",
    "CapacityReport",
    "NvmeTarget",
    "ReconnectPolicy",
    "Snapshot",
    "Volume",
    "check_host",
    "check_port",
]

DEFAULT_NVME_PORT: Final = 4420
_HOSTNAME_RE: Final = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def check_host(value: str, *, field: str) -> str:
    """An IPv4/IPv6 address or a DNS name; nothing else reaches ``nvme connect -a``."""
    if not value:
        raise InvalidArgument(field, "is required")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if _HOSTNAME_RE.fullmatch(value) is None:
            raise InvalidArgument(field, f"{value!r} is not an IP address or host name") from None
    return value


def check_port(value: int, *, field: str) -> int:
    if isinstance(value, bool) or not 1 <= value <= 65535:  # noqa: PLR2004
        raise InvalidArgument(field, f"{value!r} is not a TCP port (1-65535)")
    return value


@attrs.frozen
class Volume:
    """
    A file-backed disk on the RDS, exported over NVMe/TCP.

    Attributes:
        volume_id: Our ID, also the RDS slot.
        size: The disk file's size.
        path: The image file on the RDS.
        nqn: The NVMe/TCP subsystem NQN the disk is exported under.
        nvme_port: The TCP port of the export.
        exported: Whether ``nvme-tcp-export`` is on.
    """

    volume_id: VolumeId
    size: Size
    path: DiskPath
    nqn: Nqn
    nvme_port: int = attrs.field(
        default=DEFAULT_NVME_PORT, validator=lambda _i, _a, v: check_port(v, field="nvme_port")
    )
    exported: bool = True

    def same_layout(self, other: Volume) -> bool:
        """Same disk file, NQN and port: what makes two creates of one name compatible."""
        return (self.path, self.nqn, self.nvme_port) == (other.path, other.nqn, other.nvme_port)


@attrs.frozen
class CapacityReport:
    """The pool's space as the RDS reports it."""

    total: Size
    free: Size

    @property
    def used(self) -> Size:
        return Size(max(self.total.bytes - self.free.bytes, 0))


def _int_in(low: int, high: int, field: str) -> Callable[[object, object, int], None]:
    def check(_inst: object, _attr: object, value: int) -> None:
        if isinstance(value, bool) or not low <= value <= high:
            raise InvalidArgument(field, f"{value!r} is out of range ({low}..{high})")

    return check


@attrs.frozen
class ReconnectPolicy:
    """
    How the node's NVMe/TCP initiator behaves when the target goes away.

    Attributes:
        ctrl_loss_tmo: Seconds to keep reconnecting before giving up; -1 retries forever.
        reconnect_delay: Seconds between reconnect attempts.
        keep_alive_tmo: Keep-alive timeout in seconds; 0 keeps the kernel's default.
    """

    ctrl_loss_tmo: int = attrs.field(default=-1, validator=_int_in(-1, 86400 * 365, "ctrlLossTmo"))
    reconnect_delay: int = attrs.field(default=5, validator=_int_in(1, 3600, "reconnectDelay"))
    keep_alive_tmo: int = attrs.field(default=0, validator=_int_in(0, 3600, "keepAliveTmo"))


@attrs.frozen
class NvmeTarget:
    """Everything a node needs to attach a volume; it travels in the volume context."""

    address: str = attrs.field(validator=lambda _i, _a, v: check_host(v, field="nvmeAddress"))
    port: int = attrs.field(validator=lambda _i, _a, v: check_port(v, field="nvmePort"))
    nqn: Nqn
    reconnect: ReconnectPolicy = attrs.field(factory=ReconnectPolicy)
