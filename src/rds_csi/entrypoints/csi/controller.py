"""
The CSI Controller service: each method maps the request, calls one use case, maps back.

Advertised: CREATE_DELETE_VOLUME, LIST_VOLUMES, GET_CAPACITY, EXPAND_VOLUME, GET_VOLUME,
SINGLE_NODE_MULTI_WRITER, and with the attachment use cases PUBLISH_UNPUBLISH_VOLUME and
LIST_VOLUMES_PUBLISHED_NODES (PUBLISH_READONLY is not: nothing on the RDS can make one node's
attachment read-only), with the snapshot use cases CREATE_DELETE_SNAPSHOT, LIST_SNAPSHOTS and
CLONE_VOLUME (``snapshots.py``). Modify is UNIMPLEMENTED and not advertised until its own
issue lands. Errors are raised, never set on the context: the
interceptor maps them (``status.py``).
"""

from __future__ import annotations

from typing import Final

import attrs
import grpc

from rds_csi.application.attachment import AttachmentState, PublishVolume, UnpublishVolume
from rds_csi.application.provisioning import (
    DeleteVolume,
    ExpandVolume,
    GetCapacity,
    GetVolume,
    ListVolumes,
    ValidateVolumeCapabilities,
)
from rds_csi.application.topology import CreateVolumeInTopology, Topology
from rds_csi.domain import InvalidArgument, VolumeId
from rds_csi.entrypoints.csi import mappers, snapshots
from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc
from rds_csi.entrypoints.csi.status import Unimplemented


__all__ = ["CONTROLLER_CAPABILITIES", "ControllerService", "ControllerUseCases"]

_Rpc = csi_pb2.ControllerServiceCapability.RPC
CONTROLLER_CAPABILITIES: Final = (
    _Rpc.CREATE_DELETE_VOLUME,
    _Rpc.LIST_VOLUMES,
    _Rpc.GET_CAPACITY,
    _Rpc.EXPAND_VOLUME,
    _Rpc.GET_VOLUME,
    _Rpc.SINGLE_NODE_MULTI_WRITER,
    _Rpc.PUBLISH_UNPUBLISH_VOLUME,
    _Rpc.LIST_VOLUMES_PUBLISHED_NODES,
)
_PUBLISHING: Final = frozenset({_Rpc.PUBLISH_UNPUBLISH_VOLUME, _Rpc.LIST_VOLUMES_PUBLISHED_NODES})


@attrs.frozen
class ControllerUseCases:
    """What the controller service calls; the container builds it."""

    create: CreateVolumeInTopology
    delete: DeleteVolume
    validate: ValidateVolumeCapabilities
    list: ListVolumes
    capacity: GetCapacity
    expand: ExpandVolume
    get: GetVolume
    topology: Topology = attrs.field(factory=Topology)
    publish: PublishVolume | None = None
    unpublish: UnpublishVolume | None = None
    attachments: AttachmentState | None = None
    snapshots: snapshots.SnapshotUseCases | None = None


def _not_supported(method: str) -> Unimplemented:
    return Unimplemented(f"{method} is not supported by this driver (not advertised)")


class ControllerService(csi_pb2_grpc.ControllerServicer):
    """
    Args:
        use_cases: None when this instance serves only the node (``rds-csi node``): every
            method is then UNIMPLEMENTED and ControllerGetCapabilities lists nothing.
    """

    def __init__(self, use_cases: ControllerUseCases | None) -> None:
        self._use_cases = use_cases
        caps: tuple[csi_pb2.ControllerServiceCapability.RPC.Type.ValueType, ...] = (
            CONTROLLER_CAPABILITIES if use_cases is not None else ()
        )
        if use_cases is not None and use_cases.publish is None:
            caps = tuple(c for c in caps if c not in _PUBLISHING)
        if use_cases is not None and use_cases.snapshots is not None:
            caps = (*caps, *snapshots.SNAPSHOT_CAPABILITIES)
        self._capabilities = [csi_pb2.ControllerServiceCapability(rpc=_Rpc(type=c)) for c in caps]

    @property
    def _uc(self) -> ControllerUseCases:
        if self._use_cases is None:
            raise Unimplemented("this instance serves only the node service (rds-csi node)")
        return self._use_cases

    def ControllerGetCapabilities(
        self, request: csi_pb2.ControllerGetCapabilitiesRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ControllerGetCapabilitiesResponse:
        return csi_pb2.ControllerGetCapabilitiesResponse(capabilities=self._capabilities)

    def CreateVolume(
        self, request: csi_pb2.CreateVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.CreateVolumeResponse:
        uc = self._uc
        source = snapshots.content_source(request)
        if source is not None and uc.snapshots is None:
            raise InvalidArgument(
                "volume_content_source", "this instance makes no volumes from snapshots or volumes"
            )
        made = uc.create(
            request.name,
            mappers.capacity_range(
                request.capacity_range, present=request.HasField("capacity_range")
            ),
            mappers.capabilities(request.volume_capabilities),
            dict(request.parameters),
            mappers.requisite(
                request.accessibility_requirements,
                present=request.HasField("accessibility_requirements"),
            ),
            source=source,
        )
        volume = mappers.volume(made.volume, made.context, uc.topology)
        snapshots.echo_source(request, volume)
        return csi_pb2.CreateVolumeResponse(volume=volume)

    def DeleteVolume(
        self, request: csi_pb2.DeleteVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.DeleteVolumeResponse:
        self._uc.delete(request.volume_id)
        return csi_pb2.DeleteVolumeResponse()

    def ValidateVolumeCapabilities(
        self, request: csi_pb2.ValidateVolumeCapabilitiesRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ValidateVolumeCapabilitiesResponse:
        result = self._uc.validate(
            request.volume_id,
            mappers.capabilities(request.volume_capabilities),
            dict(request.parameters),
        )
        if not result.confirmed:
            return csi_pb2.ValidateVolumeCapabilitiesResponse(message=result.message)
        return csi_pb2.ValidateVolumeCapabilitiesResponse(
            confirmed=csi_pb2.ValidateVolumeCapabilitiesResponse.Confirmed(
                volume_context=request.volume_context,
                volume_capabilities=request.volume_capabilities,
                parameters=request.parameters,
            )
        )

    def ListVolumes(
        self, request: csi_pb2.ListVolumesRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ListVolumesResponse:
        uc = self._uc
        page = uc.list(request.max_entries, request.starting_token)
        return csi_pb2.ListVolumesResponse(
            entries=[
                csi_pb2.ListVolumesResponse.Entry(
                    volume=mappers.volume(v, topo=uc.topology),
                    status=csi_pb2.ListVolumesResponse.VolumeStatus(
                        published_node_ids=self._published(v.volume_id)
                    ),
                )
                for v in page.volumes
            ],
            next_token=page.next_token,
        )

    def GetCapacity(
        self, request: csi_pb2.GetCapacityRequest, context: grpc.ServicerContext
    ) -> csi_pb2.GetCapacityResponse:
        capacity = self._uc.capacity(
            mappers.capabilities(request.volume_capabilities), dict(request.parameters)
        )
        return csi_pb2.GetCapacityResponse(
            available_capacity=capacity.available.bytes,
            maximum_volume_size=mappers.int64(capacity.maximum_volume_size.bytes),
            minimum_volume_size=mappers.int64(capacity.minimum_volume_size.bytes),
        )

    def ControllerExpandVolume(
        self, request: csi_pb2.ControllerExpandVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ControllerExpandVolumeResponse:
        expanded = self._uc.expand(
            request.volume_id,
            mappers.capacity_range(
                request.capacity_range, present=request.HasField("capacity_range")
            ),
            mappers.optional_capability(
                request.volume_capability, present=request.HasField("volume_capability")
            ),
        )
        return csi_pb2.ControllerExpandVolumeResponse(
            capacity_bytes=expanded.size.bytes,
            node_expansion_required=expanded.node_expansion_required,
        )

    def ControllerGetVolume(
        self, request: csi_pb2.ControllerGetVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ControllerGetVolumeResponse:
        uc = self._uc
        vol = uc.get(request.volume_id)
        return csi_pb2.ControllerGetVolumeResponse(
            volume=mappers.volume(vol, topo=uc.topology),
            status=csi_pb2.ControllerGetVolumeResponse.VolumeStatus(
                published_node_ids=self._published(vol.volume_id)
            ),
        )

    def _published(self, volume_id: VolumeId) -> list[str]:
        state = self._uc.attachments
        return list(state.nodes_of(volume_id)) if state is not None else []

    def _snapshot_uc(self, method: str) -> snapshots.SnapshotUseCases:
        found = self._uc.snapshots
        if found is None:
            raise _not_supported(method)
        return found

    def ControllerPublishVolume(
        self, request: csi_pb2.ControllerPublishVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ControllerPublishVolumeResponse:
        publish = self._uc.publish
        if publish is None:
            raise _not_supported("ControllerPublishVolume")
        published = publish(
            request.volume_id,
            request.node_id,
            mappers.optional_capability(
                request.volume_capability, present=request.HasField("volume_capability")
            ),
            dict(request.volume_context),
            read_only=request.readonly,
        )
        return csi_pb2.ControllerPublishVolumeResponse(publish_context=published.publish_context)

    def ControllerUnpublishVolume(
        self, request: csi_pb2.ControllerUnpublishVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ControllerUnpublishVolumeResponse:
        unpublish = self._uc.unpublish
        if unpublish is None:
            raise _not_supported("ControllerUnpublishVolume")
        unpublish(request.volume_id, request.node_id)
        return csi_pb2.ControllerUnpublishVolumeResponse()

    def CreateSnapshot(
        self, request: csi_pb2.CreateSnapshotRequest, context: grpc.ServicerContext
    ) -> csi_pb2.CreateSnapshotResponse:
        return snapshots.create_snapshot(self._snapshot_uc("CreateSnapshot"), request)

    def DeleteSnapshot(
        self, request: csi_pb2.DeleteSnapshotRequest, context: grpc.ServicerContext
    ) -> csi_pb2.DeleteSnapshotResponse:
        return snapshots.delete_snapshot(self._snapshot_uc("DeleteSnapshot"), request)

    def ListSnapshots(
        self, request: csi_pb2.ListSnapshotsRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ListSnapshotsResponse:
        return snapshots.list_snapshots(self._snapshot_uc("ListSnapshots"), request)

    def GetSnapshot(
        self, request: csi_pb2.GetSnapshotRequest, context: grpc.ServicerContext
    ) -> csi_pb2.GetSnapshotResponse:
        return snapshots.get_snapshot(self._snapshot_uc("GetSnapshot"), request)

    # --- not advertised ------------------------------------------------------------------

    def ControllerModifyVolume(
        self, request: csi_pb2.ControllerModifyVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ControllerModifyVolumeResponse:
        raise _not_supported("ControllerModifyVolume")
