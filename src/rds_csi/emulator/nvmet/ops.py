"""
The filesystem calls nvmet's configfs tree needs, as a port, and their kernel implementation.

Kept apart from the target logic so the same code runs on the real configfs and on the fake
tree in :mod:`rds_csi.emulator.nvmet.fake`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol


__all__ = ["ConfigfsOps", "KernelConfigfs"]


class ConfigfsOps(Protocol):
    """The filesystem calls the target needs; each raises OSError as the kernel would."""

    def mkdir(self, path: Path) -> None: ...
    def rmdir(self, path: Path) -> None: ...
    def write(self, path: Path, value: str) -> None: ...
    def read(self, path: Path) -> str: ...
    def symlink(self, target: Path, link: Path) -> None: ...
    def unlink(self, link: Path) -> None: ...
    def listdir(self, path: Path) -> list[str]: ...
    def exists(self, path: Path) -> bool: ...


class KernelConfigfs:
    """:class:`ConfigfsOps` on the real configfs: plain system calls."""

    def mkdir(self, path: Path) -> None:
        path.mkdir()

    def rmdir(self, path: Path) -> None:
        path.rmdir()

    def write(self, path: Path, value: str) -> None:
        # Write-only attributes (revalidate_size) refuse O_RDWR, and configfs cannot create
        # files: open for writing, without O_CREAT, and write the value in one call.
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)

    def read(self, path: Path) -> str:
        return path.read_text()

    def symlink(self, target: Path, link: Path) -> None:
        link.symlink_to(target)

    def unlink(self, link: Path) -> None:
        link.unlink()

    def listdir(self, path: Path) -> list[str]:
        return sorted(p.name for p in path.iterdir())

    def exists(self, path: Path) -> bool:
        return os.path.lexists(path)
