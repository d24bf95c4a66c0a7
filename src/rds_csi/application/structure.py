"""
StorageClass parameters and the volume context, structured from CSI's string maps by cattrs.

The domain owns the value types and their rules (``VolumeParameters``, ``VolumeContext``
validate on construction and name the Go key at fault); this module owns the reading of the
wire: the Go driver's key names, empty meaning unset, the controller's defaults under what a
StorageClass gives, and the volume context's fallbacks. It lives outside the domain because
the domain may not depend on cattrs; every error names the map and the key
(``parameters.nvmePort``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from rds_csi.domain import InvalidArgument, Nqn
from rds_csi.domain.model import DEFAULT_NVME_PORT, ReconnectPolicy
from rds_csi.domain.parameters import (
    C_CTRL_LOSS_TMO,
    C_KEEP_ALIVE_TMO,
    C_MIGRATION_TIMEOUT,
    C_NQN,
    C_NVME_ADDRESS,
    C_NVME_PORT,
    C_RDS_ADDRESS,
    C_RECONNECT_DELAY,
    C_VOLUME_PATH,
    CO_PREFIX,
    P_CSI_FS_TYPE,
    P_FS_TYPE,
    P_MIGRATION_TIMEOUT,
    P_NQN_PREFIX,
    P_NVME_ADDRESS,
    P_NVME_PORT,
    P_RDS_ADDRESS,
    P_SSH_PORT,
    P_VOLUME_PATH,
    PARAMETER_KEYS,
    VolumeContext,
    VolumeParameters,
)


__all__ = ["structure_context", "structure_parameters"]

PARAMETERS: Final = "parameters."
CONTEXT: Final = "volume_context."

# attribute -> wire key; the reconnect policy's keys sit flat in both maps.
_RECONNECT_KEYS: Final = {
    "ctrl_loss_tmo": C_CTRL_LOSS_TMO,
    "reconnect_delay": C_RECONNECT_DELAY,
    "keep_alive_tmo": C_KEEP_ALIVE_TMO,
}
_PARAMETER_KEYS: Final = {
    "rds_address": P_RDS_ADDRESS,
    "nvme_address": P_NVME_ADDRESS,
    "nvme_port": P_NVME_PORT,
    "ssh_port": P_SSH_PORT,
    "fs_type": P_FS_TYPE,
    "volume_path": P_VOLUME_PATH,
    "nqn_prefix": P_NQN_PREFIX,
    "migration_timeout": P_MIGRATION_TIMEOUT,
}
_CONTEXT_KEYS: Final = {
    "rds_address": C_RDS_ADDRESS,
    "nvme_address": C_NVME_ADDRESS,
    "nvme_port": C_NVME_PORT,
    "nqn": C_NQN,
    "volume_path": C_VOLUME_PATH,
    "migration_timeout": C_MIGRATION_TIMEOUT,
}

# The maps share their spelling where they share a meaning, so one table names a key for both.
_WIRE_KEYS: Final = {**_CONTEXT_KEYS, **_PARAMETER_KEYS, **_RECONNECT_KEYS}


def _integer(value: object, _type: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    try:
        return int(text, 10)
    except ValueError:
        raise ValueError(f"{value!r} is not an integer") from None


def _nqn(value: object, _type: object) -> Nqn:
    try:
        return Nqn(str(value))
    except InvalidArgument as exc:
        raise ValueError(exc.problem) from None  # named by the key it came from


def _renamed(conv: cattrs.Converter, cls: type, keys: Mapping[str, str]) -> None:
    # The generators take per-attribute overrides as keywords beside their own typed flags.
    renames: dict[str, Any] = {attr: override(rename=key) for attr, key in keys.items()}
    conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, **renames))
    conv.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, conv, **renames))


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_structure_hook(int, _integer)
    conv.register_structure_hook(Nqn, _nqn)
    _renamed(conv, ReconnectPolicy, _RECONNECT_KEYS)
    _renamed(conv, VolumeParameters, _PARAMETER_KEYS)
    _renamed(conv, VolumeContext, _CONTEXT_KEYS)
    return conv


_converter: Final = _make_converter()


def _nest_reconnect(flat: Mapping[str, object], base: Mapping[str, object]) -> dict[str, object]:
    """The wire's flat reconnect keys under ``reconnect``, over ``base``'s."""
    given = {key: flat[key] for key in _RECONNECT_KEYS.values() if key in flat}
    rest = {key: value for key, value in flat.items() if key not in _RECONNECT_KEYS.values()}
    return {**rest, "reconnect": {**base, **given}}


def _leaves(exc: BaseException, key: str) -> Iterator[tuple[str, BaseException]]:
    """cattrs' nested errors as (wire key, error); a domain error names its own key."""
    if isinstance(exc, cattrs.ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for inner, note in with_notes:
            name = str(note.name)
            yield from _leaves(inner, _WIRE_KEYS.get(name, name))
        for inner in without:
            yield from _leaves(inner, key)
    elif isinstance(exc, InvalidArgument):
        yield (exc.field or key), exc
    else:
        yield key, exc


def _structure(data: Mapping[str, object], cls: type[Any], prefix: str) -> Any:
    try:
        return _converter.structure(data, cls)
    except InvalidArgument as exc:
        raise InvalidArgument(prefix + exc.field, exc.problem) from None
    except cattrs.ClassValidationError as exc:
        key, inner = next(_leaves(exc, ""))
        problem = inner.problem if isinstance(inner, InvalidArgument) else str(inner)
        raise InvalidArgument(prefix + key, problem) from None


def structure_parameters(
    params: Mapping[str, str], *, defaults: VolumeParameters | None = None
) -> VolumeParameters:
    """
    A CreateVolume ``parameters`` map over the controller's ``defaults``; an empty value
    is unset. Keys we do not know are kept in ``unknown`` for a warning, never refused.
    """
    base: dict[str, Any] = _converter.unstructure(defaults or VolumeParameters())
    given = {key: value for key, value in params.items() if value != ""}
    if P_FS_TYPE not in given and P_CSI_FS_TYPE in given:
        given[P_FS_TYPE] = given[P_CSI_FS_TYPE]
    given.pop(P_CSI_FS_TYPE, None)
    unknown = sorted(k for k in params if k not in PARAMETER_KEYS and not k.startswith(CO_PREFIX))
    wire = {key: value for key, value in given.items() if key in PARAMETER_KEYS}
    data = {**base, **_nest_reconnect(wire, base["reconnect"]), "unknown": tuple(unknown)}
    parsed: VolumeParameters = _structure(data, VolumeParameters, PARAMETERS)
    return parsed


def structure_context(context: Mapping[str, str]) -> VolumeContext:
    """
    A ``volume_context`` written by us or by the Go driver: missing optional keys take the
    Go driver's defaults, keys we do not know (pod info, ...) are ignored.
    """
    rds_address = context.get(C_RDS_ADDRESS, "")
    nvme_address = context.get(C_NVME_ADDRESS, "") or rds_address
    missing = {C_NQN: "is required"} if not context.get(C_NQN) else {}
    if not nvme_address:
        missing[C_NVME_ADDRESS] = f"is required (or {C_RDS_ADDRESS})"
    if len(missing) > 1:  # every one at once: an operator fills them in one go
        listed = "; ".join(f"{key} {problem}" for key, problem in missing.items())
        raise InvalidArgument(CONTEXT.rstrip("."), f"missing keys: {listed}")
    for key, problem in missing.items():
        raise InvalidArgument(CONTEXT + key, problem)
    given = {key: value for key, value in context.items() if value != ""}
    defaults = {C_NVME_PORT: DEFAULT_NVME_PORT, C_VOLUME_PATH: ""}
    addresses = {C_RDS_ADDRESS: rds_address or nvme_address, C_NVME_ADDRESS: nvme_address}
    wire = {**defaults, **given, **addresses}
    data = _nest_reconnect(wire, _converter.unstructure(ReconnectPolicy()))
    parsed: VolumeContext = _structure(data, VolumeContext, CONTEXT)
    return parsed
