"""
The e2e_nvme tier: boot the qemu guest and run the in-guest tests there.

In the guest run the NVMe/TCP tests (tests/vm/guest: the kernel target and initiator alone,
then the driver over them) and the nvmet configfs contract suite, whose kernel variant exists
only there. A pass needs the guest to power off by itself after
pytest exited 0, with a JUnit report in which every expected test ran and none skipped: a hang,
a panic, a missing report or a skip inside the guest is a failure, with the console attached.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.vm.harness import GuestConfig, GuestImage, read_timings, run_pytest_in_guest


pytestmark = pytest.mark.e2e_nvme

GUEST_TESTS = ("tests/vm/guest", "tests/contract/test_nvmet_configfs.py")
# Bounds the whole boot; the typical run takes about 100 s on 2 TCG vCPUs.
GUEST_TIMEOUT = float(os.environ.get("RDS_CSI_VM_TIMEOUT", "420"))


@pytest.mark.timeout(GUEST_TIMEOUT + 120)
def test_the_nvme_tcp_tier_passes_inside_the_guest(
    guest_image: GuestImage, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    run, report = run_pytest_in_guest(
        guest_image,
        GUEST_TESTS,
        run_dir=tmp_path / "vm",
        config=GuestConfig(timeout=GUEST_TIMEOUT),
    )
    record_property("guest_wall_seconds", round(run.wall_seconds, 1))
    record_property("guest_marks", run.marks)
    record_property("guest_stage_timings", read_timings(run.job_dir / "timings.jsonl"))
    print(f"guest: {run.wall_seconds:.1f} s wall, markers {run.marks}")  # noqa: T201 - the -s figures
    for row in read_timings(run.job_dir / "timings.jsonl"):
        stages = row.get("stages")
        for stage, seconds in stages.items() if isinstance(stages, dict) else ():
            print(f"guest timing: {row.get('test')}: {stage}: {seconds} s")  # noqa: T201
    bad = [] if report is None else [c for c in report.cases if c.outcome != "passed"]
    headline = f"guest pytest: {report.summary() if report else 'no JUnit report'}\n" + "\n".join(
        f"{c.outcome}: {c.name}\n{c.message[-3000:]}" for c in bad
    )
    driver_log = run.job_dir / "driver.log"
    detail = (
        f"{headline}\n---- guest pytest output (tail) ----\n{run.output[-8000:]}\n"
        f"---- the driver's log in the guest: {driver_log} ----\n"
        f"---- guest ----\n{run.failure_report()}"
    )
    assert run.ok, detail
    assert report is not None, detail
    assert not bad, detail  # a skip inside the guest means something did not really run
    names = [c.name for c in report.cases]
    # Every part must have run for real: the kernel target and initiator alone, the driver
    # over them (emulator with the nvmet data plane, nvme-cli initiator), the kernel contract
    # variants of the configfs library.
    assert any("test_nvme_tcp" in n for n in names), names
    assert any("test_csi_nvme" in n for n in names), names
    assert any("[kernel" in n for n in names), names
