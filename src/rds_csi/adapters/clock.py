"""
The system clock behind the Clock port, and tenacity stops that read time from a Clock.

tenacity's own ``stop_after_delay`` reads ``time.monotonic``; a deadline read from the port
instead lets a test's fake clock drive a wait to its end without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import tenacity

from rds_csi.application.ports import Clock


__all__ = ["SystemClock", "deadline"]


class SystemClock(Clock):
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def deadline(clock: Clock, seconds: float) -> Callable[[tenacity.RetryCallState], bool]:
    """A tenacity ``stop``: true once ``seconds`` have passed on ``clock`` since this call."""
    end = clock.monotonic() + seconds
    return lambda _state: clock.monotonic() >= end
