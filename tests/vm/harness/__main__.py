"""
The VM harness from a shell (CI, or by hand), run from the checkout root:

    python3 -m tests.vm.harness prepare
    python3 -m tests.vm.harness run [--timeout S] [--keep DIR] -- CMD [ARG...]

``prepare`` exits 0 when the guest can boot, 2 when qemu cannot run here (the reason on stderr;
CI skips the tier), 1 on any other failure. ``run`` boots a guest, runs CMD in the checkout and
exits with CMD's status, or 1 when the guest hung, panicked or never reported one.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

from tests.vm.harness.guest import REPO, GuestConfig, GuestUnavailable, prepare, run_in_guest
from tests.vm.harness.host import HostToolsUnavailable


CANNOT_RUN = 2


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.vm.harness")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("prepare", help="install tools, fetch the kernel, build the initramfs")
    run = sub.add_parser("run", help="boot a guest and run a command in the checkout")
    run.add_argument("--timeout", type=float, default=420.0, help="bound on the whole boot (s)")
    run.add_argument("--cpus", type=int, default=2)
    run.add_argument("--memory-mb", type=int, default=1024)
    run.add_argument("--keep", type=Path, help="keep console and job files in this directory")
    run.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    # CI stops jobs with SIGTERM: exit through the finally blocks so qemu and temp dirs go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))

    started = time.monotonic()
    try:
        image = prepare()
    except HostToolsUnavailable as exc:
        _say(f"qemu cannot run here: {exc}")
        return CANNOT_RUN
    except GuestUnavailable as exc:
        _say(f"preparing the guest failed: {exc}")
        return 1
    _say(
        f"prepared in {time.monotonic() - started:.2f} s: {image.kernel.package}, "
        f"{image.initramfs.name}"
    )
    if args.action == "prepare":
        return 0

    config = GuestConfig(timeout=args.timeout, cpus=args.cpus, memory_mb=args.memory_mb)
    with tempfile.TemporaryDirectory(prefix="rdsvm-run-") as tmp:
        run_dir = args.keep or Path(tmp)
        result = run_in_guest(image, args.command, run_dir=run_dir, cwd=REPO, config=config)
        sys.stdout.write(result.output)
        _say(f"guest: {result.wall_seconds:.1f} s wall, markers {result.marks}")
        if not result.ok:
            _say(result.failure_report())
        if result.exit_status is None:
            return 1
        return result.exit_status


if __name__ == "__main__":
    sys.exit(main())
