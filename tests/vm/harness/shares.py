"""
Which host directories the guest needs besides the root filesystem, and how to share them.

The guest sees the host's root filesystem alone (a non-recursive bind of ``/``), and stage 1
mounts fresh filesystems over ``/tmp``, ``/run``, ``/dev``, ``/proc`` and ``/sys``. A checkout
or an interpreter anywhere else (a CI clone under ``/tmp``, a venv on another mount) would be
missing: each such directory becomes one more read-only virtio-fs share, mounted in the guest at
the same path under a tmpfs overlay (writable, every write in guest RAM), as the root is.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final


__all__ = [
    "GUEST_HIDDEN",
    "interpreter_paths",
    "mount_point_of",
    "parse_mount_points",
    "plan_shares",
]

# Stage 1 mounts over these in the guest: whatever the host has there is not what the guest sees.
GUEST_HIDDEN: Final = ("/tmp", "/run", "/dev", "/proc", "/sys")
_OCTAL: Final = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mount_points(mountinfo: str) -> list[str]:
    """The mount points in ``/proc/self/mountinfo`` text (its fifth field), in table order."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:  # mount ID, parent, device, root, mount point, ...
            points.append(_unescape(fields[4]))
    return points


def _under(path: str, top: str) -> bool:
    return top in {"/", path} or path.startswith(top + "/")


def mount_point_of(path: str, mount_points: Iterable[str]) -> str:
    """The mount ``path`` lives on: the longest mount point that contains it."""
    return max((m for m in mount_points if _under(path, m)), key=len, default="/")


def plan_shares(
    paths: Iterable[Path],
    mount_points: Sequence[str],
    hidden: Sequence[str] = GUEST_HIDDEN,
) -> list[Path]:
    """
    The directories to share so that every existing path in ``paths`` is visible in the guest.

    A path is visible through the root share when it lives on the root mount outside
    ``hidden``. Otherwise it is shared itself, unless an earlier share holds it on the same
    mount (a share is a non-recursive bind: mounts below it are not in it).
    """
    needed = []
    for path in paths:
        real = os.path.realpath(path)
        if not Path(real).is_dir() or real == "/":
            continue
        mount = mount_point_of(real, mount_points)
        if mount == "/" and not any(_under(real, h) for h in hidden if h != "/"):
            continue
        needed.append((real, mount))
    shares: list[tuple[str, str]] = []
    for real, mount in sorted(set(needed), key=lambda item: (len(item[0]), item[0])):
        if any(_under(real, s) and mount == m for s, m in shares):
            continue
        shares.append((real, mount))
    return [Path(s) for s, _ in shares]


def interpreter_paths(argv0: str | None = None) -> list[Path]:
    """
    This interpreter's directories (venv, base installation) and, when the guest command's
    program is an absolute path, its prefix (``<venv>/bin/python`` -> ``<venv>``) and where it
    resolves to.
    """
    paths = {Path(p) for p in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix)}
    paths.add(Path(os.path.realpath(sys.executable)).parent.parent)
    if argv0 and Path(argv0).is_absolute():
        program = Path(argv0)
        paths.add(program.parent.parent)
        paths.add(Path(os.path.realpath(program)).parent.parent)
    return sorted(paths)
