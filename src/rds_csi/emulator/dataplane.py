"""
Where an emulated NVMe/TCP export goes: a pluggable data plane.

The emulator tells its data plane when an export appears, goes, or changes size. The default
writes ``<data-dir>/nvme-exports.json``, which the loop-device initiator reads to attach an
image as a block device; the kernel NVMe target (``nvmet_plane.py``) serves them for real.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import threading
from typing import Final, Protocol

import attrs


__all__ = [
    "EXPORTS_FILE",
    "EXPORTS_VERSION",
    "DataPlane",
    "ExportedDisk",
    "JsonExportsDataPlane",
    "atomic_write_bytes",
    "atomic_write_json",
]

EXPORTS_FILE: Final = "nvme-exports.json"
EXPORTS_VERSION: Final = 1


@attrs.frozen
class ExportedDisk:
    """One exported file disk, as the data plane needs it."""

    slot: str
    nqn: str
    image: pathlib.Path  # absolute path of the image file on this host
    port: int
    size: int


class DataPlane(Protocol):
    """
    What carries the emulated exports to initiators.

    ``export`` is idempotent: at start-up the emulator calls it for every exported disk in its
    table, so a data plane rebuilds its state from scratch. ``close`` is called once when the
    emulator shuts down for good.
    """

    def export(self, disk: ExportedDisk) -> None: ...

    def unexport(self, disk: ExportedDisk) -> None: ...

    def resized(self, disk: ExportedDisk) -> None: ...

    def close(self) -> None: ...


def atomic_write_json(path: pathlib.Path, document: object) -> None:
    """Write ``document`` so a reader sees the old file or the new one, never half of one."""
    # One line, no indent: json's C encoder only serves the compact form, and these files are
    # rewritten on every change (the pure-Python indenting encoder made that O(disks) slow).
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    atomic_write_bytes(path, data)


def atomic_write_bytes(path: pathlib.Path, data: bytes, *, durable: bool = True) -> None:
    """
    Write ``data`` so a reader sees the old file or the new one, never half of one; with
    ``durable``, also so that the new one survives a machine crash once this returns.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        pathlib.Path(tmp).replace(path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    if not durable:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class JsonExportsDataPlane(DataPlane):
    """
    Keeps ``nvme-exports.json`` equal to the set of exports, rewritten atomically on change::

        {"version": 1, "exports": {"<nqn>": {"slot": "...", "image": "/abs/path.img",
                                              "port": 4420, "size": 1073741824}}}
    """

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # Each export kept JSON-encoded ("<nqn>":{...}): a rewrite joins strings instead of
        # encoding every export again (issue 15: that made each create O(exports) in Python).
        self._encoded: dict[str, str] = {}
        self._write()

    def _write(self) -> None:
        body = ",".join(self._encoded.values())
        # Atomic but not fsynced: the file is derived from the disk table and rewritten whole
        # at every start, so a machine crash cannot leave it stale; syncing megabytes of it on
        # every change made a create cost O(exports) (issue 15).
        atomic_write_bytes(
            self.path,
            f'{{"exports":{{{body}}},"version":{EXPORTS_VERSION}}}\n'.encode(),
            durable=False,
        )

    def _put(self, disk: ExportedDisk) -> None:
        row = {"image": str(disk.image), "port": disk.port, "size": disk.size, "slot": disk.slot}
        self._encoded[disk.nqn] = f"{json.dumps(disk.nqn)}:{json.dumps(row, separators=(',', ':'))}"

    def export(self, disk: ExportedDisk) -> None:
        with self._lock:
            self._put(disk)
            self._write()

    def export_all(self, disks: list[ExportedDisk]) -> None:
        """Many exports, one rewrite (start-up: one per disk made loading O(disks^2))."""
        with self._lock:
            for disk in disks:
                self._put(disk)
            self._write()

    def unexport(self, disk: ExportedDisk) -> None:
        with self._lock:
            if self._encoded.pop(disk.nqn, None) is not None:
                self._write()

    def resized(self, disk: ExportedDisk) -> None:
        self.export(disk)

    def close(self) -> None:
        """The file stays: it describes the disk table, which outlives the process."""
