"""
One retry policy for every control plane (SSH and REST): exponential backoff with tenacity,
only for failures the caller says are safe to retry, and never an attempt that could not
start before the call's deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import attrs
import tenacity

from rds_csi.domain.deadline import Deadline


__all__ = ["RetryPolicy"]

log = logging.getLogger(__name__)


class _Late(tenacity.stop.stop_base):
    """A tenacity stop: true when the next attempt could not start before the deadline."""

    def __init__(self, deadline: Deadline, clock: Callable[[], float]) -> None:
        self._deadline = deadline
        self._clock = clock

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self._deadline.remaining(self._clock()) <= retry_state.upcoming_sleep


@attrs.frozen
class RetryPolicy:
    """Exponential backoff: ``first_wait`` doubling up to ``max_wait``, ``attempts`` tries."""

    attempts: int = 5
    first_wait: float = 1.0
    max_wait: float = 16.0
    sleep: Callable[[float], None] = time.sleep

    def retrying(
        self,
        operation: str,
        retryable: Callable[[BaseException], bool],
        *,
        deadline: Deadline | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> tenacity.Retrying:
        """A tenacity loop for ``operation``; each retry is logged with the failure."""
        stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(self.attempts)
        if deadline is not None:
            stop = tenacity.stop_any(stop, _Late(deadline, clock))
        return tenacity.Retrying(
            stop=stop,
            wait=tenacity.wait_exponential(multiplier=self.first_wait, max=self.max_wait),
            retry=tenacity.retry_if_exception(retryable),
            sleep=self.sleep,
            reraise=True,
            before_sleep=lambda state: log.warning(
                "%s: attempt %d failed (%s); retrying",
                operation,
                state.attempt_number,
                state.outcome.exception() if state.outcome else "",
            ),
        )
