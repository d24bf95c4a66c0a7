"""
The e2e_nvme tier's VM harness: a qemu (TCG) guest running Debian's cloud kernel on the host's
own root filesystem, for tests that need the kernel NVMe/TCP target and initiator.

Stdlib only, so CI can call it before any virtualenv exists::

    python3 -m tests.vm.harness prepare         # tools, kernel, initramfs
    python3 -m tests.vm.harness run -- CMD ...  # boot, run CMD in the checkout, exit with it
"""

from tests.vm.harness.guest import (
    NVME_MODULES,
    GuestConfig,
    GuestImage,
    GuestRun,
    GuestUnavailable,
    guest_env,
    job_script,
    prepare,
    run_in_guest,
    run_pytest_in_guest,
)
from tests.vm.harness.host import HostToolsUnavailable, ensure_host_tools
from tests.vm.harness.report import CaseResult, JunitReport, read_junit, read_timings


__all__ = [
    "NVME_MODULES",
    "CaseResult",
    "GuestConfig",
    "GuestImage",
    "GuestRun",
    "GuestUnavailable",
    "HostToolsUnavailable",
    "JunitReport",
    "ensure_host_tools",
    "guest_env",
    "job_script",
    "prepare",
    "read_junit",
    "read_timings",
    "run_in_guest",
    "run_pytest_in_guest",
]
