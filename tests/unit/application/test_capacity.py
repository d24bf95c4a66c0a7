"""The capacity refresher: the pool's figures reach the metrics in the background, never on a
scrape, and a refresh that cannot reach the RDS says so without losing the last figures."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.adapters.metrics import PrometheusMetrics
from rds_csi.application.capacity import CapacityRefresher
from rds_csi.domain import (
    BackendError,
    CapacityReport,
    DiskPath,
    Nqn,
    Size,
    Volume,
    VolumeId,
)
from rds_csi.domain.size import GIB, TIB


RDS = "10.0.0.5"


def _value(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name, {"rds": RDS})


def _volume(n: int, size: int = GIB) -> Volume:
    vid = VolumeId.from_name(f"capacity-{n}")
    return Volume(vid, Size(size), DiskPath("/storage-pool/metal-csi", vid), Nqn.for_volume(vid))


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def test_a_refresh_reports_size_free_used_volumes_and_up(registry: CollectorRegistry) -> None:
    rds = InMemoryRds(pool_size=Size(TIB))
    rds.create_volume(_volume(1, 2 * GIB))
    rds.create_volume(_volume(2, 3 * GIB))
    refresher = CapacityRefresher(rds, PrometheusMetrics(registry), rds=RDS, interval=60)

    assert refresher.refresh() is True

    assert _value(registry, "rds_csi_pool_size_bytes") == TIB
    assert _value(registry, "rds_csi_pool_used_bytes") == 5 * GIB
    assert _value(registry, "rds_csi_pool_free_bytes") == TIB - 5 * GIB
    assert _value(registry, "rds_csi_volumes") == 2
    assert _value(registry, "rds_csi_backend_up") == 1
    # No snapshot backend yet: no snapshot series at all, rather than a false 0.
    assert _value(registry, "rds_csi_snapshots") is None


def test_an_unreachable_rds_sets_up_to_0_and_keeps_the_last_figures(
    registry: CollectorRegistry,
) -> None:
    rds = InMemoryRds(pool_size=Size(TIB))
    rds.create_volume(_volume(1))
    refresher = CapacityRefresher(rds, PrometheusMetrics(registry), rds=RDS, interval=60)
    refresher.refresh()

    rds.faults.fail_next(1, operations={"list_volumes"})
    assert refresher.refresh() is False
    assert _value(registry, "rds_csi_backend_up") == 0
    assert _value(registry, "rds_csi_pool_size_bytes") == TIB
    assert _value(registry, "rds_csi_volumes") == 1

    rds.faults.fail_next(1, lambda: BackendError("refused"), operations={"capacity"})
    assert refresher.refresh() is False
    assert _value(registry, "rds_csi_backend_up") == 0

    assert refresher.refresh() is True
    assert _value(registry, "rds_csi_backend_up") == 1


def test_snapshots_are_counted_once_there_is_a_way_to_count_them(
    registry: CollectorRegistry,
) -> None:
    refresher = CapacityRefresher(
        InMemoryRds(), PrometheusMetrics(registry), rds=RDS, interval=60, count_snapshots=lambda: 3
    )
    refresher.refresh()
    assert _value(registry, "rds_csi_snapshots") == 3


def test_a_scrape_never_asks_the_rds(registry: CollectorRegistry) -> None:
    rds = InMemoryRds()
    CapacityRefresher(rds, PrometheusMetrics(registry), rds=RDS, interval=60).refresh()
    asked = list(rds.calls)
    for _ in range(5):
        generate_latest(registry)
    assert rds.calls == asked


class _CountingRds(InMemoryRds):
    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds = rounds
        self.done = threading.Event()
        self.seen = 0

    def capacity(self) -> CapacityReport:
        report = super().capacity()
        self.seen += 1
        if self.seen >= self.rounds:
            self.done.set()
        return report


def test_the_background_loop_refreshes_every_interval_until_stopped(
    registry: CollectorRegistry,
) -> None:
    rds = _CountingRds(rounds=3)
    refresher = CapacityRefresher(rds, PrometheusMetrics(registry), rds=RDS, interval=0.01)
    refresher.start()
    refresher.start()  # idempotent: still one loop
    try:
        assert rds.done.wait(10), "three refreshes did not happen"
    finally:
        refresher.stop()
    after_stop = rds.seen
    assert not any(t.name == "capacity-refresh" for t in threading.enumerate())
    assert rds.seen == after_stop
    assert _value(registry, "rds_csi_backend_up") == 1


def test_a_bug_in_a_refresh_does_not_end_the_loop(registry: CollectorRegistry) -> None:
    class Broken(InMemoryRds):
        def list_volumes(self) -> Sequence[Volume]:
            raise RuntimeError("a bug")

    refresher = CapacityRefresher(Broken(), PrometheusMetrics(registry), rds=RDS, interval=60)
    assert refresher.refresh() is False
    assert _value(registry, "rds_csi_backend_up") == 0


@pytest.mark.parametrize("interval", [0, -1])
def test_the_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(ValueError, match="interval"):
        CapacityRefresher(
            InMemoryRds(), PrometheusMetrics(CollectorRegistry()), rds=RDS, interval=interval
        )
