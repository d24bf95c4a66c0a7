"""The one retry policy both control planes use: backoff, what it retries, and the deadline."""

from __future__ import annotations

import pytest

from rds_csi.adapters.retry import RetryPolicy
from rds_csi.domain.deadline import Deadline


class Dropped(Exception):
    """A failure the caller calls retryable."""


class Clock:
    """Time that moves only when the policy sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _run(
    policy: RetryPolicy, clock: Clock, deadline: Deadline | None, fail: type[Exception]
) -> int:
    attempts = 0

    def once() -> None:
        nonlocal attempts
        attempts += 1
        raise fail("no answer")

    def loop() -> None:
        retrying = policy.retrying(
            "create",
            lambda exc: isinstance(exc, Dropped),
            deadline=deadline,
            clock=lambda: clock.now,
        )
        for attempt in retrying:
            with attempt:
                once()

    with pytest.raises(fail):
        loop()
    return attempts


def test_without_a_deadline_it_backs_off_for_every_attempt() -> None:
    clock = Clock()
    policy = RetryPolicy(attempts=5, first_wait=1.0, max_wait=16.0, sleep=clock.sleep)
    assert _run(policy, clock, None, Dropped) == 5
    assert clock.slept == [1.0, 2.0, 4.0, 8.0]


def test_no_retry_starts_that_could_not_begin_before_the_deadline() -> None:
    clock = Clock()
    policy = RetryPolicy(attempts=5, first_wait=1.0, max_wait=16.0, sleep=clock.sleep)
    # 1 s and 2 s waits fit in 5 s; the 4 s one would start after it: the caller hears at ~3 s
    assert _run(policy, clock, Deadline.after(5.0, 0.0), Dropped) == 3
    assert clock.slept == [1.0, 2.0]


def test_a_failure_it_is_not_told_to_retry_is_raised_at_once() -> None:
    clock = Clock()
    policy = RetryPolicy(sleep=clock.sleep)
    assert _run(policy, clock, None, ValueError) == 1
    assert clock.slept == []
