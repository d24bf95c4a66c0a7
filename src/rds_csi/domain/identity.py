"""
Names that reach RouterOS commands and the node's argv: volume IDs, NQNs, disk paths.

Each is validated on construction against a whitelist, so a value that exists at all is safe to
place in a command. That is the injection defence; quoting in the adapters is the second line.
"""

from __future__ import annotations

import re
import uuid
from typing import Final

import attrs

from rds_csi.domain.errors import InvalidArgument, VolumeNotFound


__all__ = [
    "DEFAULT_BASE_PATH",
    "DEFAULT_NQN_PREFIX",
    "DiskPath",
    "Nqn",
    "VolumeId",
    "parse_volume_reference",
]

VOLUME_ID_PREFIX: Final = "pvc-"
_VOLUME_ID_RE: Final = re.compile(
    r"pvc-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
# Characters an ID from a CO may carry and still be answered "not ours" rather than "malformed".
_FOREIGN_ID_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,128}")

DEFAULT_NQN_PREFIX: Final = "nqn.2000-02.com.mikrotik"
NQN_MAX_BYTES: Final = 223
# The strict form our own NQNs take; safe in any argv or RouterOS value unquoted.
_NQN_STRICT_RE: Final = re.compile(r"nqn\.[0-9]{4}-[0-9]{2}\.[a-z0-9.-]+:[a-z0-9._-]+")
_NQN_PREFIX_RE: Final = re.compile(
    r"nqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*"
)
# NVMe base spec 4.5: "nqn.yyyy-mm.<reverse domain>:<anything>" or the UUID form. We accept
# that grammar but refuse characters that are shell or RouterOS syntax, and any whitespace.
_NQN_GENERAL_RE: Final = re.compile(
    r"nqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*:[A-Za-z0-9._:-]+"
)
_NQN_UUID_RE: Final = re.compile(
    r"nqn\.2014-08\.org\.nvmexpress:uuid:"
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)

DEFAULT_BASE_PATH: Final = "/storage-pool/metal-csi"
_PATH_SEGMENT_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
PATH_MAX_BYTES: Final = 200
_SHOWN: Final = 64


@attrs.frozen(order=True)
class VolumeId:
    """A volume of ours: ``pvc-`` and a lowercase UUID. Also the RDS slot name."""

    value: str = attrs.field()

    @value.validator
    def _check(self, _attr: attrs.Attribute[str], value: str) -> None:
        if _VOLUME_ID_RE.fullmatch(value) is None:
            raise InvalidArgument(
                "volume_id",
                f"{value!r} is not a volume ID of this driver (pvc-<lowercase uuid>)",
            )

    @classmethod
    def parse(cls, text: str) -> VolumeId:
        return cls(text)

    @classmethod
    def from_name(cls, name: str) -> VolumeId:
        """
        The ID for a CreateVolume ``name``: ``pvc-`` + uuid5(DNS namespace, name).

        Deterministic, so a retried create finds the disk it made before, and the same as the
        Go driver's, so volumes it made are ours too. Applied to every name, even one that
        already looks like ``pvc-<uuid>``.
        """
        return cls(VOLUME_ID_PREFIX + str(uuid.uuid5(uuid.NAMESPACE_DNS, name)))

    @staticmethod
    def is_valid(text: str) -> bool:
        return _VOLUME_ID_RE.fullmatch(text) is not None

    def __str__(self) -> str:
        return self.value


def parse_volume_reference(raw: str, *, field: str = "volume_id") -> VolumeId:
    """
    Resolve a volume ID a CO sent us.

    Empty is a missing field; a well-formed ID that is not of our format names no volume of
    ours (VolumeNotFound, and it never reaches a command); anything with other characters is
    malformed.
    """
    if not raw:
        raise InvalidArgument(field, "is required")
    if VolumeId.is_valid(raw):
        return VolumeId(raw)
    if _FOREIGN_ID_RE.fullmatch(raw) is None:
        shown = raw if len(raw) <= _SHOWN else raw[:_SHOWN] + "..."
        raise InvalidArgument(
            field, f"{shown!r} has characters no volume ID may contain (letters, digits, -._)"
        )
    raise VolumeNotFound(raw, "not a volume ID of this driver")


@attrs.frozen(order=True)
class Nqn:
    """An NVMe Qualified Name, checked against the NVMe grammar and the 223-byte limit."""

    value: str = attrs.field()

    @value.validator
    def _check(self, _attr: attrs.Attribute[str], value: str) -> None:
        problem = _nqn_problem(value)
        if problem:
            raise InvalidArgument("nqn", problem)

    @classmethod
    def parse(cls, text: str) -> Nqn:
        return cls(text)

    @classmethod
    def for_volume(cls, volume_id: VolumeId, prefix: str = DEFAULT_NQN_PREFIX) -> Nqn:
        """The target NQN the RDS exports a volume under: ``<prefix>:<volume-id>``."""
        check_nqn_prefix(prefix)
        return cls(f"{prefix}:{volume_id}")

    @property
    def volume_id(self) -> VolumeId | None:
        """
        The volume this NQN exports: its last ``:``-part (``<prefix>:<volume-id>``, as
        ``for_volume`` makes it), whatever the prefix; None when that part is not a volume ID
        of ours (another owner's target, the UUID form).
        """
        leaf = self.value.rpartition(":")[2]
        return VolumeId(leaf) if VolumeId.is_valid(leaf) else None

    def is_strict(self) -> bool:
        """Whether this NQN has the narrow form our own targets use."""
        return _NQN_STRICT_RE.fullmatch(self.value) is not None

    def __str__(self) -> str:
        return self.value


def _nqn_problem(value: object) -> str:
    if not isinstance(value, str) or not value:
        return "is required"
    size = len(value.encode())
    if size > NQN_MAX_BYTES:
        return f"is {size} bytes long; NQNs are at most {NQN_MAX_BYTES}"
    if _NQN_UUID_RE.fullmatch(value) or _NQN_GENERAL_RE.fullmatch(value):
        return ""
    return (
        f"{value!r} is not an NQN (nqn.yyyy-mm.<reversed domain>:<name>, without spaces or quotes)"
    )


def check_nqn_prefix(prefix: str) -> str:
    """Validate an ``nqnPrefix`` StorageClass parameter (``nqn.2000-02.com.mikrotik``)."""
    if _NQN_PREFIX_RE.fullmatch(prefix) is None:
        raise InvalidArgument(
            "parameters.nqnPrefix",
            f"{prefix!r} is not an NQN prefix (nqn.yyyy-mm.<lowercase reversed domain>)",
        )
    return prefix


def check_base_path(path: str, *, field: str = "parameters.volumePath") -> str:
    """
    Validate a base directory on the RDS: ``/``-separated plain segments.

    Refuses ``..``, ``.``, empty segments, quotes, spaces and every shell or RouterOS
    metacharacter, so the path can stand in a command without interpretation.
    """
    if not path:
        raise InvalidArgument(field, "is required")
    if len(path.encode()) > PATH_MAX_BYTES:
        raise InvalidArgument(field, f"is longer than {PATH_MAX_BYTES} bytes")
    body = path.removeprefix("/")
    segments = body.split("/")
    for segment in segments:
        if segment in {".", ".."}:
            raise InvalidArgument(field, f"{path!r} must not contain '.' or '..' segments")
        if _PATH_SEGMENT_RE.fullmatch(segment) is None:
            raise InvalidArgument(
                field,
                f"{path!r} may hold only letters, digits, '.', '_' and '-' between single '/'",
            )
    return path


@attrs.frozen(order=True)
class DiskPath:
    """Where a volume's image file lives on the RDS: ``<base>/<volume-id>.img``."""

    base: str = attrs.field(validator=lambda _i, _a, v: check_base_path(v))
    volume_id: VolumeId

    @property
    def value(self) -> str:
        return f"{self.base.rstrip('/')}/{self.volume_id}.img"

    @classmethod
    def parse(cls, text: str) -> DiskPath:
        """Read a full file path back into base and volume ID (from RDS output or context)."""
        base, sep, leaf = text.rpartition("/")
        stem = leaf.removesuffix(".img")
        if not sep or not base or stem == leaf:
            raise InvalidArgument("file_path", f"{text!r} is not <base>/<volume-id>.img")
        return cls(base, VolumeId(stem))

    def __str__(self) -> str:
        return self.value
