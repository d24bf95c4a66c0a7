"""
The snapshot RPCs of the Controller service, and CreateVolume's content source: mapping only;
the rules live in ``application.snapshots``. ``ControllerService`` delegates here.
"""

from __future__ import annotations

from typing import Final

import attrs
from google.protobuf import timestamp_pb2

from rds_csi.application.snapshots import CreateSnapshot, DeleteSnapshot, ListSnapshots
from rds_csi.domain import ContentSource, InvalidArgument, Snapshot, SnapshotNotFound
from rds_csi.entrypoints.csi._pb import csi_pb2


__all__ = [
    "SNAPSHOT_CAPABILITIES",
    "SnapshotUseCases",
    "content_source",
    "create_snapshot",
    "delete_snapshot",
    "echo_source",
    "get_snapshot",
    "list_snapshots",
]

_Rpc = csi_pb2.ControllerServiceCapability.RPC
SNAPSHOT_CAPABILITIES: Final = (
    _Rpc.CREATE_DELETE_SNAPSHOT,
    _Rpc.LIST_SNAPSHOTS,
    _Rpc.CLONE_VOLUME,
)


@attrs.frozen
class SnapshotUseCases:
    create: CreateSnapshot
    delete: DeleteSnapshot
    list: ListSnapshots


def snapshot(snap: Snapshot) -> csi_pb2.Snapshot:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(snap.created_at * 1e9))
    return csi_pb2.Snapshot(
        snapshot_id=str(snap.snapshot_id),
        source_volume_id=str(snap.source_volume_id),
        size_bytes=snap.size.bytes,
        creation_time=stamp,
        ready_to_use=snap.ready,
    )


def content_source(request: csi_pb2.CreateVolumeRequest) -> ContentSource | None:
    """CreateVolume's ``volume_content_source``; None when absent."""
    if not request.HasField("volume_content_source"):
        return None
    pb = request.volume_content_source
    kind = pb.WhichOneof("type")
    if kind == "snapshot":
        if not pb.snapshot.snapshot_id:
            raise InvalidArgument("volume_content_source.snapshot.snapshot_id", "is required")
        return ContentSource(snapshot_id=pb.snapshot.snapshot_id)
    if kind == "volume":
        if not pb.volume.volume_id:
            raise InvalidArgument("volume_content_source.volume.volume_id", "is required")
        return ContentSource(volume_id=pb.volume.volume_id)
    raise InvalidArgument("volume_content_source", "names neither a snapshot nor a volume")


def echo_source(request: csi_pb2.CreateVolumeRequest, volume: csi_pb2.Volume) -> None:
    """The spec wants the source echoed in ``Volume.content_source``."""
    if request.HasField("volume_content_source"):
        volume.content_source.CopyFrom(request.volume_content_source)


def create_snapshot(
    uc: SnapshotUseCases, request: csi_pb2.CreateSnapshotRequest
) -> csi_pb2.CreateSnapshotResponse:
    made = uc.create(request.name, request.source_volume_id)
    return csi_pb2.CreateSnapshotResponse(snapshot=snapshot(made))


def delete_snapshot(
    uc: SnapshotUseCases, request: csi_pb2.DeleteSnapshotRequest
) -> csi_pb2.DeleteSnapshotResponse:
    uc.delete(request.snapshot_id)
    return csi_pb2.DeleteSnapshotResponse()


def list_snapshots(
    uc: SnapshotUseCases, request: csi_pb2.ListSnapshotsRequest
) -> csi_pb2.ListSnapshotsResponse:
    page = uc.list(
        request.max_entries,
        request.starting_token,
        snapshot_id=request.snapshot_id,
        source_volume_id=request.source_volume_id,
    )
    return csi_pb2.ListSnapshotsResponse(
        entries=[csi_pb2.ListSnapshotsResponse.Entry(snapshot=snapshot(s)) for s in page.snapshots],
        next_token=page.next_token,
    )


def get_snapshot(
    uc: SnapshotUseCases, request: csi_pb2.GetSnapshotRequest
) -> csi_pb2.GetSnapshotResponse:
    """GetSnapshot (alpha in v1.12; not advertised): ListSnapshots by ID, NOT_FOUND if none."""
    if not request.snapshot_id:
        raise InvalidArgument("snapshot_id", "is required")
    page = uc.list(snapshot_id=request.snapshot_id)
    if not page.snapshots:
        raise SnapshotNotFound(request.snapshot_id)
    return csi_pb2.GetSnapshotResponse(snapshot=snapshot(page.snapshots[0]))
