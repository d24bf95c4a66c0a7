"""
The stale-attachment report: attachments held by nodes that are gone or long NotReady.

The Go driver's five-hour outage came from VolumeAttachments that outlived their node and kept
a volume fenced. This reconciler finds them and tells the operator (an Event on the PVC, the
``rds_csi_stale_attachments`` gauge, a log line) but never detaches by itself: only the
operator knows whether the node is really off, and detaching a live one corrupts the volume
(``docs/attachments.md`` says what to do).
"""

from __future__ import annotations

import logging
import threading
from typing import Final

import attrs

from rds_csi.application.attachment import AttachmentState
from rds_csi.application.events import STALE_ATTACHMENT, EventRecorder
from rds_csi.application.kubernetes import Kubernetes, PersistentVolumeInfo
from rds_csi.application.leases import Lease
from rds_csi.application.ports import AttachmentMetrics, Clock
from rds_csi.domain import DomainError, VolumeId
from rds_csi.domain.text import quoted


__all__ = ["StaleAttachment", "StaleAttachments"]

_log = logging.getLogger(__name__)
LEASE_NAME: Final = "rds-csi-stale-attachments"
LEASE_SLACK: Final = 10  # seconds a missed renewal may be late before another replica takes over


@attrs.frozen
class StaleAttachment:
    volume_id: VolumeId
    node: str
    reason: str


class StaleAttachments:
    """
    Args:
        grace: Seconds a node may be NotReady before its attachments count as stale.
        interval: Seconds between passes of the background loop (``start``).
        identity: This replica's name for leader election through a Lease (the sidecars
            elect their own leaders); empty: no election, every pass reports.
    """

    def __init__(
        self,
        kubernetes: Kubernetes,
        state: AttachmentState,
        clock: Clock,
        *,
        grace: float,
        interval: float,
        events: EventRecorder | None = None,
        metrics: AttachmentMetrics | None = None,
        identity: str = "",
    ) -> None:
        self._kubernetes = kubernetes
        self._identity = identity
        self._state = state
        self._clock = clock
        self._grace = grace
        self._interval = interval
        self._events = events
        self._metrics = metrics
        self._stop = threading.Event()
        self._lease = Lease(kubernetes, LEASE_NAME, identity, int(interval * 2 + LEASE_SLACK))

    def check(self) -> list[StaleAttachment]:
        """One pass: every stale attachment, reported."""
        found: list[StaleAttachment] = []
        now = self._clock.time()
        for vid, attachment in sorted(self._state.snapshot().items()):
            for node in attachment.nodes:
                reason = self._why_stale(node, now)
                if reason:
                    found.append(StaleAttachment(vid, node, reason))
        if self._metrics is not None:
            self._metrics.stale_attachments(len(found))
        if found:
            self._report(found)
        return found

    def _why_stale(self, node: str, now: float) -> str:
        status = self._kubernetes.node_status(node)
        if status is None:
            return "its Node object is deleted"
        if status.ready:
            return ""
        down = now - status.ready_since if status.ready_since else None
        if down is None or down < self._grace:
            return ""
        return f"the node has been NotReady for {down:.0f}s"

    def _report(self, found: list[StaleAttachment]) -> None:
        pvs: dict[str, PersistentVolumeInfo] = {}
        if self._events is not None:
            pvs = {pv.volume_handle: pv for pv in self._kubernetes.list_persistent_volumes()}
        for stale in found:
            message = (
                f"volume {stale.volume_id} is attached to node {quoted(stale.node)}, but "
                f"{stale.reason}; it stays fenced there until the VolumeAttachment is removed. "
                "If the node is really off, delete the Node (or taint it out-of-service) so "
                "Kubernetes detaches it"
            )
            _log.warning("StaleAttachment: %s", message)
            if self._events is not None:
                self._events.on_volume(pvs.get(str(stale.volume_id)), STALE_ATTACHMENT, message)

    def start(self) -> None:
        self._stop.clear()
        threading.Thread(target=self._run, name="stale-attachments", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def leading(self) -> bool:
        """
        Whether this replica holds the reconciler's Lease (taking or renewing it now): with two
        controller replicas only one reports. Without an ``identity`` there is no election.
        """
        return self._lease.held()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if self.leading():
                    self.check()
            except DomainError as exc:
                _log.warning("stale-attachment check failed: %s", exc)
