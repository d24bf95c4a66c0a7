"""The pure core: values, entities and errors. Standard library and attrs only."""

from rds_csi.domain.capability import (
    AccessMode,
    AccessType,
    BlockAccess,
    MountAccess,
    VolumeCapability,
    check_capabilities,
)
from rds_csi.domain.errors import (
    Aborted,
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    CapacityExhausted,
    Conflict,
    DomainError,
    InvalidArgument,
    InvalidPageToken,
    MalformedOutput,
    NotFound,
    OperationInProgress,
    OutOfRange,
    SnapshotNotFound,
    UnsupportedCapability,
    VolumeIncompatible,
    VolumeNotFound,
)
from rds_csi.domain.identity import DiskPath, Nqn, VolumeId, parse_volume_reference
from rds_csi.domain.model import (
    Attachment,
    CapacityReport,
    NvmeTarget,
    ReconnectPolicy,
    Snapshot,
    Volume,
)
from rds_csi.domain.mounting import MountOption, NodePath
from rds_csi.domain.parameters import VolumeContext, VolumeParameters
from rds_csi.domain.size import CapacityRange, Size
from rds_csi.domain.snapshots import ContentSource, SnapshotId, parse_snapshot_reference


__all__ = [
    "Aborted",
    "AccessMode",
    "AccessType",
    "AlreadyExists",
    "Attachment",
    "BackendError",
    "BackendUnavailable",
    "BlockAccess",
    "CapacityExhausted",
    "CapacityRange",
    "CapacityReport",
    "Conflict",
    "ContentSource",
    "DiskPath",
    "DomainError",
    "InvalidArgument",
    "InvalidPageToken",
    "MalformedOutput",
    "MountAccess",
    "MountOption",
    "NodePath",
    "NotFound",
    "Nqn",
    "NvmeTarget",
    "OperationInProgress",
    "OutOfRange",
    "ReconnectPolicy",
    "Size",
    "Snapshot",
    "SnapshotId",
    "SnapshotNotFound",
    "UnsupportedCapability",
    "Volume",
    "VolumeCapability",
    "VolumeContext",
    "VolumeId",
    "VolumeIncompatible",
    "VolumeNotFound",
    "VolumeParameters",
    "check_capabilities",
    "parse_snapshot_reference",
    "parse_volume_reference",
]
