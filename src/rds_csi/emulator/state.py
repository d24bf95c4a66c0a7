"""
The emulated RDS's state: one pool, its file disks, and their images as real sparse files.

Layout of the data directory::

    <data-dir>/disks.json              the disk table (written atomically after every change)
    <data-dir>/nvme-exports.json       the default data plane's view of the exports
    <data-dir>/<pool>/...              the pool's files: <data-dir>/<file-path without "/">

Sizes come from the files themselves (``stat``), so what ``print`` shows is what is on disk.
Callers hold ``lock`` around a whole command line (assumption A24).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import threading
import time
from collections.abc import Iterator
from typing import Final

import attrs

from rds_csi.domain import Size
from rds_csi.emulator import assumptions
from rds_csi.emulator.copying import copy_image
from rds_csi.emulator.dataplane import DataPlane, ExportedDisk, atomic_write_json
from rds_csi.emulator.render import (
    Bare,
    Grouped,
    Humanized,
    PropValue,
    bare_or_quoted,
    grouped,
    humanized,
)


__all__ = [
    "DISK_TABLE",
    "Disk",
    "FileEntry",
    "PoolState",
    "RosFailure",
    "check_pool_name",
]

DISK_TABLE: Final = "disks.json"
TABLE_VERSION: Final = 1
POOL_ID: Final = 1
_POOL_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_SEGMENT_RE: Final = re.compile(
    rf"[A-Za-z0-9_][A-Za-z0-9._-]{{0,{assumptions.MAX_PATH_SEGMENT - 1}}}"
)  # A30
_MAX_PATH: Final = assumptions.MAX_FILE_PATH
SECTOR_SIZE: Final = 512


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
        # bytes per second of /file copy and copy-from (0: as fast as the host, reflink if it
        # can); change it at any time to test slow copies
        self.copy_throughput = copy_throughput
        self.pool_name = check_pool_name(pool_name)
        self.pool_size = pool_size
        self.data_plane = data_plane
        self.lock = threading.RLock()
        self.pool_dir = self.data_dir / pool_name
        self.pool_dir.mkdir(parents=True, exist_ok=True)
        self._table = self.data_dir / DISK_TABLE
        self._disks: list[Disk] = []
        self._next_id = POOL_ID + 1
        self._load()
        for disk in self._disks:
            if disk.nvme_tcp_export:
                self.data_plane.export(self.exported(disk))

    # --- persistence ---------------------------------------------------------------------

    def _load(self) -> None:
        if not self._table.exists():
            self._save()
            return
        doc = json.loads(self._table.read_text())
        if doc.get("version") != TABLE_VERSION:
            raise ValueError(f"{self._table}: unknown table version {doc.get('version')!r}")
        self._next_id = int(doc["next_id"])
        self._disks = [Disk(**row) for row in doc["disks"]]

    def _save(self) -> None:
        atomic_write_json(
            self._table,
            {
                "version": TABLE_VERSION,
                "next_id": self._next_id,
                "disks": [attrs.asdict(d) for d in self._disks],
            },
        )

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
        try:
            return self.disk_image(disk).stat().st_size
        except FileNotFoundError:
            return 0

    def used(self) -> int:
        """Bytes the pool's files take, each counted at its full size (assumption A10)."""
        total = 0
        for root, _dirs, files in os.walk(self.pool_dir):
            for name in files:
                try:
                    total += (pathlib.Path(root) / name).stat().st_size
                except FileNotFoundError:
                    continue
        return total

    def free(self) -> int:
        return max(self.pool_size.bytes - self.used(), 0)

    def _reserve(self, extra: int) -> None:
        if extra > self.free():
            raise RosFailure(assumptions.NOT_ENOUGH_SPACE)

    # --- the disk table --------------------------------------------------------------------

    def disks(self) -> list[Disk]:
        return list(self._disks)

    def by_id(self, disk_id: int) -> Disk | None:
        return next((d for d in self._disks if d.id == disk_id), None)

    def by_slot(self, slot: str) -> Disk | None:
        return next((d for d in self._disks if d.slot == slot), None)

    def exported(self, disk: Disk) -> ExportedDisk:
        return ExportedDisk(
            slot=disk.slot,
            nqn=disk.nqn,
            image=self.disk_image(disk),
            port=disk.nvme_tcp_server_port,
            size=self.disk_size(disk),
        )

    def _check_unique(self, disk: Disk, *, ignore: Disk | None = None) -> None:
        for other in self._disks:
            if other is ignore:
                continue
            if other.slot == disk.slot:
                raise RosFailure("failure: already have such entry")  # A12
            if disk.nvme_tcp_export and other.nvme_tcp_export and other.nqn == disk.nqn:
                raise RosFailure("failure: already have such entry")
        if disk.slot == self.pool_name:
            raise RosFailure("failure: already have such entry")

    def copy_file(self, source: pathlib.Path, dest: pathlib.Path) -> None:
        """A real data copy into a new file (A32, A33); a failure leaves no file."""
        if dest.exists():
            raise RosFailure(assumptions.FILE_EXISTS)
        if not source.is_file():
            raise RosFailure("no such item")
        self._reserve(source.stat().st_size)
        try:
            copy_image(source, dest, throughput=self.copy_throughput)
        except OSError as exc:
            raise RosFailure(f"failure: {exc.strerror or 'copy failed'}") from exc

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
                    image.unlink()
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
        self._next_id += 1
        self._disks.append(disk)
        self._save()
        if disk.nvme_tcp_export:
            try:
                self.data_plane.export(self.exported(disk))
            except Exception:
                # A disk the data plane refused is not added (its image file stays: A11).
                self._disks.remove(disk)
                self._save()
                with contextlib.suppress(Exception):
                    self.data_plane.unexport(self.exported(disk))
                raise
        return disk

    def remove(self, disk: Disk) -> None:
        self._disks.remove(disk)
        self._save()
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
            self._reserve(file_size.bytes - self.disk_size(disk))
            with self.disk_image(disk).open("ab") as f:
                f.truncate(file_size.bytes)
        for name in values:
            attr = DISK_ATTRS[name]
            setattr(disk, attr, getattr(changed, attr))
        self._save()
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
        return [(POOL_ID, None), *((d.id, d) for d in self._disks)]

    def disk_flags(self, disk: Disk | None) -> str:
        if disk is None:
            return "BM"
        return "B" + ("t" if disk.nvme_tcp_export else "")

    def disk_props(self, disk: Disk | None) -> list[tuple[str, PropValue]]:
        """The properties in the order ``print detail`` shows them (capture; A8, A20)."""
        if disk is None:
            size, free = self.pool_size.bytes, self.free()
            use = round(100 * (size - free) / size) if size else 0
            return [
                ("type", Bare("raid")),
                ("slot", self.pool_name),
                ("slot-default", ""),
                ("parent", ""),
                ("fs", Bare("btrfs")),
                ("fs-label", self.pool_name),
                ("model", ""),
                ("size", grouped(size)),
                ("free", grouped(free)),
                ("use", Bare(f"{use}%")),
                ("mount-point", self.pool_name),
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
        return file_disk_props(disk, self.disk_size(disk))

    def disk_values(self, disk: Disk | None) -> dict[str, object]:
        """Typed values for ``where``/``find``/``get``: flags as booleans, sizes as bytes."""
        values: dict[str, object] = {}
        for key, value in self.disk_props(disk):
            values[key] = _plain(value)
        flags = self.disk_flags(disk)
        for letter, name in assumptions.DISK_LEGEND:
            values.setdefault(name.lower(), letter in flags)
        return values

    # --- /file -----------------------------------------------------------------------------

    def files(self) -> list[FileEntry]:
        entries = [
            FileEntry(self.pool_name, "disk", self.pool_dir, None, self.pool_dir.stat().st_mtime)
        ]
        for path in sorted(_walk(self.pool_dir)):
            rel = path.relative_to(self.data_dir).as_posix()
            st = path.lstat()
            if path.is_dir():
                entries.append(FileEntry(rel, "directory", path, None, st.st_mtime))
            else:
                kind = f"{path.suffix} file" if path.suffix else "file"
                entries.append(FileEntry(rel, kind, path, st.st_size, st.st_mtime))
        return entries

    def remove_file(self, entry: FileEntry) -> None:
        if entry.kind == "disk":
            raise RosFailure(assumptions.POOL_NOT_REMOVABLE)
        for disk in self._disks:
            if self.disk_image(disk) == entry.path:
                raise RosFailure(assumptions.FILE_IN_USE)  # A18
        try:
            if entry.kind == "directory":
                entry.path.rmdir()
            else:
                entry.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise RosFailure(f"failure: {exc.strerror or 'can not remove'}") from exc


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


def _walk(top: pathlib.Path) -> Iterator[pathlib.Path]:
    for root, dirs, files in os.walk(top):
        base = pathlib.Path(root)
        for name in dirs + files:
            yield base / name


def _plain(value: PropValue) -> object:
    match value:
        case Grouped(v) | Humanized(v):
            return v
        case Bare(v):
            return v
    return value
