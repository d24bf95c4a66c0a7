"""Protobuf -> domain and back: the small mappers the servicers are made of."""

from __future__ import annotations

import pytest

from rds_csi.application.node import VolumeStats
from rds_csi.application.ports import FilesystemStats
from rds_csi.application.topology import Topology
from rds_csi.domain import (
    AccessMode,
    CapacityRange,
    DiskPath,
    InvalidArgument,
    Nqn,
    Size,
    UnsupportedCapability,
    Volume,
    VolumeContext,
    VolumeId,
    VolumeParameters,
)
from rds_csi.entrypoints.csi import mappers
from rds_csi.entrypoints.csi._pb import csi_pb2


Cap = csi_pb2.VolumeCapability


def mode(m: int) -> Cap.AccessMode:
    return Cap.AccessMode(mode=m)  # type: ignore[arg-type]


class TestCapability:
    def test_mount_with_fs_type_and_flags(self) -> None:
        pb = Cap(
            access_mode=mode(Cap.AccessMode.SINGLE_NODE_MULTI_WRITER),
            mount=Cap.MountVolume(fs_type="xfs", mount_flags=["noatime"]),
        )
        cap = mappers.capability(pb)
        assert cap.access_mode is AccessMode.SINGLE_NODE_MULTI_WRITER
        assert not cap.is_block
        assert cap.access.fs_type == "xfs"  # type: ignore[union-attr]
        assert cap.access.mount_flags == ("noatime",)  # type: ignore[union-attr]

    def test_empty_fs_type_is_the_default_ext4(self) -> None:
        pb = Cap(access_mode=mode(Cap.AccessMode.SINGLE_NODE_WRITER), mount=Cap.MountVolume())
        assert mappers.capability(pb).access.fs_type == "ext4"  # type: ignore[union-attr]

    def test_block(self) -> None:
        pb = Cap(access_mode=mode(Cap.AccessMode.MULTI_NODE_MULTI_WRITER), block=Cap.BlockVolume())
        cap = mappers.capability(pb)
        assert cap.is_block
        assert cap.access_mode is AccessMode.MULTI_NODE_MULTI_WRITER

    def test_missing_access_mode_names_the_field(self) -> None:
        with pytest.raises(InvalidArgument) as info:
            mappers.capabilities([Cap(block=Cap.BlockVolume())])
        assert info.value.field == "volume_capabilities[0].access_mode"

    def test_unknown_access_mode_is_missing(self) -> None:
        with pytest.raises(InvalidArgument, match="access_mode"):
            mappers.capability(Cap(access_mode=mode(0), block=Cap.BlockVolume()))

    def test_out_of_enum_access_mode_is_invalid(self) -> None:
        with pytest.raises(InvalidArgument, match="not a CSI access mode"):
            mappers.capability(Cap(access_mode=mode(99), block=Cap.BlockVolume()))

    def test_missing_access_type_names_the_field(self) -> None:
        pb = Cap(access_mode=mode(Cap.AccessMode.SINGLE_NODE_WRITER))
        with pytest.raises(InvalidArgument) as info:
            mappers.capability(pb, "volume_capability")
        assert info.value.field == "volume_capability.access_type"

    def test_unsupported_fs_type_is_unsupported(self) -> None:
        pb = Cap(
            access_mode=mode(Cap.AccessMode.SINGLE_NODE_WRITER),
            mount=Cap.MountVolume(fs_type="zfs"),
        )
        with pytest.raises(UnsupportedCapability):
            mappers.capability(pb)

    def test_required_and_optional_capability_presence(self) -> None:
        with pytest.raises(InvalidArgument, match="volume_capability: is required"):
            mappers.required_capability(Cap(), present=False)
        assert mappers.optional_capability(Cap(), present=False) is None


class TestCapacityRange:
    def test_absent_is_unbounded(self) -> None:
        assert mappers.capacity_range(csi_pb2.CapacityRange(), present=False) == CapacityRange()

    def test_present_without_bounds_is_invalid(self) -> None:
        with pytest.raises(InvalidArgument, match="capacity_range"):
            mappers.capacity_range(csi_pb2.CapacityRange(), present=True)

    def test_bounds_carry_over(self) -> None:
        pb = csi_pb2.CapacityRange(required_bytes=5, limit_bytes=10)
        assert mappers.capacity_range(pb, present=True) == CapacityRange(5, 10)

    def test_negative_and_inverted_bounds_are_invalid(self) -> None:
        with pytest.raises(InvalidArgument, match="required_bytes"):
            mappers.capacity_range(csi_pb2.CapacityRange(required_bytes=-1), present=True)
        with pytest.raises(InvalidArgument, match="exceeds limit_bytes"):
            mappers.capacity_range(
                csi_pb2.CapacityRange(required_bytes=10, limit_bytes=5), present=True
            )


def test_requisite_topologies_become_dicts() -> None:
    pb = csi_pb2.TopologyRequirement(
        requisite=[csi_pb2.Topology(segments={"zone": "a"}), csi_pb2.Topology(segments={})]
    )
    assert mappers.requisite(pb, present=True) == [{"zone": "a"}, {}]
    assert mappers.requisite(pb, present=False) == []


def _volume() -> Volume:
    vid = VolumeId.from_name("pvc-1")
    return Volume(vid, Size(2 << 30), DiskPath("/storage-pool/metal-csi", vid), Nqn.for_volume(vid))


def test_volume_with_context_and_topology() -> None:
    vol = _volume()
    ctx = VolumeContext.for_volume(vol, VolumeParameters(rds_address="10.0.0.5"))
    pb = mappers.volume(vol, ctx, Topology.parse(["zone=a"]))
    assert pb.volume_id == str(vol.volume_id)
    assert pb.capacity_bytes == 2 << 30
    assert dict(pb.volume_context) == ctx.to_mapping()
    assert [dict(t.segments) for t in pb.accessible_topology] == [{"zone": "a"}]


def test_volume_without_context_or_topology_has_neither() -> None:
    pb = mappers.volume(_volume())
    assert dict(pb.volume_context) == {}
    assert list(pb.accessible_topology) == []


def test_usage_of_a_filesystem_has_bytes_and_inodes() -> None:
    fs = FilesystemStats(100, 60, 40, 10, 7, 3)
    usage = mappers.usage(VolumeStats(100, fs))
    assert [(u.unit, u.total, u.available, u.used) for u in usage] == [
        (csi_pb2.VolumeUsage.BYTES, 100, 60, 40),
        (csi_pb2.VolumeUsage.INODES, 10, 7, 3),
    ]


def test_usage_of_a_block_volume_is_one_bytes_entry_with_the_total() -> None:
    usage = mappers.usage(VolumeStats(4096, None))
    assert [(u.unit, u.total, u.available, u.used) for u in usage] == [
        (csi_pb2.VolumeUsage.BYTES, 4096, 0, 0)
    ]
