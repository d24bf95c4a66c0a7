"""Volume capabilities: how a workload wants to use a volume, and which uses we support."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from typing import Final

import attrs

from rds_csi.domain.errors import InvalidArgument, UnsupportedCapability
from rds_csi.domain.text import option_name, quoted


__all__ = [
    "DEFAULT_FS_TYPE",
    "SUPPORTED_FS_TYPES",
    "AccessMode",
    "AccessType",
    "BlockAccess",
    "MountAccess",
    "VolumeCapability",
    "check_capabilities",
]

DEFAULT_FS_TYPE: Final = "ext4"
SUPPORTED_FS_TYPES: Final = frozenset({"ext4", "xfs", "ext3"})
# Mount options go to mount(8) as one -o argument: no separators, spaces or control chars.
_MOUNT_FLAG_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:=/+@-]*")
MOUNT_FLAGS_MAX_BYTES: Final = 4096


class AccessMode(enum.Enum):
    """The CSI access modes, valued by their wire numbers."""

    SINGLE_NODE_WRITER = 1
    SINGLE_NODE_READER_ONLY = 2
    MULTI_NODE_READER_ONLY = 3
    MULTI_NODE_SINGLE_WRITER = 4
    MULTI_NODE_MULTI_WRITER = 5
    SINGLE_NODE_SINGLE_WRITER = 6
    SINGLE_NODE_MULTI_WRITER = 7

    @property
    def is_multi_node(self) -> bool:
        return self in _MULTI_NODE

    @property
    def is_read_only(self) -> bool:
        return self in {AccessMode.SINGLE_NODE_READER_ONLY, AccessMode.MULTI_NODE_READER_ONLY}


_MULTI_NODE: Final = frozenset(
    {
        AccessMode.MULTI_NODE_READER_ONLY,
        AccessMode.MULTI_NODE_SINGLE_WRITER,
        AccessMode.MULTI_NODE_MULTI_WRITER,
    }
)


class AccessType(enum.Enum):
    MOUNT = "mount"
    BLOCK = "block"


@attrs.frozen
class MountAccess:
    """A filesystem volume: formatted with ``fs_type`` and mounted with ``mount_flags``."""

    fs_type: str = DEFAULT_FS_TYPE
    mount_flags: tuple[str, ...] = ()
    mount_group: str = ""

    def __attrs_post_init__(self) -> None:
        if self.fs_type not in SUPPORTED_FS_TYPES:
            raise UnsupportedCapability(
                "volume_capability.mount.fs_type",
                f"{self.fs_type!r} is not supported (use one of {sorted(SUPPORTED_FS_TYPES)})",
            )
        total = 0
        for flag in self.mount_flags:
            total += len(flag.encode()) + 1
            if _MOUNT_FLAG_RE.fullmatch(flag) is None:
                raise InvalidArgument(
                    "volume_capability.mount.mount_flags",
                    # By name only: the value may be a password (cifs's password=...).
                    f"the option named {quoted(option_name(flag))} is not a mount option "
                    "(no spaces, commas or quotes; its value is not shown)",
                )
        if total > MOUNT_FLAGS_MAX_BYTES:
            raise InvalidArgument(
                "volume_capability.mount.mount_flags",
                f"are {total} bytes; at most {MOUNT_FLAGS_MAX_BYTES}",
            )
        if self.mount_group and not self.mount_group.isdigit():
            raise InvalidArgument(
                "volume_capability.mount.volume_mount_group",
                f"{self.mount_group!r} is not a numeric group ID",
            )

    @classmethod
    def create(
        cls, fs_type: str = "", mount_flags: Iterable[str] = (), mount_group: str = ""
    ) -> MountAccess:
        """Build from wire values: an empty ``fs_type`` means the default (ext4)."""
        return cls(fs_type or DEFAULT_FS_TYPE, tuple(mount_flags), mount_group)


@attrs.frozen
class BlockAccess:
    """A raw block volume: the device itself, never formatted."""


@attrs.frozen
class VolumeCapability:
    """One way to use a volume: an access mode plus mount or block access."""

    access_mode: AccessMode
    access: MountAccess | BlockAccess

    @property
    def access_type(self) -> AccessType:
        return AccessType.BLOCK if isinstance(self.access, BlockAccess) else AccessType.MOUNT

    @property
    def is_block(self) -> bool:
        return isinstance(self.access, BlockAccess)

    @classmethod
    def mount(
        cls,
        access_mode: AccessMode = AccessMode.SINGLE_NODE_WRITER,
        fs_type: str = "",
        mount_flags: Iterable[str] = (),
    ) -> VolumeCapability:
        return cls(access_mode, MountAccess.create(fs_type, mount_flags))

    @classmethod
    def block(cls, access_mode: AccessMode = AccessMode.SINGLE_NODE_WRITER) -> VolumeCapability:
        return cls(access_mode, BlockAccess())

    def unsupported_reason(self) -> str:
        """Why this driver cannot serve the capability, or ``""`` when it can."""
        mode = self.access_mode
        if mode is AccessMode.MULTI_NODE_SINGLE_WRITER:
            return (
                "MULTI_NODE_SINGLE_WRITER is not supported: one NVMe/TCP disk cannot "
                "enforce a single writer across nodes"
            )
        if mode is AccessMode.MULTI_NODE_MULTI_WRITER and not self.is_block:
            return (
                "MULTI_NODE_MULTI_WRITER is supported for raw block volumes only "
                "(for VM live migration); a filesystem on two nodes at once would corrupt"
            )
        return ""


def check_capabilities(
    capabilities: Iterable[VolumeCapability], *, field: str = "volume_capabilities"
) -> tuple[VolumeCapability, ...]:
    """All capabilities are supported, or UnsupportedCapability names the first that is not."""
    caps = tuple(capabilities)
    if not caps:
        raise InvalidArgument(field, "at least one capability is required")
    for cap in caps:
        reason = cap.unsupported_reason()
        if reason:
            raise UnsupportedCapability(field, reason)
    kinds = {cap.access_type for cap in caps}
    if len(kinds) > 1:
        raise UnsupportedCapability(field, "a volume is either raw block or a filesystem, not both")
    fs_types = {cap.access.fs_type for cap in caps if isinstance(cap.access, MountAccess)}
    if len(fs_types) > 1:
        raise UnsupportedCapability(field, f"conflicting fs_type values {sorted(fs_types)}")
    return caps
