"""
The driver through a bad day: the RDS killed, the driver killed (also while it stages volumes
on loop devices, as root), the RDS frozen, a flaky network, a confused RDS, each while a batch
of creates and deletes is in flight.

After each: exactly one disk per kept name and none for a deleted one, no orphan image, no loop
device or mount left behind, every Probe answered within 1 s, every failed call answered within
its deadline. The figures are printed at the end of the run (``conftest.py``).
"""

from __future__ import annotations

import collections
import pathlib
import signal
import time
from collections.abc import Callable, Iterator

import attrs
import grpc
import pytest

from rds_csi.domain.identity import VolumeId
from tests.fault.conftest import FIGURES
from tests.fault.harness import (
    DEADLINE,
    Batch,
    DriverProcess,
    EmulatorProcess,
    Figures,
    Prober,
    mid_batch,
)
from tests.support.root import Janitor, require_root


NAMES = 48
NODE_NAMES = 16
PROBE_LIMIT = 1.0
# A failed call's answer may trail its deadline by the time the client takes to notice.
DEADLINE_SLACK = 0.5


@attrs.define
class System:
    workdir: pathlib.Path
    emulator: EmulatorProcess
    driver: DriverProcess
    figures: Figures
    janitor: Janitor
    node: bool = False
    prober: Prober | None = None
    injected: int = 0  # faults the suite itself caused (kills, stops)
    landed_at: int = -1  # how many batch steps were done when the fault struck


@pytest.fixture
def system(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[System]:
    phase = request.node.callspec.id
    node = phase.endswith("-node")
    if node:
        require_root("losetup", "mkfs.ext4")
    extra = {"drop10": ("--drop-rate", "0.1"), "garble5": ("--garble-rate", "0.05")}
    emulator = EmulatorProcess(tmp_path, *extra.get(phase, ()))
    emulator.start()
    driver = DriverProcess(tmp_path, emulator, node=node)
    janitor = Janitor(tmp_path)
    try:
        driver.start()
        yield System(tmp_path, emulator, driver, Figures(phase), janitor, node)
    finally:
        driver.stop()
        emulator.stop()
        janitor.cleanup()  # only what a failed phase left under its own directory


def kill_the_rds(system: System) -> None:
    system.emulator.kill9()
    system.injected += 1
    time.sleep(5.0)  # calls see the RDS gone; the breaker opens
    system.emulator.start()


def kill_the_driver(system: System) -> None:
    assert system.prober is not None
    system.prober.paused.set()  # nothing answers Probe while the driver is dead
    system.driver.kill9()
    system.injected += 1
    system.driver.start()
    system.prober.paused.clear()


def freeze_the_rds(system: System) -> None:
    system.emulator.signal(signal.SIGSTOP)
    system.injected += 1
    time.sleep(DEADLINE + 2)  # longer than a call's deadline: the calls in flight fail
    system.emulator.signal(signal.SIGCONT)


def nothing_more(_system: System) -> None:
    """The emulator was started with its fault rate: the whole batch runs through it."""


PHASES: dict[str, Callable[[System], None]] = {
    "kill9-emulator": kill_the_rds,
    "kill9-driver": kill_the_driver,
    "kill9-driver-node": kill_the_driver,
    "sigstop-emulator": freeze_the_rds,
    "drop10": nothing_more,
    "garble5": nothing_more,
}


def _check(system: System, batch: Batch) -> None:
    figures = system.figures
    disks = system.emulator.disks()
    slots = collections.Counter(str(d["slot"]) for d in disks)
    kept = {VolumeId.from_name(n).value for n in batch.kept}
    deleted = {VolumeId.from_name(n).value for n in batch.deleted}
    figures.duplicates = sum(count - 1 for count in slots.values())
    figures.missing = len(kept - slots.keys())
    files = {str(d["file_path"]) for d in disks}
    images = system.emulator.images()
    figures.orphans = len(images - files)
    assert figures.duplicates == 0, slots
    assert figures.missing == 0, kept - slots.keys()
    assert not slots.keys() & deleted, "a deleted volume's disk is still there"
    assert slots.keys() == kept, "a disk nobody asked for"
    assert figures.orphans == 0, images - files
    assert files <= images, "a disk without its image"
    leftovers = system.janitor.loop_devices() + system.janitor.mounts()
    figures.leftovers = len(leftovers)
    assert not leftovers, leftovers


@pytest.mark.parametrize("fault", PHASES.values(), ids=PHASES.keys())
def test_the_driver_survives(system: System, fault: Callable[[System], None]) -> None:
    count = NODE_NAMES if system.node else NAMES
    names = [f"fault-{system.figures.phase}-{i}" for i in range(count)]
    batch = Batch(system.driver, names, node=system.node)

    def strike() -> None:
        system.landed_at = batch.done
        fault(system)

    with Prober(system.driver) as prober:
        system.prober = prober
        with mid_batch(batch, strike):
            batch.run()
        time.sleep(1.5)  # Probe keeps being asked after the batch: the driver settles
    system.driver.stop()
    system.emulator.stop()

    figures = system.figures
    failed = [c for c in batch.calls if c.code is not grpc.StatusCode.OK]
    figures.operations = len(batch.calls)
    figures.failed = len(failed)
    figures.faults = system.injected + system.emulator.faults_injected()
    figures.probes = len(prober.latencies)
    figures.probe_errors = len(prober.errors)
    figures.slowest_probe = max(prober.latencies, default=0.0)
    figures.slowest_failed = max((c.seconds for c in failed), default=0.0)
    FIGURES.append(figures)

    assert 0 <= system.landed_at < batch.steps, "the fault struck after the batch"
    assert figures.faults > 0
    _check(system, batch)
    assert not prober.errors, prober.errors[:5]
    assert figures.slowest_probe < PROBE_LIMIT
    late = [c for c in failed if c.seconds > c.deadline + DEADLINE_SLACK]
    assert not late, late
