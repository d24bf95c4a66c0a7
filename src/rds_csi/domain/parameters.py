"""
StorageClass parameters and the volume context, with the Go RDS driver's keys and meanings.

An operator swaps the Go driver's image for ours and keeps every StorageClass and PV, so the
parameter names, defaults and the context keys below are a compatibility contract: we may add
keys, never rename or reinterpret one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

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
# Keys the CO adds on its own (external-provisioner --extra-create-metadata and friends).
_CO_PREFIX: Final = "csi.storage.k8s.io/"

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


def _int_param(params: Mapping[str, str], key: str, default: int, field_prefix: str) -> int:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw.strip(), 10)
    except ValueError:
        raise InvalidArgument(f"{field_prefix}{key}", f"{raw!r} is not an integer") from None


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

    rds_address: str = ""
    nvme_address: str = ""
    nvme_port: int = DEFAULT_NVME_PORT
    ssh_port: int = 22
    fs_type: str = DEFAULT_FS_TYPE
    volume_path: str = DEFAULT_BASE_PATH
    nqn_prefix: str = DEFAULT_NQN_PREFIX
    reconnect: ReconnectPolicy = attrs.field(factory=ReconnectPolicy)
    migration_timeout: int = DEFAULT_MIGRATION_TIMEOUT
    unknown: tuple[str, ...] = ()

    @classmethod
    def from_mapping(
        cls,
        params: Mapping[str, str],
        *,
        defaults: VolumeParameters | None = None,
        field_prefix: str = "parameters.",
    ) -> VolumeParameters:
        """Parse a CreateVolume ``parameters`` map; every error names the parameter."""
        base = defaults or cls()

        def field(key: str) -> str:
            return f"{field_prefix}{key}"

        rds_address = params.get(P_RDS_ADDRESS, "") or base.rds_address
        if rds_address:
            check_host(rds_address, field=field(P_RDS_ADDRESS))
        nvme_address = params.get(P_NVME_ADDRESS, "") or base.nvme_address
        if nvme_address:
            check_host(nvme_address, field=field(P_NVME_ADDRESS))
        nvme_port = check_port(
            _int_param(params, P_NVME_PORT, base.nvme_port, field_prefix),
            field=field(P_NVME_PORT),
        )
        ssh_port = check_port(
            _int_param(params, P_SSH_PORT, base.ssh_port, field_prefix), field=field(P_SSH_PORT)
        )
        fs_type = params.get(P_FS_TYPE, "") or params.get(P_CSI_FS_TYPE, "") or base.fs_type
        if fs_type not in SUPPORTED_FS_TYPES:
            raise InvalidArgument(
                field(P_FS_TYPE),
                f"{fs_type!r} is not supported (use one of {sorted(SUPPORTED_FS_TYPES)})",
            )
        volume_path = params.get(P_VOLUME_PATH, "") or base.volume_path
        check_base_path(volume_path, field=field(P_VOLUME_PATH))
        nqn_prefix = params.get(P_NQN_PREFIX, "") or base.nqn_prefix
        try:
            check_nqn_prefix(nqn_prefix)
        except InvalidArgument as exc:
            raise InvalidArgument(field(P_NQN_PREFIX), exc.problem) from None
        try:
            reconnect = ReconnectPolicy(
                ctrl_loss_tmo=_int_param(
                    params, P_CTRL_LOSS_TMO, base.reconnect.ctrl_loss_tmo, field_prefix
                ),
                reconnect_delay=_int_param(
                    params, P_RECONNECT_DELAY, base.reconnect.reconnect_delay, field_prefix
                ),
                keep_alive_tmo=_int_param(
                    params, P_KEEP_ALIVE_TMO, base.reconnect.keep_alive_tmo, field_prefix
                ),
            )
        except InvalidArgument as exc:
            raise InvalidArgument(field(exc.field), exc.problem) from None
        migration = _int_param(params, P_MIGRATION_TIMEOUT, base.migration_timeout, field_prefix)
        if not 0 < migration <= 86400:  # noqa: PLR2004
            raise InvalidArgument(field(P_MIGRATION_TIMEOUT), f"{migration} is out of range")
        unknown = tuple(
            sorted(k for k in params if k not in PARAMETER_KEYS and not k.startswith(_CO_PREFIX))
        )
        return cls(
            rds_address=rds_address,
            nvme_address=nvme_address,
            nvme_port=nvme_port,
            ssh_port=ssh_port,
            fs_type=fs_type,
            volume_path=volume_path,
            nqn_prefix=nqn_prefix,
            reconnect=reconnect,
            migration_timeout=migration,
            unknown=unknown,
        )


@attrs.frozen
class VolumeContext:
    """
    What a node needs to attach a volume, carried in the PV's ``volume_context``.

    Immutable per volume and free of secrets, as the CSI spec requires.
    """

    rds_address: str
    nvme_address: str
    nvme_port: int
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

    @classmethod
    def from_mapping(cls, context: Mapping[str, str]) -> VolumeContext:
        """
        Read a context written by us or by the Go driver; missing optional keys take the Go
        driver's defaults, and keys we do not know (pod info, ...) are ignored.
        """

        def required(key: str) -> str:
            value = context.get(key, "")
            if not value:
                raise InvalidArgument(f"volume_context.{key}", "is required")
            return value

        prefix = "volume_context."
        nqn_text = required(C_NQN)
        try:
            nqn = Nqn(nqn_text)
        except InvalidArgument as exc:
            raise InvalidArgument(prefix + C_NQN, exc.problem) from None
        rds_address = context.get(C_RDS_ADDRESS, "")
        nvme_address = context.get(C_NVME_ADDRESS, "") or rds_address
        if not nvme_address:
            raise InvalidArgument(prefix + C_NVME_ADDRESS, "is required (or rdsAddress)")
        check_host(nvme_address, field=prefix + C_NVME_ADDRESS)
        port = check_port(
            _int_param(context, C_NVME_PORT, DEFAULT_NVME_PORT, prefix),
            field=prefix + C_NVME_PORT,
        )
        defaults = ReconnectPolicy()
        try:
            reconnect = ReconnectPolicy(
                ctrl_loss_tmo=_int_param(context, C_CTRL_LOSS_TMO, defaults.ctrl_loss_tmo, prefix),
                reconnect_delay=_int_param(
                    context, C_RECONNECT_DELAY, defaults.reconnect_delay, prefix
                ),
                keep_alive_tmo=_int_param(
                    context, C_KEEP_ALIVE_TMO, defaults.keep_alive_tmo, prefix
                ),
            )
        except InvalidArgument as exc:
            field = exc.field if exc.field.startswith(prefix) else prefix + exc.field
            raise InvalidArgument(field, exc.problem) from None
        return cls(
            rds_address=rds_address or nvme_address,
            nvme_address=nvme_address,
            nvme_port=port,
            nqn=nqn,
            volume_path=context.get(C_VOLUME_PATH, ""),
            reconnect=reconnect,
            migration_timeout=_int_param(
                context, C_MIGRATION_TIMEOUT, DEFAULT_MIGRATION_TIMEOUT, prefix
            ),
        )

    @property
    def target(self) -> NvmeTarget:
        return NvmeTarget(
            address=self.nvme_address, port=self.nvme_port, nqn=self.nqn, reconnect=self.reconnect
        )
