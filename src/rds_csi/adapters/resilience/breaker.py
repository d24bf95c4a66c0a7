"""
A circuit breaker around a StorageBackend (pybreaker's state machine).

After ``failures`` consecutive transport failures (``BackendUnavailable``) the circuit opens:
every call fails at once with ``BackendUnavailable`` saying since when the RDS is unreachable
and when the next attempt is due, instead of paying the adapter's whole retry ladder against a
box known to be down. After ``reset_timeout`` one call at a time is let through (half-open);
its success closes the circuit, its failure opens it again. Domain answers (``NotFound``,
``CapacityExhausted``, ...) prove the RDS is there: they count as successes.

pybreaker holds its lock for the whole guarded call, which would serialize every RDS command
behind one another; so the guarded call runs outside the breaker and only its outcome is
replayed through ``CircuitBreaker.call``, which is what moves the state machine. The open
interval is timed on the injected Clock (pybreaker reads the wall clock), so tests need not
sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import attrs
import pybreaker

from rds_csi.adapters.clock import SystemClock
from rds_csi.application.ports import Clock, Metrics, StorageBackend
from rds_csi.domain import BackendUnavailable, CapacityReport, Size, Volume, VolumeId


__all__ = ["BreakerSettings", "BreakingBackend"]

T = TypeVar("T")

CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"
_STATES: Final = {
    pybreaker.STATE_CLOSED: CLOSED,
    pybreaker.STATE_OPEN: OPEN,
    pybreaker.STATE_HALF_OPEN: HALF_OPEN,
}


@attrs.frozen
class BreakerSettings:
    """
    Attributes:
        failures: Consecutive transport failures that open the circuit.
        reset_timeout: Seconds the circuit stays open before one call may probe the RDS.
    """

    failures: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    reset_timeout: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _not_transport(exc: BaseException) -> bool:
    """pybreaker's exclusion: only an unreachable RDS is the breaker's business."""
    return not isinstance(exc, BackendUnavailable)


class _Raised:
    """An outcome to replay through the breaker: raise what the real call raised."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __call__(self) -> None:
        raise self.exc


class BreakingBackend(StorageBackend):
    """
    ``inner`` behind a circuit breaker; the same contract, plus failing fast while open.

    Attributes:
        state: ``closed``, ``open`` or ``half_open`` (also reported via ``Metrics``).
    """

    def __init__(
        self,
        inner: StorageBackend,
        settings: BreakerSettings | None = None,
        *,
        metrics: Metrics | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._inner = inner
        self._settings = settings or BreakerSettings()
        self._metrics = metrics
        self._clock = clock or SystemClock()
        self._guard = threading.Lock()
        self._opened_wall = 0.0
        self._opened_mono = 0.0
        self._last_error = ""
        self._probing = False
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=self._settings.failures,
            # The open interval is judged here on our clock; pybreaker's own wall-clock check
            # must never keep a probe out that we already let through.
            reset_timeout=0,
            exclude=[_not_transport],
            listeners=[_Listener(self)],
            name="rds",
        )
        if metrics is not None:
            metrics.circuit_state(CLOSED)

    @property
    def state(self) -> str:
        return _STATES[self._breaker.current_state]

    def describe_open(self) -> str:
        """Why calls are refused now, or ``""`` when the circuit is closed."""
        with self._guard:
            return self._open_message() if self.state != CLOSED else ""

    def _open_message(self) -> str:
        retry = self._opened_wall + self._settings.reset_timeout
        return (
            f"the RDS has been unreachable since {_utc(self._opened_wall)} "
            f"({self._last_error}); the circuit breaker lets the next attempt through at "
            f"{_utc(retry)}"
        )

    def _opened(self) -> None:
        self._opened_wall = self._clock.time()
        self._opened_mono = self._clock.monotonic()

    def _admit(self) -> bool:
        """Whether the call may go to the RDS; True means it is the half-open probe."""
        with self._guard:
            state = self.state
            if state == CLOSED:
                return False
            waited = self._clock.monotonic() - self._opened_mono
            if state == OPEN and waited >= self._settings.reset_timeout and not self._probing:
                self._breaker.half_open()
                self._probing = True
                return True
            if state == HALF_OPEN and not self._probing:
                self._probing = True
                return True
            raise BackendUnavailable(self._open_message())

    def _guarded(self, call: Callable[[], T]) -> T:
        probe = self._admit()
        try:
            try:
                result = call()
            except BaseException as exc:
                if isinstance(exc, BackendUnavailable):
                    self._last_error = str(exc)
                self._record(_Raised(exc))
                raise
            self._record(lambda: None)
            return result
        finally:
            if probe:
                with self._guard:
                    self._probing = False

    def _record(self, outcome: Callable[[], None]) -> None:
        """Replay the outcome through pybreaker so it counts it and changes state."""
        try:
            self._breaker.call(outcome)
        except pybreaker.CircuitBreakerError:
            pass  # it tripped (or was open already); the caller sees the real error
        except BaseException:  # noqa: BLE001, S110 - the replayed error; the caller re-raises it
            pass

    # --- StorageBackend -------------------------------------------------------------------

    def create_volume(self, volume: Volume) -> Volume:
        return self._guarded(lambda: self._inner.create_volume(volume))

    def delete_volume(self, volume_id: VolumeId) -> None:
        self._guarded(lambda: self._inner.delete_volume(volume_id))

    def get_volume(self, volume_id: VolumeId) -> Volume:
        return self._guarded(lambda: self._inner.get_volume(volume_id))

    def list_volumes(self) -> Sequence[Volume]:
        return self._guarded(self._inner.list_volumes)

    def resize_volume(self, volume_id: VolumeId, size: Size) -> Volume:
        return self._guarded(lambda: self._inner.resize_volume(volume_id, size))

    def capacity(self) -> CapacityReport:
        return self._guarded(self._inner.capacity)

    def check_health(self) -> None:
        self._guarded(self._inner.check_health)

    def close(self) -> None:
        """Close the wrapped backend, if it has anything to close."""
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: BreakingBackend) -> None:
        self._owner = owner

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,  # noqa: ARG002 - pybreaker's signature
        old_state: pybreaker.CircuitBreakerState | None,  # noqa: ARG002
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            self._owner._opened()  # noqa: SLF001 - the listener is the owner's own hook
        if self._owner._metrics is not None:  # noqa: SLF001
            self._owner._metrics.circuit_state(_STATES[new_state.name])  # noqa: SLF001
