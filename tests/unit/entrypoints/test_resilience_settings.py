"""The breaker, health and admission knobs reach what they configure, from one place."""

from __future__ import annotations

import calendar
import re
import time

import pytest

from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.domain import BackendUnavailable
from rds_csi.entrypoints.config import settings_from
from rds_csi.entrypoints.container import Container
from rds_csi.entrypoints.settings import Mode, Settings


def _container(**options: object) -> tuple[Container, InMemoryRds]:
    settings = settings_from({"node_id": "n", "backend": "fake", "initiator": "fake", **options})
    container = Container(settings=settings, mode=Mode.CONTROLLER)
    rds = InMemoryRds()
    container.raw_backend.override(rds)  # the breaker stays in front of it
    return container, rds


def _utc(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def test_the_defaults() -> None:
    s = Settings()
    assert (s.controller.breaker_failures, s.controller.breaker_reset_timeout) == (5, 30.0)
    assert (s.controller.health_interval, s.identity_workers) == (10.0, 4)


def test_breaker_failures_and_reset_timeout_shape_the_circuit() -> None:
    container, rds = _container(breaker_failures=2, breaker_reset_timeout=600)
    backend = container.backend()
    rds.faults.fail_next(10)
    for _ in range(2):
        with pytest.raises(BackendUnavailable, match="injected"):
            backend.list_volumes()
    with pytest.raises(BackendUnavailable, match="circuit breaker") as refused:
        backend.list_volumes()
    assert rds.calls.count("list_volumes") == 2  # the third never reached the RDS
    since, until = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", str(refused.value))
    assert _utc(until) - _utc(since) == pytest.approx(600, abs=1)


def test_health_interval_paces_the_background_checks() -> None:
    container, rds = _container(health_interval=0.05)
    monitor = container.health_monitor()
    monitor.start()
    try:
        deadline = time.monotonic() + 10
        while rds.calls.count("check_health") < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        monitor.stop()
    assert rds.calls.count("check_health") >= 3  # the default (10 s) would have made one


def test_identity_workers_reach_the_server() -> None:
    container, _rds = _container(identity_workers=7)
    assert container.grpc_server.kwargs["identity_workers"]() == 7
