"""
Capacity metrics: the pool's size and free space, our volume (and snapshot) counts and whether
the RDS answered, refreshed in the background at a bounded rate.

A scrape never asks the RDS: Prometheus may scrape every few seconds, from several replicas,
and each RouterOS command costs an SSH round trip on the controller's single session. So the
controller asks once per ``interval`` and the gauges hold the last answer; a failed refresh
sets ``backend_up`` to 0 and leaves the last figures in place (stale but honest about it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from rds_csi.application.ports import CapacityMetrics, StorageBackend
from rds_csi.domain import DomainError


__all__ = ["CapacityRefresher"]

_log = logging.getLogger(__name__)


class CapacityRefresher:
    """
    Report the pool to ``metrics`` now and every ``interval`` seconds until ``stop``.

    Args:
        rds: The label the series carry: the RDS address the controller talks to.
        count_snapshots: Counts our snapshots on the RDS (e.g. ``len`` of a
            ``SnapshotBackend.list_snapshots()``); None while the driver has no snapshots, and
            then no snapshot count is reported at all (no series rather than a false 0).
    """

    def __init__(
        self,
        backend: StorageBackend,
        metrics: CapacityMetrics,
        *,
        rds: str,
        interval: float,
        count_snapshots: Callable[[], int] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be more than 0 seconds, got {interval}")
        self._backend = backend
        self._metrics = metrics
        self._rds = rds
        self._interval = interval
        self._count_snapshots = count_snapshots
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def interval(self) -> float:
        return self._interval

    def refresh(self) -> bool:
        """One round; whether the RDS answered every question. Never raises."""
        try:
            report = self._backend.capacity()
            volumes = len(self._backend.list_volumes())
            snapshots = self._count_snapshots() if self._count_snapshots is not None else None
        except DomainError as exc:
            _log.warning("capacity refresh: the RDS did not answer: %s", exc)
            self._metrics.backend_up(self._rds, up=False)
            return False
        except Exception:  # noqa: BLE001 - a bug here must not end the refresh loop
            _log.exception("capacity refresh failed unexpectedly")
            self._metrics.backend_up(self._rds, up=False)
            return False
        self._metrics.pool_capacity(self._rds, report)
        self._metrics.volume_count(self._rds, volumes)
        if snapshots is not None:
            self._metrics.snapshot_count(self._rds, snapshots)
        self._metrics.backend_up(self._rds, up=True)
        return True

    # --- the background loop, owned by whoever serves -------------------------------------

    def start(self) -> None:
        """Refresh now (in the background) and every ``interval`` seconds; idempotent."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="capacity-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while True:
            self.refresh()
            if self._stop.wait(self._interval):
                return
