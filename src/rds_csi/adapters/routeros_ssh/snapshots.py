"""
``RouterOsSnapshots``: the RDS as a ``SnapshotBackend``, over the same connection as volumes.

A snapshot is an unexported file disk whose slot is the snapshot ID, on a full copy of the
source's image at ``<source base>/<snapshot-id>.img``; the Go driver's snapshots have the same
shape and are read the same way. The copy is made by ``/file copy`` (``file-copy``, default)
or by ``/disk add copy-from=`` (``copy-from``, the Go driver's command); whether either copies
the data, and whether instantly, is unverified on hardware (emulator assumptions A32, A33).

Round trips on a warm connection: create 1 (one line that copies, adds and prints), get 1,
list 1, delete 1, restore 2 (print the snapshot, then copy-add-print), clone 2 (print the
source, then copy-add-print); a print of snapshots is one line holding a /disk and a /file
print (the image's time stamp is the creation time). A create or restore RouterOS refused
midway runs one guarded removal so nothing half-made stays; after a dropped connection or a
garbled answer nothing is removed (the line may have found a complete copy), and the retry
removes an image left without its disk before copying again.
"""

from __future__ import annotations

import calendar
import logging
import re
import time
from collections.abc import Sequence
from typing import Final

import attrs

from rds_csi.adapters.routeros_ssh import commands
from rds_csi.adapters.routeros_ssh.backend import RouterOsSshBackend
from rds_csi.adapters.routeros_ssh.parse import Record, RouterOsError, parse_detail
from rds_csi.adapters.routeros_ssh.volumes import parse_bytes
from rds_csi.application.snapshots_port import SnapshotBackend
from rds_csi.domain import (
    BackendError,
    DomainError,
    MalformedOutput,
    Size,
    Snapshot,
    SnapshotId,
    SnapshotNotFound,
    Volume,
    VolumeId,
    VolumeNotFound,
)


__all__ = ["RouterOsSnapshots"]

log = logging.getLogger(__name__)
_NO_SUCH_ITEM: Final = re.compile(r"no such item", re.IGNORECASE)
_SNAP_IN_TEXT: Final = re.compile(
    r"snap-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-at-[0-9a-f]{10}"
)
# /file's stamps: 7.16+ last-modified=2024-11-25 13:14:28; older creation-time=nov/25/2024 ...
_STAMP: Final = re.compile(
    r"(?:last-modified|creation-time)=\"?"
    r"(?:(?P<iso>\d{4}-\d{2}-\d{2}) ?(?P<t1>\d{2}:\d{2}:\d{2})"
    r"|(?P<old>[a-z]{3}/\d{2}/\d{4}) ?(?P<t2>\d{2}:\d{2}:\d{2}))"
)


def _stamps(files_text: str) -> dict[str, float]:
    """
    Each snapshot image's time stamp in a ``/file print detail``, read leniently: its rows
    hold unquoted values with spaces (``type=.img file``) that no key=value parser reads, and
    may wrap mid-token, so the lines are joined and each snapshot ID is paired with the first
    stamp after it. RouterOS prints the router's local time without a zone; it is read as
    UTC (unverified; the emulator prints its host's local time). Missing stamps give 0.
    """
    joined = re.sub(r"\r?\n *", "", files_text)
    found: dict[str, float] = {}
    ids = list(_SNAP_IN_TEXT.finditer(joined))
    for i, match in enumerate(ids):
        end = ids[i + 1].start() if i + 1 < len(ids) else len(joined)
        stamp = _STAMP.search(joined, match.end(), end)
        if stamp is None:
            continue
        try:
            if stamp.group("iso"):
                parsed = time.strptime(f"{stamp['iso']} {stamp['t1']}", "%Y-%m-%d %H:%M:%S")
            else:
                parsed = time.strptime(f"{stamp['old'].title()} {stamp['t2']}", "%b/%d/%Y %H:%M:%S")
        except ValueError:
            continue
        found.setdefault(match.group(0), float(calendar.timegm(parsed)))
    return found


def _snapshot(record: Record, stamps: dict[str, float], raw: str) -> Snapshot | None:
    slot = record.fields.get("slot", "")
    if not SnapshotId.is_valid(slot) or record.fields.get("type") != "file":
        return None
    snapshot_id = SnapshotId(slot)
    size = parse_bytes(record.fields.get("size", ""), field="size", raw=raw)
    return Snapshot(snapshot_id, snapshot_id.source, Size(size), stamps.get(slot, 0.0))


def _image(record: Record, raw: str) -> str:
    path = record.fields.get("file-path") or record.fields.get("model")
    if not path:
        raise MalformedOutput(f"snapshot disk {record.fields.get('slot')} shows no file", raw)
    return path


def _halves(body: str) -> tuple[str, str]:
    halves = commands.split_snapshot_reply(body)
    if halves is None:
        raise MalformedOutput("the RDS's snapshot print lacks its separator line", body)
    return halves


def _read(body: str) -> list[tuple[Snapshot, str]]:
    """Every snapshot in a snapshot print, with the path of its image."""
    disks_text, files_text = _halves(body)
    stamps = _stamps(files_text)
    found = []
    for record in parse_detail(disks_text):
        snap = _snapshot(record, stamps, disks_text)
        if snap is not None:
            found.append((snap, _image(record, disks_text)))
    return found


class RouterOsSnapshots(SnapshotBackend):
    """
    Args:
        volumes: The volume backend whose connection, retries and metrics are shared.
        method: ``file-copy`` or ``copy-from``.
    """

    def __init__(self, volumes: RouterOsSshBackend, *, method: str = commands.FILE_COPY) -> None:
        if method not in commands.SNAPSHOT_METHODS:
            raise ValueError(f"snapshot method {method!r}: use one of {commands.SNAPSHOT_METHODS}")
        self._volumes = volumes
        self._method = method

    def _one(self, snapshot_id: SnapshotId, body: str) -> tuple[Snapshot, str] | None:
        mine = [s for s in _read(body) if s[0].snapshot_id == snapshot_id]
        return mine[0] if mine else None

    def _lookup(self, snapshot_id: SnapshotId) -> tuple[Snapshot, str] | None:
        return self._volumes.command(
            "inspect_snapshot",
            lambda m: commands.print_snapshot(snapshot_id, m),
            lambda body: self._one(snapshot_id, body),
        )

    def _cleanup(self, operation: str, what: str) -> None:
        """
        After RouterOS refused the line midway: one guarded removal, so nothing half-made
        stays (best effort). The guard in the line means it made everything it touched.
        """
        try:
            if operation == "snapshot":
                self.delete_snapshot(SnapshotId(what))
            else:
                self._volumes.delete_volume(VolumeId(what))
        except DomainError as exc:
            log.warning("could not remove half-made %s %s: %s", operation, what, exc)

    def create_snapshot(self, snapshot_id: SnapshotId, source: Volume) -> Snapshot:
        action = f"copy {source.volume_id} into snapshot {snapshot_id}"
        try:
            made = self._volumes.command(
                "create_snapshot",
                lambda m: commands.create_snapshot(snapshot_id, source, self._method, m),
                lambda body: self._one(snapshot_id, body),
            )
        except RouterOsError as exc:
            self._cleanup("snapshot", snapshot_id.value)
            if _NO_SUCH_ITEM.search(exc.text):  # the source went away meanwhile
                raise VolumeNotFound(str(source.volume_id), "it disappeared") from None
            raise self._volumes.refusal(exc.text, action) from None
        # Any other failure (a dropped connection, a garbled answer) is not cleaned here: the
        # line may have been a repeat that found a complete snapshot, and a copy cut short
        # left no disk, so the next attempt removes its image before copying again.
        if made is None:
            raise BackendError(f"snapshot {snapshot_id} was not listed after its creation")
        return made[0]

    def get_snapshot(self, snapshot_id: SnapshotId) -> Snapshot:
        found = self._lookup(snapshot_id)
        if found is None:
            raise SnapshotNotFound(str(snapshot_id))
        return found[0]

    def delete_snapshot(self, snapshot_id: SnapshotId) -> None:
        for attempt in range(2):
            try:
                self._volumes.command(
                    "delete_snapshot",
                    lambda m: commands.delete_snapshot(snapshot_id, m),
                    _nothing,
                )
            except RouterOsError as exc:
                # a concurrent delete between find and remove; the guarded script may rerun
                if not _NO_SUCH_ITEM.search(exc.text) or attempt:
                    raise self._volumes.refusal(
                        exc.text, f"delete snapshot {snapshot_id}"
                    ) from None
            else:
                return

    def list_snapshots(self) -> Sequence[Snapshot]:
        return self._volumes.command(
            "list_snapshots", commands.list_snapshots, lambda body: [s for s, _ in _read(body)]
        )

    def _populate(self, volume: Volume, source_slot: str, source_file: str, what: str) -> Volume:
        try:
            made = self._volumes.command(
                "populate",
                lambda m: commands.populate_disk(volume, source_slot, source_file, self._method, m),
                lambda body: self._volumes.read_volume(volume.volume_id, body),
            )
        except RouterOsError as exc:
            self._cleanup("volume", volume.volume_id.value)
            raise self._volumes.refusal(exc.text, f"make {volume.volume_id} from {what}") from None
        # as in create_snapshot: only a refused line is known to have made nothing complete
        if made is None:
            raise BackendError(f"disk {volume.volume_id} was not listed after its creation")
        if made.path.value.lstrip("/") == volume.path.value.lstrip("/"):
            made = attrs.evolve(made, path=volume.path)  # RouterOS adds a leading "/"
        if made.size < volume.size:
            # the copy kept its source's size (copy-from may ignore file-size): grow it
            made = self._volumes.resize_volume(volume.volume_id, volume.size)
        return made

    def restore_snapshot(self, snapshot_id: SnapshotId, volume: Volume) -> Volume:
        found = self._lookup(snapshot_id)
        if found is None:
            raise SnapshotNotFound(str(snapshot_id))
        return self._populate(volume, snapshot_id.value, found[1], f"snapshot {snapshot_id}")

    def clone_volume(self, source: VolumeId, volume: Volume) -> Volume:
        origin = self._volumes.get_volume(source)
        return self._populate(volume, source.value, origin.path.value, f"volume {source}")


def _nothing(body: str) -> None:
    if body.strip():
        raise MalformedOutput("the RDS printed something where it prints nothing", body)
