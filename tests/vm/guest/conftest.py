"""Tests that run inside the qemu guest (kernel nvmet + nvme-tcp); elsewhere they skip."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rds_csi.emulator.nvmet import NvmetConfigfs


IN_GUEST = os.environ.get("RDS_CSI_VM_GUEST") == "1"


@pytest.fixture(autouse=True)
def _only_in_the_guest() -> None:
    if not IN_GUEST:
        pytest.skip(
            "runs inside the qemu guest; tests/vm/test_guest_nvme.py boots it (-m e2e_nvme)"
        )


@pytest.fixture
def nvmet() -> Iterator[NvmetConfigfs]:
    target = NvmetConfigfs()
    if not target.available():
        pytest.fail("inside the guest but nvmet's configfs is missing: the modules did not load")
    yield target
    target.clear()  # the guest is ours alone: leave the target empty for the next test


class StageTimer:
    """Wall-clock seconds per stage, written to the shared job dir for the host to report."""

    def __init__(self, test: str) -> None:
        self.test = test
        self.stages: dict[str, float] = {}

    def __call__(self, stage: str) -> _Stage:
        return _Stage(self, stage)


class _Stage:
    def __init__(self, timer: StageTimer, name: str) -> None:
        self.timer, self.name = timer, name

    def __enter__(self) -> None:
        self.started = time.monotonic()

    def __exit__(self, *_: object) -> None:
        self.timer.stages[self.name] = round(time.monotonic() - self.started, 3)


@pytest.fixture
def stage(request: pytest.FixtureRequest) -> Iterator[StageTimer]:
    timer = StageTimer(request.node.name)
    yield timer
    job = os.environ.get("RDS_CSI_VM_JOB_DIR")
    if job and timer.stages:
        with (Path(job) / "timings.jsonl").open("a") as f:
            f.write(json.dumps({"test": timer.test, "stages": timer.stages}) + "\n")
