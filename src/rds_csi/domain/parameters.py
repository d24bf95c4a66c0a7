"""
StorageClass parameters and the volume context, with the Go RDS driver's keys and meanings.

An operator swaps the Go driver's image for ours and keeps every StorageClass and PV, so the
parameter names, defaults and the context keys below are a compatibility contract: we may add
keys, never rename or reinterpret one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import attrs

from rds_csi.domain.capability import DEFAULT_FS_TYPE, SUPPORTED_FS_TYPES
from rds_csi.domain.errors import InvalidArgument
from rds_csi.domain.identity import (
    DEFAULT_BASE_PATH,
    DEFAULT_NQN_PREFIX,
    Nqn,
    check_base_path,
    check_nqn_prefix,
)
from rds_csi.domain.model import (
    DEFAULT_NVME_PORT,
    NvmeTarget,
    ReconnectPolicy,
    Volume,
    check_host,
    check_port,
)


__all__ = [
    "CONTEXT_KEYS",
    "CO_PREFIX",
    "DEFAULT_MIGRATION_TIMEOUT",
    "DEFAULT_SSH_PORT",
    "PARAMETER_KEYS",
    "VolumeContext",
    "VolumeParameters",
]

# StorageClass parameters, as the Go driver names them.
P_RDS_ADDRESS: Final = "rdsAddress"
P_NVME_ADDRESS: Final = "nvmeAddress"
P_NVME_PORT: Final = "nvmePort"
P_SSH_PORT: Final = "sshPort"
P_FS_TYPE: Final = "fsType"
P_CSI_FS_TYPE: Final = "csi.storage.k8s.io/fstype"
P_VOLUME_PATH: Final = "volumePath"
P_NQN_PREFIX: Final = "nqnPrefix"
P_CTRL_LOSS_TMO: Final = "ctrlLossTmo"
P_RECONNECT_DELAY: Final = "reconnectDelay"
P_KEEP_ALIVE_TMO: Final = "keepAliveTmo"
P_MIGRATION_TIMEOUT: Final = "migrationTimeoutSeconds"

PARAMETER_KEYS: Final = (
    P_RDS_ADDRESS,
    P_NVME_ADDRESS,
    P_NVME_PORT,
    P_SSH_PORT,
    P_FS_TYPE,
    P_CSI_FS_TYPE,
    P_VOLUME_PATH,
    P_NQN_PREFIX,
    P_CTRL_LOSS_TMO,
    P_RECONNECT_DELAY,
    P_KEEP_ALIVE_TMO,
    P_MIGRATION_TIMEOUT,
)

# volume_context keys, as the Go driver writes them.
C_RDS_ADDRESS: Final = "rdsAddress"
C_NVME_ADDRESS: Final = "nvmeAddress"
C_NVME_PORT: Final = "nvmePort"
C_NQN: Final = "nqn"
C_VOLUME_PATH: Final = "volumePath"
C_CTRL_LOSS_TMO: Final = "ctrlLossTmo"
C_RECONNECT_DELAY: Final = "reconnectDelay"
C_KEEP_ALIVE_TMO: Final = "keepAliveTmo"
C_MIGRATION_TIMEOUT: Final = "migrationTimeoutSeconds"
CONTEXT_KEYS: Final = (
    C_RDS_ADDRESS,
    C_NVME_ADDRESS,
    C_NVME_PORT,
    C_NQN,
    C_VOLUME_PATH,
    C_CTRL_LOSS_TMO,
    C_RECONNECT_DELAY,
    C_KEEP_ALIVE_TMO,
    C_MIGRATION_TIMEOUT,
)

DEFAULT_MIGRATION_TIMEOUT: Final = 300
MAX_MIGRATION_TIMEOUT: Final = 86400
DEFAULT_SSH_PORT: Final = 22
# Keys the CO adds on its own (external-provisioner --extra-create-metadata and friends).
CO_PREFIX: Final = "csi.storage.k8s.io/"

_Check = Callable[[object, "attrs.Attribute[Any]", Any], None]


def _optional_host(key: str) -> _Check:
    def check(_inst: object, _attr: attrs.Attribute[str], value: str) -> None:
        if value:
            check_host(value, field=key)

    return check


def _host(key: str) -> _Check:
    def check(_inst: object, _attr: attrs.Attribute[str], value: str) -> None:
        check_host(value, field=key)

    return check


def _port(key: str) -> _Check:
    def check(_inst: object, _attr: attrs.Attribute[int], value: int) -> None:
        check_port(value, field=key)

    return check


def _fs_type(_inst: object, _attr: attrs.Attribute[str], value: str) -> None:
    if value not in SUPPORTED_FS_TYPES:
        raise InvalidArgument(
            P_FS_TYPE, f"{value!r} is not supported (use one of {sorted(SUPPORTED_FS_TYPES)})"
        )


def _volume_path(_inst: object, _attr: attrs.Attribute[str], value: str) -> None:
    check_base_path(value, field=P_VOLUME_PATH)


def _nqn_prefix(_inst: object, _attr: attrs.Attribute[str], value: str) -> None:
    try:
        check_nqn_prefix(value)
    except InvalidArgument as exc:
        raise InvalidArgument(P_NQN_PREFIX, exc.problem) from None


def _migration_timeout(_inst: object, _attr: attrs.Attribute[int], value: int) -> None:
    if not 0 < value <= MAX_MIGRATION_TIMEOUT:
        raise InvalidArgument(P_MIGRATION_TIMEOUT, f"{value} is out of range")


@attrs.frozen
class VolumeParameters:
    """
    What a StorageClass asks of a volume, with the controller's defaults filled in.

    Attributes:
        rds_address: The RDS control address (empty: the controller's configured one).
        nvme_address: The data-plane address nodes connect to (empty: ``rds_address``).
        unknown: Parameter keys we did not recognise, for a warning; never an error, because
            the Go driver ignored them too and a drop-in swap must not break a StorageClass.
    """

    rds_address: str = attrs.field(default="", validator=_optional_host(P_RDS_ADDRESS))
    nvme_address: str = attrs.field(default="", validator=_optional_host(P_NVME_ADDRESS))
    nvme_port: int = attrs.field(default=DEFAULT_NVME_PORT, validator=_port(P_NVME_PORT))
    ssh_port: int = attrs.field(default=DEFAULT_SSH_PORT, validator=_port(P_SSH_PORT))
    fs_type: str = attrs.field(default=DEFAULT_FS_TYPE, validator=_fs_type)
    volume_path: str = attrs.field(default=DEFAULT_BASE_PATH, validator=_volume_path)
    nqn_prefix: str = attrs.field(default=DEFAULT_NQN_PREFIX, validator=_nqn_prefix)
    reconnect: ReconnectPolicy = attrs.field(factory=ReconnectPolicy)
    migration_timeout: int = attrs.field(
        default=DEFAULT_MIGRATION_TIMEOUT, validator=_migration_timeout
    )
    unknown: tuple[str, ...] = ()


@attrs.frozen
class VolumeContext:
    """
    What a node needs to attach a volume, carried in the PV's ``volume_context``.

    Immutable per volume and free of secrets, as the CSI spec requires.
    """

    rds_address: str
    nvme_address: str = attrs.field(validator=_host(C_NVME_ADDRESS))
    nvme_port: int = attrs.field(validator=_port(C_NVME_PORT))
    nqn: Nqn
    volume_path: str
    reconnect: ReconnectPolicy = attrs.field(factory=ReconnectPolicy)
    migration_timeout: int = DEFAULT_MIGRATION_TIMEOUT

    @classmethod
    def for_volume(cls, volume: Volume, params: VolumeParameters) -> VolumeContext:
        if not params.rds_address:
            raise InvalidArgument(
                f"parameters.{P_RDS_ADDRESS}",
                "is not set and the controller has no default RDS address",
            )
        return cls(
            rds_address=params.rds_address,
            nvme_address=params.nvme_address or params.rds_address,
            nvme_port=volume.nvme_port,
            nqn=volume.nqn,
            volume_path=volume.path.value,
            reconnect=params.reconnect,
            migration_timeout=params.migration_timeout,
        )

    def to_mapping(self) -> dict[str, str]:
        return {
            C_RDS_ADDRESS: self.rds_address,
            C_NVME_ADDRESS: self.nvme_address,
            C_NVME_PORT: str(self.nvme_port),
            C_NQN: self.nqn.value,
            C_VOLUME_PATH: self.volume_path,
            C_CTRL_LOSS_TMO: str(self.reconnect.ctrl_loss_tmo),
            C_RECONNECT_DELAY: str(self.reconnect.reconnect_delay),
            C_KEEP_ALIVE_TMO: str(self.reconnect.keep_alive_tmo),
            C_MIGRATION_TIMEOUT: str(self.migration_timeout),
        }

    @property
    def target(self) -> NvmeTarget:
        return NvmeTarget(
            address=self.nvme_address, port=self.nvme_port, nqn=self.nqn, reconnect=self.reconnect
        )
