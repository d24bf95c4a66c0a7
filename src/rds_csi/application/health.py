"""
Health for Probe: whether this instance can do its job right now, answered at once.

Probe must answer within its deadline whatever the RDS does: a liveness probe that times out
restarts a healthy controller exactly when the RDS is down. So the RDS is asked in the
background (``HealthMonitor.start``), and on demand when the last answer is older than the
interval, at most once per ``min_gap``; Probe reads the latest answer and waits for a fresh
one at most ``answer_within`` seconds from when that check started.
"""

from __future__ import annotations

import logging
import threading

import attrs

from rds_csi.application.ports import Clock, StorageBackend
from rds_csi.domain import BackendUnavailable, DomainError


__all__ = ["CheckHealth", "Health", "HealthMonitor"]

_log = logging.getLogger(__name__)


@attrs.frozen
class Health:
    ready: bool
    reason: str = ""


class CheckHealth:
    """
    Ask the backend, when this instance has one (the controller); a node has nothing to ask.

    An unreachable RDS is "not ready", not an error: the CSI sidecars wait on ``ready=false``
    at startup but exit on an error status, and an RDS outage is no reason to crashloop them.
    """

    def __init__(self, backend: StorageBackend | None) -> None:
        self._backend = backend

    @property
    def asks_anyone(self) -> bool:
        return self._backend is not None

    def __call__(self) -> Health:
        if self._backend is None:
            return Health(ready=True)
        try:
            self._backend.check_health()
        except BackendUnavailable as exc:
            return Health(ready=False, reason=str(exc))
        except DomainError as exc:
            return Health(ready=False, reason=f"the RDS answered the health check with: {exc}")
        return Health(ready=True)


class HealthMonitor:
    """
    The latest answer of ``check``, kept fresh; calling the monitor never blocks for long.

    Args:
        interval: Seconds between background checks; an answer older than this is stale.
        min_gap: On-demand checks start at most this often (Probe storms cost one check).
        answer_within: The longest a call waits for a fresh answer before using the last one.
        hung_after: A check running longer than this makes the instance "not ready" even if
            the last answer was good: a hung RDS is not a healthy one.
    """

    def __init__(
        self,
        check: CheckHealth,
        *,
        interval: float = 10.0,
        min_gap: float = 1.0,
        answer_within: float = 0.5,  # well inside a liveness probe's 1 s
        hung_after: float = 5.0,
        clock: Clock,
    ) -> None:
        self._check = check
        self._interval = interval
        self._min_gap = min_gap
        self._answer_within = answer_within
        self._hung_after = hung_after
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: Health | None = None
        self._checked_at = 0.0
        self._running: threading.Event | None = None
        self._started_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the background loop, owned by whoever serves -------------------------------------

    def start(self) -> None:
        """Check now and every ``interval`` seconds until ``stop``; no-op when nothing to ask."""
        if not self._check.asks_anyone or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="health-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while True:
            self._kick(force=True)
            if self._stop.wait(self._interval):
                return

    # --- checks ---------------------------------------------------------------------------

    def refresh(self, wait: float | None = None) -> Health:
        """Start a check now (unless one runs) and wait for it up to ``wait`` seconds."""
        done = self._kick(force=True)
        if done is not None:
            done.wait(self._answer_within if wait is None else wait)
        return self._current()

    def _kick(self, *, force: bool = False) -> threading.Event | None:
        """Start a check unless one runs or one started less than ``min_gap`` ago."""
        with self._lock:
            if self._running is not None:
                return self._running
            now = self._clock.monotonic()
            if not force and now - self._started_at < self._min_gap:
                return None
            done = self._running = threading.Event()
            self._started_at = now
        threading.Thread(target=self._run, args=(done,), name="health-check", daemon=True).start()
        return done

    def _run(self, done: threading.Event) -> None:
        try:
            health = self._check()
        except Exception as exc:  # noqa: BLE001 - a bug here must not leave Probe stuck
            _log.exception("health check failed unexpectedly")
            health = Health(ready=False, reason=f"the health check failed: {type(exc).__name__}")
        with self._lock:
            self._latest = health
            self._checked_at = self._clock.monotonic()
            self._running = None
        done.set()

    def _current(self) -> Health:
        with self._lock:
            latest = self._latest
            running = self._running is not None
            running_for = self._clock.monotonic() - self._started_at
        if running and running_for >= self._hung_after:
            return Health(
                ready=False,
                reason=f"the RDS has not answered a health check for {running_for:.0f} s",
            )
        if latest is None:
            return Health(ready=False, reason="the RDS has not answered a health check yet")
        return latest

    def __call__(self) -> Health:
        """The latest answer, refreshed first (within ``answer_within``) when stale."""
        if not self._check.asks_anyone:
            return Health(ready=True)
        with self._lock:
            stale = (
                self._latest is None or self._clock.monotonic() - self._checked_at >= self._interval
            )
        if stale:
            done = self._kick()
            if done is not None:
                done.wait(self._wait_left())
        return self._current()

    def _wait_left(self) -> float:
        """What is left of ``answer_within`` since the running check started: a Probe storm
        against a hung RDS is not made to wait again and again for the same stuck check."""
        with self._lock:
            running_for = self._clock.monotonic() - self._started_at
        return max(0.0, self._answer_within - running_for)
