"""The host side's tools: what the harness needs from Debian, installed when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


# qemu to boot the guest; everything else is used *inside* the guest, which runs the host's own
# root filesystem (shared read-only over 9p), so the host must carry the guest's userspace too:
# nvme-cli (initiator), kmod (depmod for the initramfs, modprobe in the guest), busybox-static
# (the initramfs's only userspace), e2fsprogs/xfsprogs/util-linux (mkfs, mount, losetup).
PACKAGES = (
    "qemu-system-x86",
    "nvme-cli",
    "kmod",
    "busybox-static",
    "e2fsprogs",
    "xfsprogs",
    "util-linux",
)
QEMU = "qemu-system-x86_64"
BUSYBOX = Path("/bin/busybox")

_APT_TIMEOUT = 600


class HostToolsUnavailable(Exception):
    """The host lacks a tool the guest needs and it could not be installed."""


@dataclass(frozen=True)
class HostTools:
    qemu: Path
    busybox: Path
    depmod: Path
    installed_now: tuple[str, ...]


def missing_packages(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The packages dpkg does not report as installed (one dpkg-query call, ~50 ms)."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n", *packages],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    installed = {
        line.split()[0] for line in out.splitlines() if line.endswith(" installed") and line.split()
    }
    return [p for p in packages if p not in installed]


def _apt_install(packages: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        # Wait for another apt run (a colleague's, CI's) rather than fail on its lock.
        [
            "apt-get",
            "install",
            "-y",
            "-q",
            "-o",
            "DPkg::Lock::Timeout=300",
            "--no-install-recommends",
            *packages,
        ],
        capture_output=True,
        text=True,
        timeout=_APT_TIMEOUT,
        env=env,
        check=False,
    )


def ensure_host_tools(*, install: bool = True) -> HostTools:
    """
    Make sure the host has what the VM tier needs; install what is missing (root + apt).

    Idempotent: when everything is installed this is one dpkg-query call. An install that fails
    because the package lists are stale is retried once after ``apt-get update``.

    Raises:
        HostToolsUnavailable: a tool is still missing after the install attempt (not root, no
            apt, no mirror); the message names what and why.
    """
    missing = missing_packages()
    installed_now: tuple[str, ...] = ()
    problem = ""
    if missing and not install:
        problem = " (installing was not allowed)"
    elif missing and (os.geteuid() != 0 or not shutil.which("apt-get")):
        problem = " (not root, or no apt-get: nothing was installed)"
    elif missing:
        result = _apt_install(missing)
        if result.returncode != 0:
            subprocess.run(
                ["apt-get", "update", "-q"],
                capture_output=True,
                timeout=_APT_TIMEOUT,
                check=False,
            )
            result = _apt_install(missing)
        if result.returncode != 0:
            problem = f": apt-get install failed: {result.stderr.strip()[-2000:]}"
        else:
            installed_now = tuple(missing)
    still = missing_packages() if missing else []
    if still:
        raise HostToolsUnavailable(f"host packages missing: {' '.join(still)}{problem}")
    qemu = shutil.which(QEMU)
    depmod = shutil.which("depmod") or (
        "/usr/sbin/depmod" if Path("/usr/sbin/depmod").exists() else None
    )
    if qemu is None or depmod is None or not BUSYBOX.exists():
        raise HostToolsUnavailable(
            f"packages installed but tools not found: qemu={qemu} depmod={depmod} "
            f"busybox={BUSYBOX.exists()}"
        )
    return HostTools(Path(qemu), BUSYBOX, Path(depmod), installed_now)
