"""
The real NVMe/TCP path, inside the guest: kernel target on loopback, nvme-cli initiator.

A file-backed namespace is exported through configfs, connected with ``nvme connect``, found by
its NQN in sysfs (never by assuming ``/dev/nvme0n1``), formatted, mounted, written, read back
after a remount, unmounted and disconnected; then the device must be gone. A second test grows
the backing file and checks the connected host sees the new size.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from rds_csi.domain import Nqn, VolumeId
from rds_csi.emulator.nvmet import NvmetConfigfs
from tests.vm.guest.conftest import StageTimer


pytestmark = pytest.mark.e2e_nvme

ADDR, PORT = "127.0.0.1", 4420
MIB = 1 << 20
_NAMESPACE_NODE = re.compile(r"nvme\d+n\d+")  # not nvme0c0n1 (hidden path) nor ng0n1 (char)
_WAIT = 15.0
T = TypeVar("T")


def run(*argv: str, timeout: float = 60) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stdout}{done.stderr}"
    return done.stdout


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = _WAIT) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


def subsystem_dir(nqn: str) -> Path | None:
    for sub in Path("/sys/class/nvme-subsystem").glob("*"):
        if (sub / "subsysnqn").read_text().strip() == nqn:
            return sub
    return None


def block_device(nqn: str) -> Path | None:
    """The namespace's block device for ``nqn``, found through sysfs."""
    sub = subsystem_dir(nqn)
    if sub is None:
        return None
    for entry in sorted(sub.iterdir()):
        if _NAMESPACE_NODE.fullmatch(entry.name) and Path("/dev", entry.name).is_block_device():
            return Path("/dev", entry.name)
    return None


def sectors(device: Path) -> int:
    # Not /sys/block/<name>: the kernel links that only after the device node appears.
    return int(Path("/sys/class/block", device.name, "size").read_text())


def nqn_for(name: str) -> str:
    return str(Nqn.for_volume(VolumeId.from_name(name)))


@pytest.fixture
def exported(nvmet: NvmetConfigfs, tmp_path: Path) -> Iterator[Callable[[str, int], Path]]:
    """Export a fresh sparse file as namespace 1 of ``nqn`` on 127.0.0.1:4420."""
    connected: list[str] = []

    def export(nqn: str, size: int) -> Path:
        disk = tmp_path / f"{len(connected)}.img"
        with disk.open("wb") as f:
            f.truncate(size)
        nvmet.create_subsystem(nqn)
        nvmet.add_namespace(nqn, 1, disk)
        nvmet.export(nvmet.ensure_port(ADDR, PORT), nqn)
        connected.append(nqn)
        return disk

    yield export
    for nqn in connected:  # a failed test may leave a controller behind
        if subsystem_dir(nqn) is not None:
            subprocess.run(
                ["nvme", "disconnect", "-n", nqn], capture_output=True, timeout=60, check=False
            )


def connect(nqn: str) -> Path:
    run("nvme", "connect", "-t", "tcp", "-a", ADDR, "-s", str(PORT), "-n", nqn)
    return wait_for(lambda: block_device(nqn), f"block device for {nqn}")


def disconnect(nqn: str, device: Path) -> None:
    out = run("nvme", "disconnect", "-n", nqn)
    assert "disconnected 1 controller(s)" in out
    wait_for(
        lambda: True if not device.exists() and subsystem_dir(nqn) is None else None,
        f"{device} and the subsystem of {nqn} to go away",
    )


def test_connect_format_write_read_disconnect(
    exported: Callable[[str, int], Path], nvmet: NvmetConfigfs, stage: StageTimer, tmp_path: Path
) -> None:
    nqn = nqn_for("e2e-nvme-smoke")
    with stage("export"):
        exported(nqn, 256 * MIB)
    with stage("connect"):
        device = connect(nqn)
    sub = subsystem_dir(nqn)
    assert sub is not None
    controllers = [c for c in sub.iterdir() if re.fullmatch(r"nvme\d+", c.name)]
    assert len(controllers) == 1
    assert (controllers[0] / "transport").read_text().strip() == "tcp"
    assert (controllers[0] / "state").read_text().strip() == "live"
    assert (sub / "model").read_text().strip() == "Linux"
    assert sectors(device) * 512 == 256 * MIB

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    payload = os.urandom(8 * MIB)
    with stage("mkfs.ext4"):
        run("mkfs.ext4", "-F", "-q", str(device))
    run("mount", str(device), str(mnt))
    with stage("write 8 MiB + sync"):
        (mnt / "payload").write_bytes(payload)
        os.sync()
    run("umount", str(mnt))
    Path("/proc/sys/vm/drop_caches").write_text("3")
    run("mount", str(device), str(mnt))
    with stage("read 8 MiB"):
        back = (mnt / "payload").read_bytes()
    assert hashlib.sha256(back).digest() == hashlib.sha256(payload).digest()
    run("umount", str(mnt))

    with stage("disconnect"):
        disconnect(nqn, device)
    with stage("teardown"):
        nvmet.remove_subsystem(nqn)
    assert nqn not in nvmet.subsystems()


def test_a_grown_namespace_reaches_the_connected_host(
    exported: Callable[[str, int], Path], nvmet: NvmetConfigfs, stage: StageTimer
) -> None:
    nqn = nqn_for("e2e-nvme-grow")
    disk = exported(nqn, 64 * MIB)
    device = connect(nqn)
    assert sectors(device) * 512 == 64 * MIB
    with stage("grow 64->128 MiB until the host sees it"):
        os.truncate(disk, 128 * MIB)
        assert nvmet.notify_resized(nqn, 1) is True
        wait_for(
            lambda: True if sectors(device) * 512 == 128 * MIB else None,
            f"{device} to show 128 MiB",
        )
    disconnect(nqn, device)


def test_connecting_to_an_nqn_nobody_exports_fails_and_leaves_nothing(
    exported: Callable[[str, int], Path],
) -> None:
    exported(nqn_for("e2e-nvme-exported"), 64 * MIB)  # the port listens; this NQN is not on it
    missing = nqn_for("e2e-nvme-not-exported")
    done = subprocess.run(
        ["nvme", "connect", "-t", "tcp", "-a", ADDR, "-s", str(PORT), "-n", missing],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert subsystem_dir(missing) is None
