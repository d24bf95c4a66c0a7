"""
The RouterOS command builder: every value is validated, then quoted; nothing else gets in.

Values reach a command only as ``RosValue``s, which only this module's constructors make: a
string must be a non-empty run of ``[A-Za-z0-9._:/@+-]`` (no whitespace, quotes, ``$``,
``\\``, ``;``, brackets, braces, ``?``, ``#``, ``~`` or control characters), and is emitted in
double quotes; numbers, booleans and sizes are emitted in RouterOS's own spelling. Property
names and menus are fixed words of this module. A ``Script`` is a sequence of statements built
the same way, each exec line ends with a ``:put`` of a marker that proves the line ran to its
end (an error stops a RouterOS script, so the marker never appears after one).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Final

import attrs

from rds_csi.domain import DiskPath, InvalidArgument, Size, SnapshotId, Volume, VolumeId
from rds_csi.domain.identity import check_base_path
from rds_csi.domain.model import check_port
from rds_csi.domain.size import GIB, KIB, MIB, TIB


__all__ = [
    "RosValue",
    "Script",
    "capacity",
    "create_disk",
    "create_snapshot",
    "delete_disk",
    "delete_snapshot",
    "export_disk",
    "health",
    "list_disks",
    "list_snapshots",
    "new_marker",
    "populate_disk",
    "print_disk",
    "print_snapshot",
    "resize_disk",
    "routeros_size",
    "snapshot_file",
    "split_snapshot_reply",
]

_SAFE_STRING: Final = re.compile(r"[A-Za-z0-9._:/@+-]{1,255}")
_MARKER: Final = re.compile(r"rds-csi-end-[0-9a-f]{16}")
_PROPERTY: Final = re.compile(r"[a-z][a-z0-9-]{0,63}")
_MENUS: Final = frozenset({"/disk", "/file"})
# Our volume IDs start with this; ``~`` is a regex match, and "^pvc-" holds no metacharacter
# RouterOS would interpret inside quotes.
OURS_PATTERN: Final = "^pvc-"


class _Token:
    """Proof that a piece of text came out of this module's validating constructors."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


@attrs.frozen
class RosValue:
    """A command argument value, already validated and in RouterOS spelling."""

    _token: _Token = attrs.field(alias="token")

    @property
    def text(self) -> str:
        return self._token.text

    @classmethod
    def string(cls, value: object, *, field: str = "value") -> RosValue:
        if not isinstance(value, str) or _SAFE_STRING.fullmatch(value) is None:
            shown = value[:64] if isinstance(value, str) else type(value).__name__
            raise InvalidArgument(
                field,
                f"{shown!r} cannot be sent to RouterOS: only letters, digits and . _ : / @ + - "
                "are allowed (1-255 characters)",
            )
        return cls(_Token(f'"{value}"'))

    @classmethod
    def integer(cls, value: object, *, field: str = "value") -> RosValue:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(field, f"{value!r} is not a non-negative integer")
        return cls(_Token(str(value)))

    @classmethod
    def boolean(cls, *, value: object) -> RosValue:
        if not isinstance(value, bool):
            raise InvalidArgument("value", f"{value!r} is not a boolean")
        return cls(_Token("yes" if value else "no"))

    @classmethod
    def size(cls, value: object) -> RosValue:
        if not isinstance(value, Size) or value.bytes <= 0:
            raise InvalidArgument("size", f"{value!r} is not a positive size")
        return cls(_Token(routeros_size(value)))


# RouterOS reads `10G` as GiB; multiples of 1024 only, so the size is exact.
_ROUTEROS_UNITS: Final = (("T", TIB), ("G", GIB), ("M", MIB), ("k", KIB))


def routeros_size(size: Size) -> str:
    """The shortest exact RouterOS spelling of a size for a command (``10G``, ``1536M``)."""
    for suffix, unit in _ROUTEROS_UNITS:
        if size.bytes and size.bytes % unit == 0:
            return f"{size.bytes // unit}{suffix}"
    return str(size.bytes)


def _prop(name: str) -> str:
    if _PROPERTY.fullmatch(name) is None:
        raise ValueError(f"not a RouterOS property name: {name!r}")  # a bug in this module
    return name


def _args(args: Sequence[tuple[str, RosValue]]) -> str:
    return " ".join(f"{_prop(k)}={v.text}" for k, v in args)


def _find(menu: str, key: str, value: RosValue) -> str:
    if menu not in _MENUS:
        raise ValueError(menu)
    return f"[{menu} find where {_prop(key)}={value.text}]"


def _remove_if_found(menu: str, key: str, value: RosValue) -> str:
    """
    ``remove`` only what ``find`` found: whether RouterOS takes an empty ``[find]`` as a no-op
    or answers ``no such item`` is unverified (emulator assumption A13), so no command of ours
    may depend on either.
    """
    found = _find(menu, key, value)
    return f":if ([:len {found}] > 0) do={{{menu} remove {found}}}"


@attrs.frozen
class Script:
    """One exec line: statements, then ``:put "<marker>"``."""

    statements: tuple[str, ...]
    marker: str

    def render(self) -> str:
        if _MARKER.fullmatch(self.marker) is None:
            raise ValueError("bad marker")
        return "; ".join((*self.statements, f':put "{self.marker}"'))


def new_marker() -> str:
    return "rds-csi-end-" + secrets.token_hex(8)


def _slot(volume_id: VolumeId) -> RosValue:
    if not isinstance(volume_id, VolumeId):
        raise InvalidArgument("volume_id", f"{volume_id!r} is not a VolumeId")
    return RosValue.string(volume_id.value, field="volume_id")


def _file_name(path: DiskPath) -> RosValue:
    """``/file`` names carry no leading slash (FACTS section 3)."""
    return RosValue.string(path.value.lstrip("/"), field="path")


def print_disk(volume_id: VolumeId, marker: str) -> Script:
    """``/disk print detail where slot="<id>"``."""
    return Script((f"/disk print detail where slot={_slot(volume_id).text}",), marker)


def list_disks(marker: str) -> Script:
    """Every disk whose slot looks like ours; the parser keeps those that are."""
    pattern = RosValue(_Token(f'"{OURS_PATTERN}"'))
    return Script((f"/disk print detail where slot~{pattern.text}",), marker)


def create_disk(volume: Volume, marker: str) -> Script:
    """
    One round trip: if no disk has the slot, remove a stale image of this volume left by an
    interrupted delete (if there is one), add the disk (exported), then print it either way.
    """
    slot = _slot(volume.volume_id)
    add = _args(
        [
            ("type", RosValue(_Token("file"))),
            ("file-path", RosValue.string(volume.path.value, field="path")),
            ("file-size", RosValue.size(volume.size)),
            ("slot", slot),
            # never let the RDS mount the filesystem a node puts on the disk (SC does the same)
            ("mount-filesystem", RosValue.boolean(value=False)),
            ("nvme-tcp-export", RosValue.boolean(value=True)),
            (
                "nvme-tcp-server-port",
                RosValue.integer(check_port(volume.nvme_port, field="nvme_port")),
            ),
            ("nvme-tcp-server-nqn", RosValue.string(volume.nqn.value, field="nqn")),
        ]
    )
    return Script(
        (
            (
                f":if ([:len {_find('/disk', 'slot', slot)}] = 0) do={{"
                f"{_remove_if_found('/file', 'name', _file_name(volume.path))}; "
                f"/disk add {add}}}"
            ),
            f"/disk print detail where slot={slot.text}",
        ),
        marker,
    )


def delete_disk(volume_id: VolumeId, paths: Sequence[DiskPath], marker: str) -> Script:
    """
    Remove the disk (if any), then its image file wherever it may be (each of ``paths`` that
    exists): RouterOS keeps the file when the disk goes.
    """
    if not paths:
        raise InvalidArgument("path", f"no image path given for {volume_id}")
    for path in paths:
        if path.volume_id != volume_id:
            raise InvalidArgument("path", f"{path} is not the image of {volume_id}")
    distinct = {p.value.lstrip("/"): p for p in paths}.values()  # /file names have no "/"
    files = [_remove_if_found("/file", "name", _file_name(p)) for p in distinct]
    return Script((_remove_if_found("/disk", "slot", _slot(volume_id)), *files), marker)


def export_disk(volume: Volume, marker: str) -> Script:
    """Switch the export (back) on for an existing disk, then print it."""
    slot = _slot(volume.volume_id)
    export = _args(
        [
            ("nvme-tcp-export", RosValue.boolean(value=True)),
            (
                "nvme-tcp-server-port",
                RosValue.integer(check_port(volume.nvme_port, field="nvme_port")),
            ),
            ("nvme-tcp-server-nqn", RosValue.string(volume.nqn.value, field="nqn")),
        ]
    )
    return Script(
        (
            f"/disk set {_find('/disk', 'slot', slot)} {export}",
            f"/disk print detail where slot={slot.text}",
        ),
        marker,
    )


def resize_disk(volume_id: VolumeId, size: Size, marker: str) -> Script:
    slot = _slot(volume_id)
    return Script(
        (
            f"/disk set {_find('/disk', 'slot', slot)} file-size={RosValue.size(size).text}",
            f"/disk print detail where slot={slot.text}",
        ),
        marker,
    )


def capacity(mount_point: str, marker: str) -> Script:
    value = RosValue.string(mount_point, field="pool")
    return Script((f"/disk print detail where mount-point={value.text}",), marker)


def health(marker: str) -> Script:
    return Script((), marker)


# --- snapshots (rds_csi.adapters.routeros_ssh.snapshots) -----------------------------------

SNAPSHOTS_PATTERN: Final = "^snap-"
FILE_COPY: Final = "file-copy"
COPY_FROM: Final = "copy-from"
SNAPSHOT_METHODS: Final = (FILE_COPY, COPY_FROM)


def _snap_slot(snapshot_id: SnapshotId) -> RosValue:
    if not isinstance(snapshot_id, SnapshotId):
        raise InvalidArgument("snapshot_id", f"{snapshot_id!r} is not a SnapshotId")
    return RosValue.string(snapshot_id.value, field="snapshot_id")


def snapshot_file(base: str, snapshot_id: SnapshotId) -> str:
    """Where a snapshot's image goes: beside its source's, ``<base>/<snapshot-id>.img``."""
    return f"{check_base_path(base, field='path')}/{snapshot_id}.img".replace("//", "/")


def _file_named_like(snapshot_id: SnapshotId) -> str:
    """``[/file find where name~"<id>"]``: the ID holds only hex and ``-``; no volume file does."""
    return f"[/file find where name~{_snap_slot(snapshot_id).text}]"


def _remove_snapshot_files(snapshot_id: SnapshotId) -> str:
    found = _file_named_like(snapshot_id)
    return f":if ([:len {found}] > 0) do={{/file remove {found}}}"


# A line between the two prints of a snapshot script; no /disk or /file output is this word.
SNAPSHOT_SEPARATOR: Final = "rds-csi-snapshot-files"


def _print_snapshots(where_disk: str, where_file: str) -> tuple[str, ...]:
    """The disks, a separator line, then their files (for ``last-modified``)."""
    return (
        f"/disk print detail where {where_disk}",
        f':put "{SNAPSHOT_SEPARATOR}"',
        f"/file print detail where {where_file}",
    )


def split_snapshot_reply(body: str) -> tuple[str, str] | None:
    """The ``/disk`` and ``/file`` halves of a snapshot print (None: no separator)."""
    disks, sep, files = body.partition(SNAPSHOT_SEPARATOR)
    if not sep:
        return None
    return disks, files.lstrip("\r\n")


def print_snapshot(snapshot_id: SnapshotId, marker: str) -> Script:
    slot = _snap_slot(snapshot_id)
    return Script(
        _print_snapshots(f"slot={slot.text}", f"name~{slot.text}"),
        marker,
    )


def list_snapshots(marker: str) -> Script:
    pattern = RosValue(_Token(f'"{SNAPSHOTS_PATTERN}"'))
    files = RosValue(_Token('"snap-"'))
    return Script(_print_snapshots(f"slot~{pattern.text}", f"name~{files.text}"), marker)


def _copy(method: str, source_file: str, dest_file: str) -> str:
    """The data copy: ``/file copy`` of the image, or nothing (``copy-from`` on the add)."""
    if method == FILE_COPY:
        src = RosValue.string(source_file.lstrip("/"), field="path")
        dst = RosValue.string(dest_file.lstrip("/"), field="path")
        return f"/file copy {src.text} name={dst.text}; "
    if method == COPY_FROM:
        return ""
    raise InvalidArgument("snapshot_method", f"{method!r} is not one of {SNAPSHOT_METHODS}")


def _copy_from(method: str, source_slot: RosValue) -> list[tuple[str, RosValue]]:
    if method == COPY_FROM:
        return [("copy-from", RosValue(_Token(_find("/disk", "slot", source_slot))))]
    return []


def create_snapshot(snapshot_id: SnapshotId, source: Volume, method: str, marker: str) -> Script:
    """
    One round trip: if no disk has the snapshot's slot, remove any image a failed attempt
    left, copy the source's image, add the (unexported) disk on the copy; print it either way.
    The disk appears only after the copy, so a disk with the slot is a complete snapshot.
    """
    slot = _snap_slot(snapshot_id)
    source_slot = _slot(source.volume_id)
    dest = snapshot_file(source.path.base, snapshot_id)
    add = _args(
        [
            ("type", RosValue(_Token("file"))),
            *_copy_from(method, source_slot),
            ("file-path", RosValue.string(dest, field="path")),
            ("slot", slot),
            ("mount-filesystem", RosValue.boolean(value=False)),
            ("nvme-tcp-export", RosValue.boolean(value=False)),
        ]
    )
    copy = _copy(method, source.path.value, dest)
    return Script(
        (
            (
                f":if ([:len {_find('/disk', 'slot', slot)}] = 0) do={{"
                f"{_remove_snapshot_files(snapshot_id)}; {copy}/disk add {add}}}"
            ),
            *_print_snapshots(f"slot={slot.text}", f"name~{slot.text}"),
        ),
        marker,
    )


def delete_snapshot(snapshot_id: SnapshotId, marker: str) -> Script:
    """Remove the snapshot's disk (if any), then its image: RouterOS keeps it otherwise."""
    slot = _snap_slot(snapshot_id)
    return Script(
        (_remove_if_found("/disk", "slot", slot), _remove_snapshot_files(snapshot_id)), marker
    )


def populate_disk(
    volume: Volume, source_slot: str, source_file: str, method: str, marker: str
) -> Script:
    """
    ``create_disk`` whose image starts as a copy of ``source_file`` (a snapshot's or a
    volume's image, the disk ``source_slot``), grown to the volume's size.
    """
    slot = _slot(volume.volume_id)
    source = RosValue.string(source_slot, field="source")
    add = _args(
        [
            ("type", RosValue(_Token("file"))),
            *_copy_from(method, source),
            ("file-path", RosValue.string(volume.path.value, field="path")),
            ("file-size", RosValue.size(volume.size)),
            ("slot", slot),
            ("mount-filesystem", RosValue.boolean(value=False)),
            ("nvme-tcp-export", RosValue.boolean(value=True)),
            (
                "nvme-tcp-server-port",
                RosValue.integer(check_port(volume.nvme_port, field="nvme_port")),
            ),
            ("nvme-tcp-server-nqn", RosValue.string(volume.nqn.value, field="nqn")),
        ]
    )
    copy = _copy(method, source_file, volume.path.value)
    return Script(
        (
            (
                f":if ([:len {_find('/disk', 'slot', slot)}] = 0) do={{"
                f"{_remove_if_found('/file', 'name', _file_name(volume.path))}; "
                f"{copy}/disk add {add}}}"
            ),
            f"/disk print detail where slot={slot.text}",
        ),
        marker,
    )
