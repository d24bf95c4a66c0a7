"""
The emulated RDS's state: one pool, its file disks, and their images as real sparse files.

Layout of the data directory::

    <data-dir>/disks.json              the disk table's snapshot (``table.py``)
    <data-dir>/disks.journal           its changes since the snapshot, one line each
    <data-dir>/nvme-exports.json       the default data plane's view of the exports
    <data-dir>/<pool>/...              the pool's files: <data-dir>/<file-path without "/">

Sizes come from the files themselves (``stat``), so what ``print`` shows is what is on disk.
Callers hold ``lock`` around a whole command line (assumption A24).

Lookups by id and slot are dictionary lookups, and the pool's used bytes are counted once at
start and then kept up to date by every change this class makes (issue 15: a create walked
the whole pool), so they cost the same at 10 disks as at 10,000.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import os
import pathlib
import re
import threading
from collections.abc import Iterator
from typing import Final

import attrs

from rds_csi.domain import Size
from rds_csi.emulator import assumptions
from rds_csi.emulator.copying import copy_image
from rds_csi.emulator.dataplane import DataPlane, ExportedDisk
from rds_csi.emulator.disks import DISK_ATTRS, Disk, FileEntry, RosFailure, check_pool_name
from rds_csi.emulator.render import PropValue
from rds_csi.emulator.rows import (
    file_disk_props,
    file_props,
    file_values,
    plain_value,
    pool_props,
)
from rds_csi.emulator.table import DiskTableFile


__all__ = [
    "DISK_ATTRS",
    "DISK_TABLE",
    "Disk",
    "FileEntry",
    "PoolState",
    "RosFailure",
    "check_pool_name",
    "file_disk_props",
    "file_props",
    "file_values",
]

DISK_TABLE: Final = "disks.json"
POOL_ID: Final = 1
_SEGMENT_RE: Final = re.compile(
    rf"[A-Za-z0-9_][A-Za-z0-9._-]{{0,{assumptions.MAX_PATH_SEGMENT - 1}}}"
)  # A30
_MAX_PATH: Final = assumptions.MAX_FILE_PATH
SECTOR_SIZE: Final = 512


class PoolState:
    """The pool, the disk table and the image files, kept in step."""

    def __init__(
        self,
        data_dir: pathlib.Path,
        *,
        pool_name: str,
        pool_size: Size,
        data_plane: DataPlane,
        copy_throughput: int = 0,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self._data_dir_str = str(self.data_dir)
        # bytes per second of /file copy and copy-from (0: as fast as the host, reflink if it
        # can); change it at any time to test slow copies
        self.copy_throughput = copy_throughput
        self.pool_name = check_pool_name(pool_name)
        self.pool_size = pool_size
        self.data_plane = data_plane
        self.lock = threading.RLock()
        self.pool_dir = self.data_dir / pool_name
        self.pool_dir.mkdir(parents=True, exist_ok=True)
        self._table = DiskTableFile(self.data_dir / DISK_TABLE)
        # Insertion-ordered by id (print order); _by_slot indexes the same disks by slot.
        self._disks: dict[int, Disk] = {}
        self._by_slot: dict[str, Disk] = {}
        self._order: list[int] = []
        self._by_nqn: dict[str, Disk] = {}  # exported disks only: no two export one NQN
        # How many disks use each file-path (A11 lets two share one): is an image in use (A18)
        self._by_file: collections.Counter[str] = collections.Counter()
        self._next_id = POOL_ID + 1
        self._load()
        self._used = _walk_used(self.pool_dir)
        exported = [self.exported(d) for d in self._disks.values() if d.nvme_tcp_export]
        bulk = getattr(self.data_plane, "export_all", None)
        if bulk is not None:  # one rewrite of the exports, not one per disk
            bulk(exported)
        else:
            for disk in exported:
                self.data_plane.export(disk)

    # --- persistence ---------------------------------------------------------------------

    def _load(self) -> None:
        found = self._table.load()
        if found is None:
            self._table.snapshot(self._next_id, [])
            return
        self._next_id, rows = found
        self._disks = {d.id: d for d in sorted((Disk(**row) for row in rows), key=_by_id)}
        self._reindex()

    def _reindex(self) -> None:
        self._order = list(self._disks)  # ids, rising: a disk's id is above all before it
        self._by_slot = {d.slot: d for d in self._disks.values()}
        self._by_file = collections.Counter(d.file_path for d in self._disks.values())
        self._by_nqn = {d.nqn: d for d in self._disks.values() if d.nvme_tcp_export}

    def _journal(self, change: dict[str, object]) -> None:
        """Make one change durable (``table.py``), snapshotting the table now and then."""
        if self._table.append({**change, "next_id": self._next_id}, len(self._disks)):
            self._table.snapshot(self._next_id, [attrs.asdict(d) for d in self._disks.values()])

    # --- paths and space -------------------------------------------------------------------

    def image_path(self, file_path: str) -> pathlib.Path:
        """The host path of a RouterOS file path, refusing anything outside the pool."""
        body = file_path.strip("/")
        segments = body.split("/")
        if (
            not body
            or len(body) > _MAX_PATH
            or any(_SEGMENT_RE.fullmatch(s) is None or s in {".", ".."} for s in segments)
        ):
            raise RosFailure("invalid value for argument file-path")
        if segments[0] != self.pool_name or len(segments) < 2:  # noqa: PLR2004
            raise RosFailure(assumptions.FILE_OUTSIDE_POOL)
        path = self.data_dir.joinpath(*segments)
        if not path.resolve().is_relative_to(self.pool_dir):  # a symlink planted on the host
            raise RosFailure(assumptions.FILE_OUTSIDE_POOL)
        return path

    def disk_image(self, disk: Disk) -> pathlib.Path:
        return self.data_dir / disk.file_path.strip("/")

    def disk_size(self, disk: Disk) -> int:
        # os.stat on a joined string: building a Path per disk was most of listing 10,000.
        try:
            path = f"{self._data_dir_str}/{disk.file_path.strip('/')}"
            return os.stat(path).st_size  # noqa: PTH116 - see above
        except FileNotFoundError:
            return 0

    def used(self) -> int:
        """Bytes the pool's files take, each counted at its full size (assumption A10)."""
        return self._used

    def free(self) -> int:
        return max(self.pool_size.bytes - self.used(), 0)

    def _reserve(self, extra: int) -> None:
        if extra > self.free():
            raise RosFailure(assumptions.NOT_ENOUGH_SPACE)

    # --- the disk table --------------------------------------------------------------------

    def disks(self) -> list[Disk]:
        return list(self._disks.values())

    def disk_ids(self) -> list[int]:
        """The disks' ids in print order (the pool, item 0, not included)."""
        return list(self._disks)

    def position(self, disk: Disk) -> int:
        """The disk's print number less the first (the pool is 0): ids print in rising order."""
        return bisect.bisect_left(self._order, disk.id) + 1

    def id_at(self, position: int) -> int:
        """The id of the disk ``position`` shows (``position`` >= 1)."""
        return self._order[position - 1]

    def by_id(self, disk_id: int) -> Disk | None:
        return self._disks.get(disk_id)

    def by_slot(self, slot: str) -> Disk | None:
        return self._by_slot.get(slot)

    def exported(self, disk: Disk) -> ExportedDisk:
        return ExportedDisk(
            slot=disk.slot,
            nqn=disk.nqn,
            image=self.disk_image(disk),
            port=disk.nvme_tcp_server_port,
            size=self.disk_size(disk),
        )

    def _check_unique(self, disk: Disk, *, ignore: Disk | None = None) -> None:
        same_slot = self._by_slot.get(disk.slot)
        if same_slot is not None and same_slot is not ignore:
            raise RosFailure("failure: already have such entry")  # A12
        same_nqn = self._by_nqn.get(disk.nqn) if disk.nvme_tcp_export else None
        if same_nqn is not None and same_nqn is not ignore:
            raise RosFailure("failure: already have such entry")
        if disk.slot == self.pool_name:
            raise RosFailure("failure: already have such entry")

    def copy_file(self, source: pathlib.Path, dest: pathlib.Path) -> None:
        """A real data copy into a new file (A32, A33); a failure leaves no file."""
        if dest.exists():
            raise RosFailure(assumptions.FILE_EXISTS)
        if not source.is_file():
            raise RosFailure("no such item")
        size = source.stat().st_size
        self._reserve(size)
        try:
            copy_image(source, dest, throughput=self.copy_throughput)
        except OSError as exc:
            raise RosFailure(f"failure: {exc.strerror or 'copy failed'}") from exc
        self._used += size  # the pool's count, kept by every change (see the docstring)

    def add(
        self, values: dict[str, object], file_size: Size | None, copy_from: Disk | None = None
    ) -> Disk:
        if copy_from is not None:  # A33: the other item's settings, then the given ones
            inherited = {
                name: getattr(copy_from, attr)
                for name, attr in DISK_ATTRS.items()
                if name not in {"slot", "file-path"}
            }
            values = {**inherited, **values}
        file_path = values.get("file-path")
        if not isinstance(file_path, str) or not file_path:
            raise RosFailure("missing value(s) of argument(s) file-path")  # A22
        image = self.image_path(file_path)
        disk = Disk(id=self._next_id, slot="", file_path="/" + file_path.strip("/"))
        for name, value in values.items():
            setattr(disk, DISK_ATTRS[name], value)
        disk.file_path = "/" + file_path.strip("/")
        if not disk.slot:
            disk.slot = f"file{disk.id}"
        self._check_unique(disk)
        copied = False
        if copy_from is not None and not image.exists():  # A33: the data too
            self.copy_file(self.disk_image(copy_from), image)
            copied = True
        try:
            return self._add_on(disk, image, file_size)
        except BaseException:
            if copied:
                with contextlib.suppress(FileNotFoundError):
                    size = image.stat().st_size
                    image.unlink()
                    self._used -= size
            raise

    def _add_on(self, disk: Disk, image: pathlib.Path, file_size: Size | None) -> Disk:
        existing = image.stat().st_size if image.exists() else None
        if existing is None and file_size is None:
            raise RosFailure("missing value(s) of argument(s) file-size")
        want = file_size.bytes if file_size is not None else existing or 0
        self._reserve(want - (existing or 0))
        image.parent.mkdir(parents=True, exist_ok=True)  # A16
        with image.open("ab") as f:  # A11: an existing file is reused
            f.truncate(want)  # sparse: no blocks are written
        self._used += want - (existing or 0)
        self._next_id += 1
        self._disks[disk.id] = disk
        self._order.append(disk.id)
        self._by_slot[disk.slot] = disk
        self._by_file[disk.file_path] += 1
        if disk.nvme_tcp_export:
            self._by_nqn[disk.nqn] = disk
        self._journal({"put": attrs.asdict(disk)})
        if disk.nvme_tcp_export:
            try:
                self.data_plane.export(self.exported(disk))
            except Exception:
                # A disk the data plane refused is not added (its image file stays: A11).
                self._forget(disk)
                self._journal({"del": disk.id})
                with contextlib.suppress(Exception):
                    self.data_plane.unexport(self.exported(disk))
                raise
        return disk

    def _forget(self, disk: Disk) -> None:
        del self._disks[disk.id]
        del self._order[bisect.bisect_left(self._order, disk.id)]
        del self._by_slot[disk.slot]
        if self._by_nqn.get(disk.nqn) is disk:
            del self._by_nqn[disk.nqn]
        self._by_file[disk.file_path] -= 1
        if not self._by_file[disk.file_path]:
            del self._by_file[disk.file_path]

    def remove(self, disk: Disk) -> None:
        self._forget(disk)
        self._journal({"del": disk.id})
        if disk.nvme_tcp_export:
            self.data_plane.unexport(self.exported(disk))

    def update(self, disk: Disk, values: dict[str, object], file_size: Size | None) -> None:
        if "file-path" in values:
            raise RosFailure("failure: file-path can not be changed")
        before = self.exported(disk) if disk.nvme_tcp_export else None
        changed = attrs.evolve(disk)
        for name, value in values.items():
            setattr(changed, DISK_ATTRS[name], value)
        self._check_unique(changed, ignore=disk)
        if file_size is not None and file_size.bytes != self.disk_size(disk):
            old = self.disk_size(disk)
            self._reserve(file_size.bytes - old)
            with self.disk_image(disk).open("ab") as f:
                f.truncate(file_size.bytes)
            self._used += file_size.bytes - old
        for name in values:
            attr = DISK_ATTRS[name]
            setattr(disk, attr, getattr(changed, attr))
        if {"slot", "nvme-tcp-export", "nvme-tcp-server-nqn"} & values.keys():
            self._reindex()
        self._journal({"put": attrs.asdict(disk)})
        after = self.exported(disk) if disk.nvme_tcp_export else None
        if before is not None and (after is None or after.nqn != before.nqn):
            self.data_plane.unexport(before)
        if after is not None:
            if before is None or attrs.evolve(after, size=before.size) != before:
                self.data_plane.export(after)
            elif after.size != before.size:
                self.data_plane.resized(after)

    # --- what print shows -------------------------------------------------------------------

    def items(self) -> list[tuple[int, Disk | None]]:
        """Every ``/disk`` item as (internal id, disk); the pool (``None``) is item 0."""
        return [(POOL_ID, None), *self._disks.items()]

    def disk_flags(self, disk: Disk | None) -> str:
        if disk is None:
            return "BM"
        return "B" + ("t" if disk.nvme_tcp_export else "")

    def disk_props(self, disk: Disk | None) -> list[tuple[str, PropValue]]:
        """The properties in the order ``print detail`` shows them (capture; A8, A20)."""
        if disk is None:
            return pool_props(self.pool_name, self.pool_size.bytes, self.free())
        return file_disk_props(disk, self.disk_size(disk))

    def disk_values(self, disk: Disk | None) -> dict[str, object]:
        """Typed values for ``where``/``find``/``get``: flags as booleans, sizes as bytes."""
        values: dict[str, object] = {}
        for key, value in self.disk_props(disk):
            values[key] = plain_value(value)
        flags = self.disk_flags(disk)
        for letter, name in assumptions.DISK_LEGEND:
            values.setdefault(name.lower(), letter in flags)
        return values

    # --- /file -----------------------------------------------------------------------------

    def files(self) -> list[FileEntry]:
        entries = [
            FileEntry(self.pool_name, "disk", self.pool_dir, None, self.pool_dir.stat().st_mtime)
        ]
        entries += (self._entry(path) for path in sorted(_walk(self.pool_dir)))
        return entries

    def _entry(self, path: pathlib.Path) -> FileEntry:
        rel = path.relative_to(self.data_dir).as_posix()
        st = path.lstat()
        if path.is_dir():
            return FileEntry(rel, "directory", path, None, st.st_mtime)
        kind = f"{path.suffix} file" if path.suffix else "file"
        return FileEntry(rel, kind, path, st.st_size, st.st_mtime)

    def file_named(self, name: str) -> FileEntry | None:
        """
        The ``/file`` entry ``files()`` would list under ``name``, found without walking the
        pool; ``None`` if there is none. Raises ``LookupError`` when only a walk can tell (the
        pool itself, or a path through a symlink, which the walk does not follow).
        """
        segments = name.split("/")
        if (
            len(segments) < 2  # noqa: PLR2004 - the pool, or not below it
            or segments[0] != self.pool_name
            or any(s in {"", ".", ".."} for s in segments)
        ):
            raise LookupError(name)
        path = self.data_dir.joinpath(*segments)
        if os.path.realpath(path.parent) != str(path.parent):
            raise LookupError(name)
        try:
            return self._entry(path)
        except FileNotFoundError:
            return None

    def remove_file(self, entry: FileEntry) -> None:
        if entry.kind == "disk":
            raise RosFailure(assumptions.POOL_NOT_REMOVABLE)
        if entry.path.is_relative_to(self.data_dir) and self._by_file.get(
            "/" + entry.path.relative_to(self.data_dir).as_posix()
        ):
            raise RosFailure(assumptions.FILE_IN_USE)  # A18
        try:
            if entry.kind == "directory":
                entry.path.rmdir()
            else:
                size = entry.path.stat().st_size
                entry.path.unlink()
                self._used -= size
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise RosFailure(f"failure: {exc.strerror or 'can not remove'}") from exc


def _by_id(disk: Disk) -> int:
    return disk.id


def _walk_used(top: pathlib.Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(top):
        for name in files:
            try:
                total += (pathlib.Path(root) / name).stat().st_size
            except FileNotFoundError:
                continue
    return total


def _walk(top: pathlib.Path) -> Iterator[pathlib.Path]:
    for root, dirs, files in os.walk(top):
        base = pathlib.Path(root)
        for name in dirs + files:
            yield base / name
