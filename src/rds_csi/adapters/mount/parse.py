"""
Pure readers for the mount adapter: ``/proc/self/mountinfo`` and ``blkid -o export``.

mountinfo (proc(5)): ``36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root
rw,errors=continue``: mount ID, parent ID, major:minor, root, mount point, per-mount options,
optional fields up to ``-``, then filesystem type, source, and superblock options. Spaces, tabs,
newlines and backslashes in paths are written as octal escapes (``\\040``).
"""

from __future__ import annotations

import re
from typing import Final

from rds_csi.application.ports import MountInfo
from rds_csi.domain import MalformedOutput


__all__ = ["parse_blkid_export", "parse_mountinfo", "unescape_mount_path"]

_OCTAL: Final = re.compile(r"\\([0-7]{3})")
_MIN_FIELDS: Final = 10  # six before the optional fields, "-", then three


def unescape_mount_path(text: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> list[MountInfo]:
    """
    Every mount in ``text``, in table order (a later entry on the same mount point is on top).

    Raises:
        MalformedOutput: a line without the ``-`` separator or with too few fields.
    """
    mounts: list[MountInfo] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split(" ")
        try:
            dash = fields.index("-", 6)
        except ValueError:
            raise MalformedOutput("a mountinfo line has no '-' separator", line) from None
        if len(fields) < _MIN_FIELDS or len(fields) < dash + 3:
            raise MalformedOutput("a mountinfo line has too few fields", line)
        mounts.append(
            MountInfo(
                source=unescape_mount_path(fields[dash + 2]),
                target=unescape_mount_path(fields[4]),
                fs_type=fields[dash + 1],
                options=tuple(fields[5].split(",")),
                root=unescape_mount_path(fields[3]),
                major_minor=fields[2],
            )
        )
    return mounts


def parse_blkid_export(stdout: str) -> dict[str, str]:
    """``KEY=value`` lines from ``blkid -o export`` (values may hold ``=``)."""
    tags: dict[str, str] = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            tags[key.strip()] = value.strip()
    return tags
