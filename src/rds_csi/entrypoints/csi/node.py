"""
The CSI Node service: each method maps the request, calls one node use case, maps back.

Advertised: STAGE_UNSTAGE_VOLUME, GET_VOLUME_STATS, EXPAND_VOLUME, VOLUME_CONDITION,
SINGLE_NODE_MULTI_WRITER. In controller-only mode every method is UNIMPLEMENTED except
NodeGetCapabilities, which external-resizer calls on the controller's socket to learn whether
the node grows filesystems.
"""

from __future__ import annotations

from typing import Final

import attrs
import grpc

from rds_csi.application.events import MOUNT_FAILED, MOUNT_RECOVERED, EventRecorder
from rds_csi.application.kubernetes import ObjectRef
from rds_csi.application.node import (
    NodeExpandVolume,
    NodeGetVolumeStats,
    NodePublishVolume,
    NodeStageVolume,
    NodeUnpublishVolume,
    NodeUnstageVolume,
)
from rds_csi.application.topology import Topology
from rds_csi.domain import Aborted, DomainError
from rds_csi.entrypoints.csi import mappers
from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc
from rds_csi.entrypoints.csi.status import Unimplemented


__all__ = ["NODE_CAPABILITIES", "NodeInfo", "NodeService", "NodeUseCases"]

_Rpc = csi_pb2.NodeServiceCapability.RPC
NODE_CAPABILITIES: Final = (
    _Rpc.STAGE_UNSTAGE_VOLUME,
    _Rpc.GET_VOLUME_STATS,
    _Rpc.EXPAND_VOLUME,
    _Rpc.VOLUME_CONDITION,
    _Rpc.SINGLE_NODE_MULTI_WRITER,
)


@attrs.frozen
class NodeInfo:
    """NodeGetInfo's answer: this node's ID, its attach limit (0: the CO decides), topology."""

    node_id: str
    max_volumes: int = 0
    topology: Topology = attrs.field(factory=Topology)


@attrs.frozen
class NodeUseCases:
    """What the node service calls; the container builds it."""

    stage: NodeStageVolume
    unstage: NodeUnstageVolume
    publish: NodePublishVolume
    unpublish: NodeUnpublishVolume
    stats: NodeGetVolumeStats
    expand: NodeExpandVolume
    info: NodeInfo


_POD_NAME: Final = "csi.storage.k8s.io/pod.name"
_POD_NAMESPACE: Final = "csi.storage.k8s.io/pod.namespace"
_POD_UID: Final = "csi.storage.k8s.io/pod.uid"


class NodeService(csi_pb2_grpc.NodeServicer):
    """
    Args:
        use_cases: None when this instance serves only the controller (``rds-csi
            controller``).
    """

    def __init__(self, use_cases: NodeUseCases | None, events: EventRecorder | None = None) -> None:
        self._use_cases = use_cases
        self._events = events
        self._capabilities = [
            csi_pb2.NodeServiceCapability(rpc=_Rpc(type=c)) for c in NODE_CAPABILITIES
        ]

    @property
    def _uc(self) -> NodeUseCases:
        if self._use_cases is None:
            raise Unimplemented(
                "this instance serves only the controller service (rds-csi controller)"
            )
        return self._use_cases

    def NodeGetCapabilities(
        self, request: csi_pb2.NodeGetCapabilitiesRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeGetCapabilitiesResponse:
        return csi_pb2.NodeGetCapabilitiesResponse(capabilities=self._capabilities)

    def NodeGetInfo(
        self, request: csi_pb2.NodeGetInfoRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeGetInfoResponse:
        info = self._uc.info
        topology = mappers.topology(info.topology)
        return csi_pb2.NodeGetInfoResponse(
            node_id=info.node_id,
            max_volumes_per_node=info.max_volumes,
            accessible_topology=topology[0] if topology else None,
        )

    def NodeStageVolume(
        self, request: csi_pb2.NodeStageVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeStageVolumeResponse:
        self._uc.stage(
            request.volume_id,
            request.staging_target_path,
            mappers.required_capability(
                request.volume_capability, present=request.HasField("volume_capability")
            ),
            # publish_context (ControllerPublish's answer) has the volume context's keys with
            # the RDS's word on the NQN and port; a Go driver PV without it still stages.
            {**request.volume_context, **request.publish_context},
        )
        return csi_pb2.NodeStageVolumeResponse()

    def NodeUnstageVolume(
        self, request: csi_pb2.NodeUnstageVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeUnstageVolumeResponse:
        self._uc.unstage(request.volume_id, request.staging_target_path)
        return csi_pb2.NodeUnstageVolumeResponse()

    def NodePublishVolume(
        self, request: csi_pb2.NodePublishVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodePublishVolumeResponse:
        try:
            recovered = self._uc.publish(
                request.volume_id,
                request.staging_target_path,
                request.target_path,
                mappers.required_capability(
                    request.volume_capability, present=request.HasField("volume_capability")
                ),
                read_only=request.readonly,
            )
        except Aborted:
            raise  # another call holds the volume: not a failure to tell anyone about
        except DomainError as exc:
            self._tell_pod(
                request,
                MOUNT_FAILED,
                f"volume {request.volume_id} could not be mounted for this pod: {exc}",
            )
            raise
        if recovered:
            self._tell_pod(
                request,
                MOUNT_RECOVERED,
                f"volume {request.volume_id} was recovered for this pod: {recovered}",
            )
        return csi_pb2.NodePublishVolumeResponse()

    def _tell_pod(self, request: csi_pb2.NodePublishVolumeRequest, reason: str, text: str) -> None:
        """An Event on the pod, named by podInfoOnMount's volume_context keys (if given)."""
        ctx = request.volume_context
        name, namespace = ctx.get(_POD_NAME, ""), ctx.get(_POD_NAMESPACE, "")
        if self._events is None or not name or not namespace:
            return
        self._events.record(ObjectRef("Pod", name, namespace, ctx.get(_POD_UID, "")), reason, text)

    def NodeUnpublishVolume(
        self, request: csi_pb2.NodeUnpublishVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeUnpublishVolumeResponse:
        self._uc.unpublish(request.volume_id, request.target_path)
        return csi_pb2.NodeUnpublishVolumeResponse()

    def NodeGetVolumeStats(
        self, request: csi_pb2.NodeGetVolumeStatsRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeGetVolumeStatsResponse:
        stats = self._uc.stats(request.volume_id, request.volume_path)
        return csi_pb2.NodeGetVolumeStatsResponse(
            usage=mappers.usage(stats),
            volume_condition=csi_pb2.VolumeCondition(
                abnormal=stats.abnormal, message=stats.message
            ),
        )

    def NodeExpandVolume(
        self, request: csi_pb2.NodeExpandVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeExpandVolumeResponse:
        size = self._uc.expand(
            request.volume_id,
            request.volume_path,
            mappers.capacity_range(
                request.capacity_range, present=request.HasField("capacity_range")
            ),
            mappers.optional_capability(
                request.volume_capability, present=request.HasField("volume_capability")
            ),
        )
        return csi_pb2.NodeExpandVolumeResponse(capacity_bytes=size.bytes)
