"""The health monitor: Probe's answer, kept fresh in the background, never waited on for long."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from rds_csi.adapters.clock import SystemClock
from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.application.health import CheckHealth, HealthMonitor
from tests.doubles.nvme_cli import StepClock


class HangingRds(InMemoryRds):
    """check_health blocks until the test lets it go: an RDS that stopped answering."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = threading.Event()
        self.entered = threading.Event()
        self.release = threading.Event()

    def check_health(self) -> None:
        super().check_health()
        if self.hang.is_set():
            self.entered.set()
            self.release.wait(30)


@pytest.fixture
def rds() -> Iterator[HangingRds]:
    rds = HangingRds()
    yield rds
    rds.release.set()


def test_an_answer_comes_back_while_the_rds_hangs(rds: HangingRds) -> None:
    rds.hang.set()
    monitor = HealthMonitor(CheckHealth(rds), answer_within=0.2, clock=SystemClock())
    health = monitor()
    assert rds.entered.is_set()
    assert not rds.release.is_set()  # answered while the check is still stuck
    assert not health.ready
    assert "has not answered a health check yet" in health.reason


def test_a_fresh_answer_is_reused_not_asked_again(rds: HangingRds) -> None:
    monitor = HealthMonitor(CheckHealth(rds), interval=60, answer_within=5, clock=SystemClock())
    assert [monitor().ready for _ in range(20)] == [True] * 20
    assert rds.calls.count("check_health") == 1


def test_a_stale_answer_is_refreshed_on_demand_at_most_once_per_gap(rds: HangingRds) -> None:
    clock = StepClock()
    monitor = HealthMonitor(CheckHealth(rds), interval=1, min_gap=5, answer_within=5, clock=clock)
    assert monitor().ready
    rds.faults.fail_next(1, operations={"check_health"})
    clock.now += 2  # stale, but the last check started within the gap: no new one
    assert monitor().ready
    assert rds.calls.count("check_health") == 1
    clock.now += 3
    down = monitor()
    assert not down.ready
    assert "injected" in down.reason
    assert rds.calls.count("check_health") == 2


def test_a_check_that_hangs_turns_a_good_answer_into_not_ready(rds: HangingRds) -> None:
    clock = StepClock()
    monitor = HealthMonitor(
        CheckHealth(rds), interval=10, answer_within=0.1, hung_after=5, clock=clock
    )
    assert monitor().ready
    rds.hang.set()
    clock.now += 10
    assert monitor().ready  # the last answer is still the best we know...
    clock.now += 5
    health = monitor()  # ...until the running check has hung too long
    assert not health.ready
    assert "has not answered a health check for 5 s" in health.reason


def test_the_background_loop_keeps_it_fresh_and_stops(rds: HangingRds) -> None:
    monitor = HealthMonitor(CheckHealth(rds), interval=0.01, clock=SystemClock())
    monitor.start()
    try:
        for _ in range(500):
            if rds.calls.count("check_health") >= 3:
                break
            threading.Event().wait(0.01)
    finally:
        monitor.stop()
    assert rds.calls.count("check_health") >= 3


def test_a_node_has_nothing_to_ask() -> None:
    monitor = HealthMonitor(CheckHealth(None), clock=SystemClock())
    monitor.start()
    assert monitor().ready
    monitor.stop()


def test_a_probe_storm_does_not_wait_again_for_the_same_stuck_check(rds: HangingRds) -> None:
    clock = StepClock()
    monitor = HealthMonitor(
        CheckHealth(rds), interval=10, answer_within=30, hung_after=60, clock=clock
    )
    assert monitor().ready
    rds.hang.set()
    clock.now += 10
    first = threading.Thread(target=monitor)  # starts the check, which hangs; waits for it
    first.start()
    assert rds.entered.wait(5)
    clock.now += 30  # the check has used up all the time a caller may wait for it
    answered = threading.Event()

    def probe() -> None:
        monitor()
        answered.set()

    threading.Thread(target=probe, daemon=True).start()
    assert answered.wait(5)  # at once, from the last answer, not after another 30 s
    rds.release.set()
    first.join(5)
