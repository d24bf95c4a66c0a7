"""What the checklist modules share: request builders, staging helpers and the error row."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import grpc
import pytest

from rds_csi.domain import VolumeId
from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e.conftest import (
    BLOCK,
    GIB,
    MOUNT,
    DriverProcess,
    block_capability,
    mount_capability,
    unique_name,
)


__all__ = [
    "BLOCK",
    "GIB",
    "MNMW_MOUNT",
    "MNSW_BLOCK",
    "MOUNT",
    "RWOP",
    "SNMW",
    "TIB",
    "UNKNOWN_ID",
    "C",
    "Cap",
    "DriverProcess",
    "Mode",
    "Row",
    "Staged",
    "block_capability",
    "check_error_row",
    "cr",
    "mount_capability",
    "publish",
    "rng",
    "stage",
    "unique_name",
]


C = grpc.StatusCode
Cap = csi_pb2.VolumeCapability
Mode = Cap.AccessMode
TIB = 1 << 40
UNKNOWN_ID = str(VolumeId.from_name("a volume nobody made"))
MNMW_MOUNT = mount_capability(Mode.MULTI_NODE_MULTI_WRITER)
MNSW_BLOCK = block_capability(Mode.MULTI_NODE_SINGLE_WRITER)
SNMW = mount_capability(Mode.SINGLE_NODE_MULTI_WRITER)
RWOP = mount_capability(Mode.SINGLE_NODE_SINGLE_WRITER)


def cr(**kw: object) -> csi_pb2.CreateVolumeRequest:
    base: dict[str, object] = {
        "name": unique_name(),
        "capacity_range": csi_pb2.CapacityRange(required_bytes=GIB),
        "volume_capabilities": [MOUNT],
    }
    return csi_pb2.CreateVolumeRequest(**{**base, **kw})  # type: ignore[arg-type]


def rng(required: int = 0, limit: int = 0) -> csi_pb2.CapacityRange:
    return csi_pb2.CapacityRange(required_bytes=required, limit_bytes=limit)


@attrs.frozen
class Staged:
    volume_id: str
    context: dict[str, str]
    staging: str


def stage(d: DriverProcess, cap: csi_pb2.VolumeCapability = MOUNT) -> Staged:
    volume = d.create(capabilities=[cap])
    staging = d.staging_dir(volume.volume_id)
    d.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=volume.volume_id,
            staging_target_path=staging,
            volume_capability=cap,
            volume_context=volume.volume_context,
        )
    )
    return Staged(volume.volume_id, dict(volume.volume_context), staging)


def publish(
    d: DriverProcess,
    s: Staged,
    target: str,
    cap: csi_pb2.VolumeCapability = MOUNT,
    *,
    readonly: bool = False,
) -> None:
    d.node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=s.volume_id,
            staging_target_path=s.staging,
            target_path=target,
            volume_capability=cap,
            volume_context=s.context,
            readonly=readonly,
        )
    )


@attrs.frozen
class Row:
    row: str
    call: Callable[[DriverProcess], object]
    code: grpc.StatusCode


def check_error_row(driver: DriverProcess, row: Row) -> None:
    with pytest.raises(grpc.RpcError) as info:
        row.call(driver)
    error: grpc.Call = info.value  # type: ignore[assignment]
    assert error.code() == row.code, error.details()
    # §1: a non-OK status carries a readable message, and `details` stay empty.
    assert error.details()
    assert all(key != "grpc-status-details-bin" for key, _ in error.trailing_metadata() or ())
