"""
Protobuf <-> domain: small pure functions, one per shape, so the servicers stay three lines.

Requests are read the proto3 way: an empty string or zero is "missing", a message field is
missing when ``HasField`` is false. Every error names the request field it is about.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from google.protobuf import wrappers_pb2

from rds_csi.application.node import VolumeStats
from rds_csi.application.topology import Topology
from rds_csi.domain import (
    AccessMode,
    BlockAccess,
    CapacityRange,
    InvalidArgument,
    MountAccess,
    Volume,
    VolumeCapability,
    VolumeContext,
)
from rds_csi.entrypoints.csi._pb import csi_pb2


__all__ = [
    "capabilities",
    "capability",
    "capacity_range",
    "optional_capability",
    "required_capability",
    "requisite",
    "topology",
    "usage",
    "volume",
]

_Pb = csi_pb2.VolumeCapability


def capability(pb: csi_pb2.VolumeCapability, field: str = "volume_capability") -> VolumeCapability:
    """One capability: an access mode and exactly one access type are required."""
    if not pb.HasField("access_mode") or pb.access_mode.mode == _Pb.AccessMode.UNKNOWN:
        raise InvalidArgument(f"{field}.access_mode", "is required")
    try:
        mode = AccessMode(pb.access_mode.mode)
    except ValueError:
        raise InvalidArgument(
            f"{field}.access_mode", f"{pb.access_mode.mode} is not a CSI access mode"
        ) from None
    kind = pb.WhichOneof("access_type")
    if kind == "block":
        return VolumeCapability(mode, BlockAccess())
    if kind == "mount":
        mount = pb.mount
        access = MountAccess.create(mount.fs_type, mount.mount_flags, mount.volume_mount_group)
        return VolumeCapability(mode, access)
    raise InvalidArgument(f"{field}.access_type", "is required (block or mount)")


def capabilities(
    pbs: Iterable[csi_pb2.VolumeCapability], field: str = "volume_capabilities"
) -> tuple[VolumeCapability, ...]:
    """Every capability of a repeated field; whether we support them is the use case's call."""
    return tuple(capability(pb, f"{field}[{i}]") for i, pb in enumerate(pbs))


def required_capability(
    pb: csi_pb2.VolumeCapability, *, present: bool, field: str = "volume_capability"
) -> VolumeCapability:
    if not present:
        raise InvalidArgument(field, "is required")
    return capability(pb, field)


def optional_capability(
    pb: csi_pb2.VolumeCapability, *, present: bool, field: str = "volume_capability"
) -> VolumeCapability | None:
    return capability(pb, field) if present else None


def capacity_range(pb: csi_pb2.CapacityRange, *, present: bool) -> CapacityRange:
    """A request's capacity_range; when present, at least one bound must be set."""
    if not present:
        return CapacityRange()
    if not pb.required_bytes and not pb.limit_bytes:
        raise InvalidArgument(
            "capacity_range", "is set but has neither required_bytes nor limit_bytes"
        )
    return CapacityRange(required=pb.required_bytes, limit=pb.limit_bytes)


def requisite(pb: csi_pb2.TopologyRequirement, *, present: bool) -> list[dict[str, str]]:
    """The requisite topologies of CreateVolume (empty: anywhere)."""
    if not present:
        return []
    return [dict(t.segments) for t in pb.requisite]


def topology(topo: Topology) -> list[csi_pb2.Topology]:
    return [csi_pb2.Topology(segments=topo.as_dict())] if topo.enabled else []


def volume(
    vol: Volume, context: VolumeContext | None = None, topo: Topology | None = None
) -> csi_pb2.Volume:
    """
    A Volume message. The context is given only at creation: it carries StorageClass
    parameters the RDS does not keep, and the spec wants it identical wherever it appears.
    """
    return csi_pb2.Volume(
        volume_id=str(vol.volume_id),
        capacity_bytes=vol.size.bytes,
        volume_context=context.to_mapping() if context is not None else {},
        accessible_topology=topology(topo) if topo is not None else [],
    )


def usage(stats: VolumeStats) -> list[csi_pb2.VolumeUsage]:
    """NodeGetVolumeStats usage: BYTES always (kubelet wants one entry), INODES for a fs."""
    fs = stats.filesystem
    if fs is None:
        return [csi_pb2.VolumeUsage(total=stats.total_bytes, unit=csi_pb2.VolumeUsage.BYTES)]
    return [
        csi_pb2.VolumeUsage(
            total=fs.bytes_total,
            available=fs.bytes_available,
            used=fs.bytes_used,
            unit=csi_pb2.VolumeUsage.BYTES,
        ),
        csi_pb2.VolumeUsage(
            total=fs.inodes_total,
            available=fs.inodes_available,
            used=fs.inodes_used,
            unit=csi_pb2.VolumeUsage.INODES,
        ),
    ]


def int64(value: int) -> wrappers_pb2.Int64Value:
    return wrappers_pb2.Int64Value(value=value)


def string_map(pb_map: Mapping[str, str]) -> dict[str, str]:
    return dict(pb_map)


def echo_capabilities(pbs: Sequence[csi_pb2.VolumeCapability]) -> list[csi_pb2.VolumeCapability]:
    return list(pbs)
