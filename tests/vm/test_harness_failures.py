"""
The harness never turns a broken guest into a pass: a failing command, a hang and a kernel panic
each come back as a failed run with the console attached. Real boots (a few seconds each).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vm.harness import GuestConfig, GuestImage, run_in_guest
from tests.vm.harness.guest import REPO


pytestmark = pytest.mark.e2e_nvme

QUICK = GuestConfig(modules=(), timeout=120)


def test_a_failing_command_reports_its_status_and_output(
    guest_image: GuestImage, tmp_path: Path
) -> None:
    run = run_in_guest(
        guest_image,
        ["/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; pwd; exit 3"],
        run_dir=tmp_path / "vm",
        cwd=REPO,
        config=QUICK,
    )
    assert (run.exit_status, run.ok, run.timed_out) == (3, False, False)
    assert run.output.splitlines() == ["to-stdout", "to-stderr", str(REPO)]
    assert "the command exited 3" in run.failure_report()
    assert list(run.marks) == ["init", "ready", "job-exit"]


def test_a_guest_that_hangs_is_stopped_at_its_bound(
    guest_image: GuestImage, tmp_path: Path
) -> None:
    run = run_in_guest(
        guest_image,
        ["/bin/sh", "-c", "echo about-to-hang; sleep 600"],
        run_dir=tmp_path / "vm",
        cwd=REPO,
        config=GuestConfig(modules=(), timeout=25),
    )
    assert (run.exit_status, run.ok, run.timed_out) == (None, False, True)
    report = run.failure_report()
    assert "did not finish within its time bound" in report
    assert "about-to-hang" in report  # the console tail is attached


def test_a_kernel_panic_is_a_failure_with_its_console(
    guest_image: GuestImage, tmp_path: Path
) -> None:
    run = run_in_guest(
        guest_image,
        ["/bin/sh", "-c", "echo c > /proc/sysrq-trigger; sleep 60"],
        run_dir=tmp_path / "vm",
        cwd=REPO,
        config=QUICK,
    )
    assert (run.exit_status, run.ok, run.timed_out) == (None, False, False)
    assert "Kernel panic" in run.console
    assert "stopped without reporting an exit status" in run.failure_report()
    assert "Kernel panic" in run.failure_report()
