"""
ControllerPublishVolume and ControllerUnpublishVolume: the fence between nodes.

The rules are the domain's (``domain/attachment.py``); here they meet the RDS (does the volume
exist), the cluster (does the node exist; whom to tell) and the shared ``AttachmentState``,
which ``AttachmentSync`` (``application/attachment_sync.py``) rebuilds from VolumeAttachments.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Final

import attrs

from rds_csi.application.events import (
    ATTACH_REFUSED,
    MIGRATION_ABORTED,
    MIGRATION_FINISHED,
    MIGRATION_STARTED,
    MIGRATION_TIMED_OUT,
    EventRecorder,
)
from rds_csi.application.kubernetes import Kubernetes, PersistentVolumeInfo
from rds_csi.application.ports import AttachmentMetrics, Clock, Locks, StorageBackend
from rds_csi.application.structure import structure_context
from rds_csi.domain import (
    AccessMode,
    Attachment,
    AttachOutcome,
    AttachRefused,
    BackendUnavailable,
    CapacityExhausted,
    DetachOutcome,
    DomainError,
    InvalidArgument,
    MigrationTimedOut,
    NotFound,
    Usage,
    Volume,
    VolumeCapability,
    VolumeContext,
    VolumeId,
    VolumeNotFound,
    VolumeParameters,
    check_capabilities,
    parse_volume_reference,
)
from rds_csi.domain.attachment import attach, check_node_id, detach, detach_all
from rds_csi.domain.parameters import C_MIGRATION_TIMEOUT, MAX_MIGRATION_TIMEOUT
from rds_csi.domain.text import quoted


__all__ = [
    "AttachmentState",
    "PublishVolume",
    "UnpublishVolume",
    "migration_timeout",
]

_log = logging.getLogger(__name__)
# A publish is fresh until the attacher has had time to mark its VolumeAttachment attached:
# a rebuild in that window keeps it (the cluster's record lags our answer by design).
FRESH_SECONDS: Final = 120.0


class AttachmentState:
    """
    The attachments the controller knows, per volume; shared by the use cases and the sync.

    Thread-safe; each value is an immutable ``Attachment`` swapped whole.
    """

    def __init__(self, clock: Clock, *, ready: bool = True) -> None:
        self._clock = clock
        self._ready = ready
        self._lock = threading.Lock()
        self._by_volume: dict[VolumeId, Attachment] = {}
        self._fresh: dict[tuple[VolumeId, str], float] = {}

    @property
    def ready(self) -> bool:
        """False until the first rebuild from the cluster (when a sync keeps this state)."""
        return self._ready

    def mark_ready(self) -> None:
        self._ready = True

    def get(self, volume_id: VolumeId) -> Attachment | None:
        with self._lock:
            return self._by_volume.get(volume_id)

    def put(self, volume_id: VolumeId, attachment: Attachment | None, *, node: str = "") -> None:
        """Store what a publish or unpublish decided; ``node`` names a node just attached."""
        with self._lock:
            if attachment is None:
                self._by_volume.pop(volume_id, None)
            else:
                self._by_volume[volume_id] = attachment
            held = set(attachment.nodes) if attachment else set()
            for key in [k for k in self._fresh if k[0] == volume_id and k[1] not in held]:
                del self._fresh[key]
            if node:
                self._fresh[(volume_id, node)] = self._clock.monotonic()

    def replace(self, rebuilt: Mapping[VolumeId, Attachment]) -> None:
        """
        Take the cluster's record as the truth, except for attachments this process made so
        recently that the cluster cannot show them yet.
        """
        now = self._clock.monotonic()
        with self._lock:
            merged = dict(rebuilt)
            for (vid, node), when in list(self._fresh.items()):
                if now - when > FRESH_SECONDS:
                    del self._fresh[(vid, node)]
                    continue
                recorded = merged.get(vid)
                if recorded is not None and node in recorded.nodes:
                    # The cluster shows it now: from here on its absence is a real detach.
                    del self._fresh[(vid, node)]
                    continue
                if recorded is None or node not in recorded.nodes:
                    local = self._by_volume.get(vid)
                    if local is not None:
                        merged[vid] = local
            self._by_volume = merged

    def snapshot(self) -> dict[VolumeId, Attachment]:
        with self._lock:
            return dict(self._by_volume)

    def nodes_of(self, volume_id: VolumeId) -> tuple[str, ...]:
        found = self.get(volume_id)
        return found.nodes if found else ()

    def by_mode(self) -> dict[str, int]:
        counts = dict.fromkeys((m.name for m in AccessMode), 0)
        for found in self.snapshot().values():
            counts[found.usage.access_mode.name] += 1
        return counts


def migration_timeout(context: Mapping[str, str], default: int) -> int:
    """``migrationTimeoutSeconds`` from a volume context (a PV's, or the CO's), else ``default``."""
    raw = context.get(C_MIGRATION_TIMEOUT, "")
    if not raw:
        return default
    value = int(raw) if raw.isdigit() else 0
    if not 0 < value <= MAX_MIGRATION_TIMEOUT:
        raise InvalidArgument(
            f"volume_context.{C_MIGRATION_TIMEOUT}",
            f"{quoted(raw)} is not a number of seconds in 1..{MAX_MIGRATION_TIMEOUT}",
        )
    return value


@attrs.frozen
class Published:
    attachment: Attachment
    publish_context: dict[str, str]


class PublishVolume:
    """
    ``__call__(volume_id, node_id, capability, volume_context, read_only=...)``: attach the
    volume to the node, or refuse; returns the attachment and the ``publish_context`` the node
    stages from (the volume context's keys, with the NQN and port the RDS reports).

    Raises:
        InvalidArgument: a field is missing or malformed.
        VolumeNotFound: no such volume on the RDS.
        NotFound: no such node (no CSINode lists our driver for it).
        AlreadyExists: published to this node already, another way.
        AttachRefused, MigrationTimedOut: fenced off (FAILED_PRECONDITION).
        OperationInProgress: another operation holds the volume.
    """

    def __init__(
        self,
        backend: StorageBackend,
        state: AttachmentState,
        locks: Locks,
        clock: Clock,
        *,
        defaults: VolumeParameters,
        kubernetes: Kubernetes | None = None,
        events: EventRecorder | None = None,
        metrics: AttachmentMetrics | None = None,
        own_node: str = "",
    ) -> None:
        self._backend = backend
        self._state = state
        self._locks = locks
        self._clock = clock
        self._defaults = defaults
        self._kubernetes = kubernetes
        self._events = events
        self._metrics = metrics
        self._own_node = own_node

    def __call__(
        self,
        raw_volume_id: str,
        node_id: str,
        capability: VolumeCapability | None,
        volume_context: Mapping[str, str],
        *,
        read_only: bool = False,
    ) -> Published:
        # Every required field first: csi-sanity sends a foreign volume ID with a field missing
        # and wants INVALID_ARGUMENT, not NOT_FOUND.
        if not raw_volume_id:
            raise InvalidArgument("volume_id", "is required")
        check_node_id(node_id)
        if capability is None:
            raise InvalidArgument("volume_capability", "is required")
        vid = parse_volume_reference(raw_volume_id)
        check_capabilities([capability], field="volume_capability")
        usage = Usage.of(capability, read_only=read_only)
        timeout = migration_timeout(volume_context, self._defaults.migration_timeout)
        if not self._state.ready:
            raise BackendUnavailable(
                "the controller has not yet read the cluster's VolumeAttachments; it will not "
                "attach anything before it knows what is attached (retry shortly)"
            )
        with self._locks.hold(str(vid)):
            volume = self._backend.get_volume(vid)
            limit = self._check_node(node_id)
            context = self._publish_context(volume_context, volume)
            current = self._state.get(vid)
            if limit and (current is None or node_id not in current.nodes):
                self._check_limit(node_id, limit)
            try:
                result = attach(
                    current,
                    vid,
                    node_id,
                    usage,
                    now=self._clock.time(),
                    migration_timeout=timeout,
                )
            except AttachRefused as exc:
                self._refused(vid, exc)
                raise
            self._state.put(vid, result.attachment, node=node_id)
        if result.outcome is AttachOutcome.MIGRATION_STARTED:
            self._tell(
                vid,
                MIGRATION_STARTED,
                f"live migration of volume {vid} started: node {quoted(node_id)} attached "
                f"while {quoted(result.attachment.holder)} holds it; the source must detach "
                f"within {result.attachment.migration_timeout}s",
            )
        self._report()
        return Published(result.attachment, context)

    def _check_node(self, node_id: str) -> int:
        """The node's attach limit (0: none), or NotFound."""
        if self._kubernetes is None:
            if node_id != self._own_node:
                raise NotFound(
                    f"node {quoted(node_id)} not found: without a cluster the only node is this "
                    f"process's own, {quoted(self._own_node)}"
                )
            return 0
        found = self._kubernetes.csi_node(node_id)
        if found is None:
            raise NotFound(
                f"node {quoted(node_id)} not found: no CSINode lists this driver with that "
                "node ID (is the node plugin running there?)"
            )
        return found.max_volumes

    def _check_limit(self, node_id: str, limit: int) -> None:
        held = sum(node_id in a.nodes for a in self._state.snapshot().values())
        if held >= limit:
            raise CapacityExhausted(
                f"node {quoted(node_id)} holds {held} volumes of this driver, its attach limit "
                f"(CSINode allocatable count {limit}); another node must take this one"
            )

    def _publish_context(self, given: Mapping[str, str], volume: Volume) -> dict[str, str]:
        if given.get("nqn"):
            ctx = structure_context(given)
            # The RDS is the truth for what the disk is exported as.
            ctx = attrs.evolve(ctx, nqn=volume.nqn, nvme_port=volume.nvme_port)
        else:
            ctx = VolumeContext.for_volume(volume, self._defaults)
        return ctx.to_mapping()

    def _refused(self, vid: VolumeId, exc: AttachRefused) -> None:
        timed_out = isinstance(exc, MigrationTimedOut)
        if self._metrics is not None:
            self._metrics.attach_refused("migration_timeout" if timed_out else "held")
        self._tell(vid, MIGRATION_TIMED_OUT if timed_out else ATTACH_REFUSED, str(exc))

    def _tell(self, vid: VolumeId, reason: str, message: str) -> None:
        _log.info("%s: %s", reason, message)
        # The attacher retries a refusal every few seconds: find the PVC (a list of PVs) only
        # when the event is due.
        if self._events is not None and self._events.due(("volume", vid, reason)):
            self._events.on_volume(_pv_of(self._kubernetes, vid), reason, message)

    def _report(self) -> None:
        if self._metrics is not None:
            self._metrics.attachments(self._state.by_mode())


def _pv_of(kubernetes: Kubernetes | None, vid: VolumeId) -> PersistentVolumeInfo | None:
    if kubernetes is None:
        return None
    try:
        return next(
            (pv for pv in kubernetes.list_persistent_volumes() if pv.volume_handle == str(vid)),
            None,
        )
    except DomainError as exc:
        _log.warning("cannot look up the PV of %s for an event: %s", vid, exc)
        return None


class UnpublishVolume:
    """
    ``__call__(volume_id, node_id)``; an empty ``node_id`` detaches every node. A volume or
    node we do not know is already detached: success.
    """

    def __init__(
        self,
        state: AttachmentState,
        locks: Locks,
        clock: Clock,
        *,
        kubernetes: Kubernetes | None = None,
        events: EventRecorder | None = None,
        metrics: AttachmentMetrics | None = None,
    ) -> None:
        self._state = state
        self._locks = locks
        self._clock = clock
        self._kubernetes = kubernetes
        self._events = events
        self._metrics = metrics

    def __call__(self, raw_volume_id: str, node_id: str) -> None:
        try:
            vid = parse_volume_reference(raw_volume_id)
        except VolumeNotFound:
            return
        if node_id:
            check_node_id(node_id)
        with self._locks.hold(str(vid)):
            current = self._state.get(vid)
            result = (
                detach(current, node_id, now=self._clock.time()) if node_id else detach_all(current)
            )
            self._state.put(vid, result.attachment)
        if self._metrics is not None:
            self._metrics.attachments(self._state.by_mode())
        self._after_migration(vid, node_id, result.outcome, result.migration_seconds)

    def _after_migration(
        self, vid: VolumeId, node_id: str, outcome: DetachOutcome, seconds: float | None
    ) -> None:
        if seconds is None:
            return
        if self._metrics is not None:
            self._metrics.migration(outcome.value, seconds)
        reason, text = {
            DetachOutcome.MIGRATION_FINISHED: (MIGRATION_FINISHED, "finished"),
            DetachOutcome.MIGRATION_TIMED_OUT: (MIGRATION_TIMED_OUT, "finished past its timeout"),
            DetachOutcome.MIGRATION_ABORTED: (MIGRATION_ABORTED, "was cancelled"),
        }.get(outcome, ("", ""))
        if not reason:
            return
        message = (
            f"live migration of volume {vid} {text} after {seconds:.1f}s: node "
            f"{quoted(node_id)} detached"
        )
        _log.info("%s: %s", reason, message)
        if self._events is not None:
            self._events.on_volume(_pv_of(self._kubernetes, vid), reason, message)
