"""
Snapshot copies that outlast the call that started them.

A snapshot is a full copy of the source's image; without reflink on the RDS a large one takes
a while. CreateSnapshot waits for it a bounded time, then answers ``ready_to_use=false`` and
lets the copy finish in the background; the CO calls again until it is ready (CSI allows
this). Until then a restore from it, or its deletion, is refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import attrs

from rds_csi.application.ports import Metrics
from rds_csi.domain import Snapshot, SnapshotId


__all__ = ["PendingCopies", "Running", "measured"]

T = TypeVar("T")


def measured(metrics: Metrics | None, kind: str, copy: Callable[[], T]) -> T:
    """Run an image copy, telling ``metrics`` it started and how it ended."""
    if metrics is None:
        return copy()
    metrics.copy_started(kind)
    start = time.monotonic()
    outcome = "error"
    try:
        result = copy()
        outcome = "ok"
        return result
    finally:
        metrics.copy_finished(kind, time.monotonic() - start, outcome)


@attrs.frozen
class Running:
    """A copy still being made: what the CO is told meanwhile."""

    placeholder: Snapshot
    future: Future[Snapshot]


class PendingCopies:
    """The copies running in the background, at most ``workers`` at once."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="snapshot-copy")
        self._running: dict[SnapshotId, Running] = {}
        self._lock = threading.Lock()

    def start(self, make: Callable[[], Snapshot]) -> Future[Snapshot]:
        return self._pool.submit(make)

    def track(self, snapshot_id: SnapshotId, running: Running) -> None:
        with self._lock:
            self._running[snapshot_id] = running

    def get(self, snapshot_id: SnapshotId) -> Running | None:
        with self._lock:
            return self._running.get(snapshot_id)

    def forget(self, snapshot_id: SnapshotId) -> None:
        with self._lock:
            self._running.pop(snapshot_id, None)

    def is_running(self, snapshot_id: SnapshotId) -> bool:
        found = self.get(snapshot_id)
        return found is not None and not found.future.done()

    def placeholders(self) -> list[Snapshot]:
        """The snapshots whose copy has not finished (``ready=False``)."""
        with self._lock:
            return [r.placeholder for r in self._running.values() if not r.future.done()]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
