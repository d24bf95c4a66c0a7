"""
How ``print`` shows a file disk and a ``/file`` entry, as rows of properties (split from
``state.py``, which keeps the table; these only read it).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rds_csi.emulator.render import (
    Bare,
    Grouped,
    Humanized,
    PropValue,
    bare_or_quoted,
    grouped,
    humanized,
)


if TYPE_CHECKING:
    from rds_csi.emulator.state import Disk, FileEntry

SECTOR_SIZE = 512  # as state.SECTOR_SIZE (imported there from here would cycle)

__all__ = ["file_disk_props", "file_props", "file_values", "pool_props"]


def pool_props(name: str, size: int, free: int) -> list[tuple[str, PropValue]]:
    """The pool's row, in the capture's order (A8, A20)."""
    use = round(100 * (size - free) / size) if size else 0
    return [
        ("type", Bare("raid")),
        ("slot", name),
        ("slot-default", ""),
        ("parent", ""),
        ("fs", Bare("btrfs")),
        ("fs-label", name),
        ("model", ""),
        ("size", grouped(size)),
        ("free", grouped(free)),
        ("use", Bare(f"{use}%")),
        ("mount-point", name),
        ("mount-filesystem", True),
        ("mount-read-only", False),
        ("compress", False),
        ("sector-size", SECTOR_SIZE),
        ("raid-type", Bare("1")),
        ("raid-device-count", 2),
        ("raid-master", Bare("none")),
        ("state", "clean"),
        ("nvme-tcp-export", False),
        ("iscsi-export", False),
        ("nfs-sharing", False),
        ("smb-sharing", False),
        ("media-sharing", False),
        ("media-interface", Bare("none")),
        ("swap", False),
    ]


def file_disk_props(disk: Disk, size: int) -> list[tuple[str, PropValue]]:
    """A file disk's row, in the capture's order (A8: no nvme-tcp-server-* when not exported)."""
    props: list[tuple[str, PropValue]] = [
        ("type", Bare("file")),
        ("slot", disk.slot),
        ("slot-default", ""),
        ("parent", disk.parent),
        ("fs", Bare("-")),
        ("model", disk.file_path),
        ("size", grouped(size)),
        ("mount-filesystem", disk.mount_filesystem),
        ("mount-read-only", disk.mount_read_only),
        ("compress", disk.compress),
        ("sector-size", SECTOR_SIZE),
        ("raid-master", Bare("none")),
        ("nvme-tcp-export", disk.nvme_tcp_export),
    ]
    if disk.nvme_tcp_export:
        props += [
            ("nvme-tcp-server-port", disk.nvme_tcp_server_port),
            ("nvme-tcp-server-nqn", disk.nvme_tcp_server_nqn),
            ("nvme-tcp-server-allow-host-name", disk.nvme_tcp_server_allow_host_name),
        ]
    props += [
        ("iscsi-export", disk.iscsi_export),
        ("nfs-sharing", disk.nfs_sharing),
        ("smb-sharing", disk.smb_sharing),
        ("media-sharing", disk.media_sharing),
        ("media-interface", Bare("none")),
        ("swap", disk.swap),
        ("file-path", bare_or_quoted(disk.file_path)),
        ("file-size", humanized(size)),
        ("file-offset", disk.file_offset),
    ]
    return props


def file_props(entry: FileEntry) -> list[tuple[str, PropValue]]:
    """A ``/file print detail`` row (A19)."""
    props: list[tuple[str, PropValue]] = [
        ("name", bare_or_quoted(entry.name)),
        ("type", Bare(entry.kind)),
    ]
    if entry.size is not None:
        props.append(("size", humanized(entry.size)))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.modified))
    props.append(("last-modified", Bare(stamp)))
    return props


def file_values(entry: FileEntry) -> dict[str, object]:
    return {
        "name": entry.name,
        "type": entry.kind,
        "size": entry.size if entry.size is not None else 0,
        "last-modified": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.modified)),
    }


def plain_value(value: PropValue) -> object:
    match value:
        case Grouped(v) | Humanized(v):
            return v
        case Bare(v):
            return v
    return value
