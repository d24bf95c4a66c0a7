"""
Attachment state rebuilt, not remembered: VolumeAttachment objects are the truth.

At start, before the first publish is answered, and on every resync the controller lists the
VolumeAttachments of our driver and the PersistentVolumes they name, and derives every
volume's attachment from them (the Go driver's rule). Between resyncs a watch keeps the same
cache current. A restarted controller, or a second replica taking over, so never forgets an
attachment nor invents one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Final

from rds_csi.application.attachment import AttachmentState, migration_timeout
from rds_csi.application.kubernetes import (
    EventType,
    Kubernetes,
    PersistentVolumeInfo,
    VolumeAttachmentInfo,
    WatchEvent,
    WatchExpired,
)
from rds_csi.application.ports import AttachmentMetrics
from rds_csi.domain import AccessMode, Attachment, DomainError, Usage, VolumeId
from rds_csi.domain.attachment import rebuilt


__all__ = ["AttachmentSync", "derive_attachments", "usage_of"]

_log = logging.getLogger(__name__)
WATCH_SECONDS: Final = 60
RETRY_SECONDS: Final = 5.0


def usage_of(pv: PersistentVolumeInfo) -> Usage:
    """The capability the attacher sends for a PV's access modes, as near as they tell."""
    modes = set(pv.access_modes)
    if "ReadWriteMany" in modes:
        mode = AccessMode.MULTI_NODE_MULTI_WRITER
    elif "ReadWriteOncePod" in modes:
        mode = AccessMode.SINGLE_NODE_SINGLE_WRITER
    elif modes == {"ReadOnlyMany"}:
        mode = AccessMode.MULTI_NODE_READER_ONLY
    else:
        mode = AccessMode.SINGLE_NODE_WRITER
    return Usage(mode, block=pv.block)


def derive_attachments(
    attachments: Iterable[VolumeAttachmentInfo],
    pvs: Mapping[str, PersistentVolumeInfo],
    *,
    default_timeout: int,
) -> dict[VolumeId, Attachment]:
    """Every volume's attachment from the attached VolumeAttachments (foreign PVs skipped)."""
    nodes: dict[str, dict[str, float]] = {}
    for va in attachments:
        if va.attached and va.pv_name in pvs:
            nodes.setdefault(va.pv_name, {})[va.node_name] = va.created_at
    found: dict[VolumeId, Attachment] = {}
    for pv_name, attached in nodes.items():
        pv = pvs[pv_name]
        if not VolumeId.is_valid(pv.volume_handle):
            continue
        try:
            timeout = migration_timeout(pv.attributes, default_timeout)
        except DomainError:
            timeout = default_timeout
        vid = VolumeId(pv.volume_handle)
        made = rebuilt(vid, attached.items(), usage_of(pv), migration_timeout=timeout)
        if made is not None:
            found[vid] = made
    return found


class AttachmentSync:
    """Keeps ``AttachmentState`` equal to what the cluster's VolumeAttachments say."""

    def __init__(
        self,
        kubernetes: Kubernetes,
        state: AttachmentState,
        *,
        default_timeout: int,
        resync_seconds: float = 300.0,
        metrics: AttachmentMetrics | None = None,
        enabled: bool = True,
    ) -> None:
        self._kubernetes = kubernetes
        self._state = state
        self._default_timeout = default_timeout
        self._resync = max(resync_seconds, 1.0)
        self._metrics = metrics
        self._enabled = enabled
        self._cache: dict[str, VolumeAttachmentInfo] = {}
        self._pvs: dict[str, PersistentVolumeInfo] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def rebuild(self) -> str:
        """List everything again and replace the state; returns the list's resource version."""
        listing = self._kubernetes.list_volume_attachments()
        pvs = {pv.name: pv for pv in self._kubernetes.list_persistent_volumes()}
        with self._lock:
            self._cache = {va.name: va for va in listing.items}
            self._pvs = pvs
            self._derive()
        _log.info(
            "attachment state rebuilt from %d VolumeAttachments (%d volumes attached)",
            len(listing.items),
            len(self._state.snapshot()),
        )
        return listing.resource_version

    def apply(self, event: WatchEvent) -> None:
        va = event.attachment
        with self._lock:
            if event.type is EventType.DELETED:
                self._cache.pop(va.name, None)
            else:
                self._cache[va.name] = va
            if va.pv_name and va.pv_name not in self._pvs:
                self._pvs = {pv.name: pv for pv in self._kubernetes.list_persistent_volumes()}
            self._derive()

    def _derive(self) -> None:
        self._state.replace(
            derive_attachments(
                self._cache.values(), self._pvs, default_timeout=self._default_timeout
            )
        )
        self._state.mark_ready()
        if self._metrics is not None:
            self._metrics.attachments(self._state.by_mode())

    # --- the loop ---------------------------------------------------------------------------

    def start(self) -> None:
        """
        Rebuild once now (so no publish is answered from an empty state), then keep up.
        Disabled (an in-memory cluster nobody else writes: no attacher records anything),
        the controller's own memory is the only record and is ready at once.
        """
        if not self._enabled:
            self._state.mark_ready()
            return
        try:
            version = self.rebuild()
        except DomainError as exc:
            _log.error("cannot rebuild attachments from VolumeAttachments yet: %s", exc)
            version = ""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(version,), name="attachment-sync", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self, version: str) -> None:
        while not self._stop.is_set():
            try:
                if not version:
                    version = self.rebuild()
                version = self._watch(version)
            except WatchExpired:
                version = ""
            except DomainError as exc:
                _log.warning("attachment sync: %s; retrying in %.0fs", exc, RETRY_SECONDS)
                version = ""
                self._stop.wait(RETRY_SECONDS)

    def _watch(self, version: str) -> str:
        """Follow changes until the resync is due; returns "" to ask for a full rebuild."""
        budget = self._resync
        while budget > 0 and not self._stop.is_set():
            seconds = int(min(WATCH_SECONDS, max(budget, 1)))
            for event in self._kubernetes.watch_volume_attachments(version, seconds):
                self.apply(event)
                version = event.resource_version or version
                if self._stop.is_set():
                    return version
            budget -= seconds
        return ""
