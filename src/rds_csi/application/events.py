"""
Events the driver records on PVCs (and Pods where known): reasons, and a rate-limited recorder.

An operator reads these with ``kubectl describe pvc``; ``docs/events.md`` lists every reason.
Recording an Event never fails the operation that caused it: an API server that refuses is
logged and forgotten. The same reason on the same object is recorded at most once per
``interval`` (a refused attach is retried by the attacher every few seconds; one event says it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Mapping
from typing import Final

from rds_csi.application.kubernetes import Kubernetes, ObjectRef, PersistentVolumeInfo
from rds_csi.application.ports import Clock
from rds_csi.domain import DomainError


__all__ = [
    "ATTACH_REFUSED",
    "EVENT_REASONS",
    "MIGRATION_FINISHED",
    "MIGRATION_STARTED",
    "MIGRATION_TIMED_OUT",
    "MOUNT_FAILED",
    "MOUNT_RECOVERED",
    "ORPHAN_FOUND",
    "STALE_ATTACHMENT",
    "EventRecorder",
]

_log = logging.getLogger(__name__)

ATTACH_REFUSED: Final = "AttachRefused"
MIGRATION_STARTED: Final = "MigrationStarted"
MIGRATION_FINISHED: Final = "MigrationFinished"
MIGRATION_TIMED_OUT: Final = "MigrationTimedOut"
MIGRATION_ABORTED: Final = "MigrationAborted"
STALE_ATTACHMENT: Final = "StaleAttachment"
MOUNT_FAILED: Final = "MountFailed"
MOUNT_RECOVERED: Final = "MountRecovered"
ORPHAN_FOUND: Final = "OrphanFound"

# reason -> Warning?; docs/events.md has one row per entry (a test holds them together).
EVENT_REASONS: Final[Mapping[str, bool]] = {
    ATTACH_REFUSED: True,
    MIGRATION_STARTED: False,
    MIGRATION_FINISHED: False,
    MIGRATION_TIMED_OUT: True,
    MIGRATION_ABORTED: True,
    STALE_ATTACHMENT: True,
    MOUNT_FAILED: True,
    MOUNT_RECOVERED: False,
    ORPHAN_FOUND: True,
}
DEFAULT_INTERVAL: Final = 60.0
_MESSAGE_MAX: Final = 1024  # the API server refuses longer Event messages


class EventRecorder:
    """
    Records Events through the Kubernetes port, at most one per (object, reason) per interval.

    Args:
        kubernetes: None when the process has no cluster to tell: every call is a no-op.
    """

    def __init__(
        self,
        kubernetes: Kubernetes | None,
        clock: Clock,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self._kubernetes = kubernetes
        self._clock = clock
        self._interval = interval
        self._last: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def due(self, key: Hashable) -> bool:
        """
        Whether ``key`` may be told now (and, if so, not again for ``interval``). ``record``
        asks it for each (object, reason); a caller asks it first when finding the object
        costs a call to the API server.
        """
        now = self._clock.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                return False
            self._last[key] = now
            return True

    def record(self, about: ObjectRef, reason: str, message: str) -> bool:
        """Record one Event; False when rate-limited, unconfigured or refused."""
        if self._kubernetes is None or not self.due((about, reason)):
            return False
        try:
            self._kubernetes.create_event(
                about,
                warning=EVENT_REASONS.get(reason, True),
                reason=reason,
                message=message[:_MESSAGE_MAX],
            )
        except DomainError as exc:
            _log.warning(
                "could not record event %s on %s %s: %s", reason, about.kind, about.name, exc
            )
            return False
        return True

    def on_volume(self, pv: PersistentVolumeInfo | None, reason: str, message: str) -> bool:
        """Record on the volume's PVC, or on the PV when it is unbound (or unknown: no event)."""
        if pv is None:
            return False
        if pv.claim_name:
            about = ObjectRef("PersistentVolumeClaim", pv.claim_name, pv.claim_namespace)
        else:
            about = ObjectRef("PersistentVolume", pv.name)
        return self.record(about, reason, message)
