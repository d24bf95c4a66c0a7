"""The circuit breaker around the backend: opens on transport failures only, fails fast, probes."""

from __future__ import annotations

import re
import threading

import pytest
from prometheus_client import CollectorRegistry

from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.adapters.metrics import PrometheusMetrics
from rds_csi.adapters.resilience import BreakerSettings, BreakingBackend
from rds_csi.application.ports import StorageBackend
from rds_csi.domain import (
    BackendUnavailable,
    CapacityExhausted,
    CapacityReport,
    DiskPath,
    Nqn,
    Size,
    Volume,
    VolumeId,
    VolumeNotFound,
)
from rds_csi.domain.size import GIB
from tests.doubles.metrics import RecordingMetrics
from tests.doubles.nvme_cli import StepClock


# 2026-01-01T00:00:00Z: the fake clock's wall time, so the message's timestamps are known.
EPOCH = 1767225600.0


def _volume(name: str = "pvc-a") -> Volume:
    vid = VolumeId.from_name(name)
    return Volume(vid, Size(GIB), DiskPath("/storage-pool/t", vid), Nqn.for_volume(vid))


@pytest.fixture
def clock() -> StepClock:
    return StepClock(now=EPOCH)


@pytest.fixture
def rds() -> InMemoryRds:
    return InMemoryRds()


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


@pytest.fixture
def breaker(rds: InMemoryRds, clock: StepClock, metrics: RecordingMetrics) -> BreakingBackend:
    settings = BreakerSettings(failures=3, reset_timeout=30.0)
    return BreakingBackend(rds, settings, metrics=metrics, clock=clock)


def _fail(backend: StorageBackend, times: int) -> None:
    for _ in range(times):
        with pytest.raises(BackendUnavailable, match="injected"):
            backend.capacity()


def test_it_opens_after_n_consecutive_transport_failures_and_then_fails_fast(
    breaker: BreakingBackend, rds: InMemoryRds
) -> None:
    rds.faults.fail_next(100)
    _fail(breaker, 3)
    assert breaker.state == "open"
    calls = len(rds.calls)
    with pytest.raises(BackendUnavailable) as caught:
        breaker.create_volume(_volume())
    assert len(rds.calls) == calls  # never reached the RDS
    message = str(caught.value)
    assert "since 2026-01-01T00:00:00Z" in message
    assert "at 2026-01-01T00:00:30Z" in message
    assert "injected: RDS unreachable" in message


def test_a_success_in_between_resets_the_count(breaker: BreakingBackend, rds: InMemoryRds) -> None:
    rds.faults.fail_next(2)
    _fail(breaker, 2)
    breaker.capacity()
    rds.faults.fail_next(2)
    _fail(breaker, 2)
    assert breaker.state == "closed"


def test_domain_answers_prove_the_rds_is_there(breaker: BreakingBackend, rds: InMemoryRds) -> None:
    rds.faults.fail_next(10, lambda: CapacityExhausted("full"))
    for _ in range(10):
        with pytest.raises(CapacityExhausted):
            breaker.create_volume(_volume())
    for _ in range(5):
        with pytest.raises(VolumeNotFound):
            breaker.get_volume(_volume("pvc-nowhere").volume_id)
    assert breaker.state == "closed"


def test_after_the_reset_timeout_one_probe_goes_through_and_closes_it(
    breaker: BreakingBackend, rds: InMemoryRds, clock: StepClock, metrics: RecordingMetrics
) -> None:
    rds.faults.fail_next(3)
    _fail(breaker, 3)
    clock.now += 29.0
    with pytest.raises(BackendUnavailable, match="circuit breaker"):
        breaker.capacity()
    clock.now += 1.0
    assert isinstance(breaker.capacity(), CapacityReport)
    assert breaker.state == "closed"
    assert breaker.describe_open() == ""
    assert metrics.circuit == ["closed", "open", "half_open", "closed"]


def test_a_failed_probe_opens_it_again_from_then(
    breaker: BreakingBackend, rds: InMemoryRds, clock: StepClock
) -> None:
    rds.faults.fail_next(4)
    _fail(breaker, 3)
    clock.now += 45.0
    _fail(breaker, 1)  # the probe
    assert breaker.state == "open"
    with pytest.raises(BackendUnavailable) as caught:
        breaker.capacity()
    assert "since 2026-01-01T00:00:45Z" in str(caught.value)
    assert "at 2026-01-01T00:01:15Z" in str(caught.value)


def test_while_the_probe_runs_other_calls_still_fail_fast(
    rds: InMemoryRds, clock: StepClock
) -> None:
    armed = threading.Event()
    entered = threading.Event()
    release = threading.Event()

    class Slow(InMemoryRds):
        def capacity(self) -> CapacityReport:
            # Only the probe hangs: the call that opens the circuit must fail at once.
            if armed.is_set():
                entered.set()
                release.wait(10)
            return super().capacity()

    slow = Slow()
    breaker = BreakingBackend(slow, BreakerSettings(failures=1, reset_timeout=5), clock=clock)
    slow.faults.fail_next(1)
    _fail(breaker, 1)
    clock.now += 5
    armed.set()
    probe = threading.Thread(target=breaker.capacity)
    probe.start()
    try:
        assert entered.wait(10)
        with pytest.raises(BackendUnavailable, match="circuit breaker"):
            breaker.list_volumes()
    finally:
        release.set()
        probe.join()
    assert breaker.state == "closed"


def test_calls_through_a_closed_breaker_run_concurrently(rds: InMemoryRds) -> None:
    # pybreaker's own call() holds a lock for the whole call; RDS commands must not queue.
    together = threading.Barrier(4, timeout=10)

    class Meeting(InMemoryRds):
        def capacity(self) -> CapacityReport:
            together.wait()
            return super().capacity()

    breaker = BreakingBackend(Meeting())
    errors: list[BaseException] = []

    def call() -> None:
        try:
            breaker.capacity()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_state_is_a_prometheus_series(rds: InMemoryRds, clock: StepClock) -> None:
    registry = CollectorRegistry()
    breaker = BreakingBackend(
        rds, BreakerSettings(failures=1), metrics=PrometheusMetrics(registry), clock=clock
    )

    def value(state: str) -> float | None:
        return registry.get_sample_value("rds_csi_backend_circuit_state", {"state": state})

    assert (value("closed"), value("open")) == (1, 0)
    rds.faults.fail_next(1)
    _fail(breaker, 1)
    assert (value("closed"), value("open"), value("half_open")) == (0, 1, 0)


def test_the_message_names_no_more_than_the_last_error(
    breaker: BreakingBackend, rds: InMemoryRds
) -> None:
    rds.faults.fail_next(3)
    _fail(breaker, 3)
    assert re.fullmatch(
        r"the RDS has been unreachable since \S+Z \(injected: RDS unreachable\); "
        r"the circuit breaker lets the next attempt through at \S+Z",
        breaker.describe_open(),
    )
