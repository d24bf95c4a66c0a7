"""
For tests that need root: the skip with its reason, and a janitor that leaves the host clean.

The janitor owns one directory. Whatever happens in a test, its cleanup unmounts everything
mounted under that directory (topmost first) and detaches every loop device whose backing file
lives there, and nothing else: other loop devices and mounts on the host are never touched.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import attrs
import pytest

from rds_csi.adapters.loop.parse import parse_loop_devices
from rds_csi.adapters.mount.parse import parse_mountinfo


__all__ = ["CAP_SYS_RESOURCE", "Janitor", "has_capability", "require_root"]

CAP_SYS_RESOURCE = 24  # online ext4 resize (EXT4_IOC_RESIZE_FS) checks it


def has_capability(number: int) -> bool:
    """Whether this process holds capability ``number`` (linux/capability.h) right now."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> number & 1)
    return False


def require_root(*tools: str) -> None:
    """Skip (with the reason) unless we are root, loop devices exist and ``tools`` are installed."""
    if os.geteuid() != 0:
        pytest.skip("needs root (loop devices and mounts)")
    if not pathlib.Path("/dev/loop-control").exists():
        pytest.skip("needs loop devices (/dev/loop-control is missing)")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install e2fsprogs xfsprogs util-linux)")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@attrs.define
class Janitor:
    root: pathlib.Path

    def __attrs_post_init__(self) -> None:
        self.root = pathlib.Path(os.path.realpath(self.root))

    def _inside(self, path: str) -> bool:
        return path == str(self.root) or path.startswith(f"{self.root}/")

    def mounts(self) -> list[str]:
        table = parse_mountinfo(pathlib.Path("/proc/self/mountinfo").read_text())
        return [m.target for m in table if self._inside(m.target)]

    def loop_devices(self) -> list[str]:
        listed = _run("losetup", "--list", "--json", "--output", "NAME,BACK-FILE,AUTOCLEAR")
        return [d.name for d in parse_loop_devices(listed.stdout) if self._inside(d.back_file)]

    def attach(self, image: pathlib.Path) -> str:
        done = _run("losetup", "--find", "--show", "--", str(image))
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def cleanup(self) -> list[str]:
        """Undo everything under ``root``; returns what it had to clean (for reporting)."""
        cleaned: list[str] = []
        for _ in range(16):
            mounts = self.mounts()
            if not mounts:
                break
            for target in reversed(mounts):
                if _run("umount", "--", target).returncode != 0:
                    _run("umount", "--lazy", "--", target)
                cleaned.append(f"mount {target}")
        for device in self.loop_devices():
            _run("losetup", "--detach", device)
            cleaned.append(f"loop {device}")
        return cleaned
