"""
The emulated RDS's records: a file disk, a ``/file`` row, the writable disk properties, and
the error a RouterOS command prints. Plain values; ``state.py`` keeps and changes them.
"""

from __future__ import annotations

import pathlib
import re
from typing import Final

import attrs


__all__ = ["DISK_ATTRS", "Disk", "FileEntry", "RosFailure", "check_pool_name"]

_POOL_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class RosFailure(Exception):
    """A RouterOS error line; ``str()`` is exactly what the console prints."""


def check_pool_name(name: str) -> str:
    if _POOL_NAME_RE.fullmatch(name) is None:
        raise ValueError(f"pool name {name!r}: use letters, digits, '-' and '_' (max 64)")
    return name


@attrs.define
class Disk:
    """A file disk. Its size is the image file's; it is not stored here."""

    id: int
    slot: str
    file_path: str  # as RouterOS shows it: "/<pool>/..."
    file_offset: int = 0
    nvme_tcp_export: bool = False
    nvme_tcp_server_port: int = 4420
    nvme_tcp_server_nqn: str = ""
    nvme_tcp_server_allow_host_name: str = ""
    parent: str = ""
    mount_filesystem: bool = True
    mount_read_only: bool = False
    compress: bool = False
    swap: bool = False
    iscsi_export: bool = False
    nfs_sharing: bool = False
    smb_sharing: bool = False
    media_sharing: bool = False

    @property
    def nqn(self) -> str:
        # FACTS section 6: with no NQN set, the export's NQN is the slot name.
        return self.nvme_tcp_server_nqn or self.slot


# Property name -> Disk attribute, for the writable properties this emulator keeps.
DISK_ATTRS: Final[dict[str, str]] = {
    "slot": "slot",
    "parent": "parent",
    "file-path": "file_path",
    "file-offset": "file_offset",
    "nvme-tcp-export": "nvme_tcp_export",
    "nvme-tcp-server-port": "nvme_tcp_server_port",
    "nvme-tcp-server-nqn": "nvme_tcp_server_nqn",
    "nvme-tcp-server-allow-host-name": "nvme_tcp_server_allow_host_name",
    "mount-filesystem": "mount_filesystem",
    "mount-read-only": "mount_read_only",
    "compress": "compress",
    "swap": "swap",
    "iscsi-export": "iscsi_export",
    "nfs-sharing": "nfs_sharing",
    "smb-sharing": "smb_sharing",
    "media-sharing": "media_sharing",
}


@attrs.frozen
class FileEntry:
    """One row of ``/file``: the pool itself, a directory, or a file."""

    name: str  # no leading slash, as RouterOS shows file names
    kind: str  # "disk", "directory", or "<.ext> file"
    path: pathlib.Path
    size: int | None
    modified: float
