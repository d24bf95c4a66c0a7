"""
The Kubernetes port: what the controller reads from and tells the cluster.

Read: the VolumeAttachments of our driver (the authoritative record of which node holds which
volume), CSINodes (a node exists for us when its CSINode lists our driver), Nodes (readiness,
for the stale-attachment report) and the PersistentVolumes of our driver (access modes and the
PVC to tell). Written: Events, nothing else. The adapters are ``adapters/kubernetes/api.py``
(the official client) and ``adapters/kubernetes/fake.py`` (in memory).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs

from rds_csi.domain import Aborted


__all__ = [
    "CsiNodeInfo",
    "EventType",
    "Kubernetes",
    "NodeStatus",
    "ObjectRef",
    "PersistentVolumeInfo",
    "VolumeAttachmentInfo",
    "VolumeAttachmentList",
    "WatchEvent",
    "WatchExpired",
]


class WatchExpired(Aborted):
    """The watch's resource version is too old (HTTP 410): list again, then watch from there."""


@attrs.frozen
class VolumeAttachmentInfo:
    """
    One VolumeAttachment of our driver.

    Attributes:
        pv_name: ``spec.source.persistentVolumeName`` (empty for an inline volume).
        attached: ``status.attached``: the attacher's ControllerPublish succeeded.
        created_at: ``metadata.creationTimestamp``, seconds since the epoch.
        deleting: ``metadata.deletionTimestamp`` is set: a detach is under way.
    """

    name: str
    pv_name: str
    node_name: str
    attached: bool = False
    created_at: float = 0.0
    deleting: bool = False


@attrs.frozen
class VolumeAttachmentList:
    items: tuple[VolumeAttachmentInfo, ...]
    resource_version: str = ""


class EventType(enum.Enum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@attrs.frozen
class WatchEvent:
    type: EventType
    attachment: VolumeAttachmentInfo
    resource_version: str = ""


@attrs.frozen
class PersistentVolumeInfo:
    """
    One PersistentVolume of our driver (``spec.csi.driver`` is ours).

    Attributes:
        access_modes: Kubernetes' names (``ReadWriteOnce``, ``ReadWriteMany``, ...).
        block: ``spec.volumeMode`` is ``Block``.
        attributes: ``spec.csi.volumeAttributes`` (the volume context).
        claim_namespace, claim_name: ``spec.claimRef``, empty when unbound.
    """

    name: str
    volume_handle: str
    access_modes: tuple[str, ...] = ()
    block: bool = False
    attributes: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    claim_namespace: str = ""
    claim_name: str = ""


@attrs.frozen
class CsiNodeInfo:
    """
    Our driver's entry in a CSINode: the node exists for us.

    Attributes:
        max_volumes: ``allocatable.count``, the node's attach limit; 0: none reported.
    """

    name: str
    node_id: str
    max_volumes: int = 0


@attrs.frozen
class NodeStatus:
    name: str
    ready: bool
    ready_since: float = 0.0  # lastTransitionTime of the Ready condition


@attrs.frozen
class ObjectRef:
    """What an Event is about (``involvedObject``)."""

    kind: str
    name: str
    namespace: str = ""
    uid: str = ""


@runtime_checkable
class Kubernetes(Protocol):
    """
    The API server, as far as the controller needs it. Every method may raise
    BackendUnavailable (the API server cannot be reached) or BackendError (it refused, e.g.
    RBAC), and nothing else from the client library.
    """

    def list_volume_attachments(self) -> VolumeAttachmentList:
        """Every VolumeAttachment whose ``spec.attacher`` is our driver."""
        ...

    def watch_volume_attachments(
        self, resource_version: str, timeout_seconds: int
    ) -> Iterator[WatchEvent]:
        """
        Changes to our VolumeAttachments after ``resource_version``, until the server ends the
        watch (at most ``timeout_seconds``).

        Raises:
            WatchExpired: ``resource_version`` is too old; list again.
        """
        ...

    def csi_node(self, node_id: str) -> CsiNodeInfo | None:
        """The CSINode entry of our driver with this node ID; None: no such node for us."""
        ...

    def node_status(self, name: str) -> NodeStatus | None:
        """The Node's readiness, or None when there is no such Node."""
        ...

    def list_persistent_volumes(self) -> Sequence[PersistentVolumeInfo]:
        """Every PersistentVolume whose ``spec.csi.driver`` is ours."""
        ...

    def create_event(self, about: ObjectRef, *, warning: bool, reason: str, message: str) -> None:
        """
        Record an Event on ``about`` (in its namespace; cluster-scoped objects' Events go to
        ``default``), ``reason`` a CamelCase constant from ``application/events.py``.
        """
        ...

    def acquire_lease(self, name: str, holder: str, duration_seconds: int) -> bool:
        """
        Hold the coordination.k8s.io Lease ``name`` (in the controller's namespace) as
        ``holder`` for ``duration_seconds`` more: create it, renew it, or take it over once its
        holder let it expire. False when another holder has it (or won a race for it).
        """
        ...
