"""
``RouterOsRestSnapshots``: the RDS as a ``SnapshotBackend`` over REST, sharing the volume
backend's client and retries; the same shape and semantics as the SSH adapter's snapshots.

A snapshot is an unexported file disk whose slot is the snapshot ID, on a full copy of the
source's image at ``<source base>/<snapshot-id>.img``. The copy is ``POST /rest/file/copy``
(``file-copy``, default) then ``PUT /rest/disk``, or one ``PUT /rest/disk`` with
``copy-from`` set to the source disk's ``.id`` (``copy-from``). The ``/file/copy`` argument
names, and whether either copies the data, are unverified (emulator assumptions A32-A34).

Requests on a warm connection (``bench/snapshots.py --plane rest``), file-copy / copy-from:
create 7 / 6 (find the snapshot, find the source, find a stale image, copy, add, read the
snapshot and its image's time stamp); get 2 (the disk, its image's stamp); list 2 (every
disk, every file); delete 5 (read, remove the disk, list files, remove the image); restore
6 / 5 and clone 5 / 4, +2 (find, ``PATCH``) when the copy must grow; +1 for each stale image.

Each step finds before it acts and is retried whole on a transport failure: a disk with the
slot appears only after its copy is complete, so a retry finds the complete snapshot or
removes the image a cut-short copy left and copies again. When RouterOS refuses a request
midway, one removal of what the step made runs (best effort) so nothing half-made stays.
"""

from __future__ import annotations

import calendar
import contextlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import attrs

from rds_csi.adapters.routeros_rest import volumes as v
from rds_csi.adapters.routeros_rest.backend import RouterOsRestBackend
from rds_csi.adapters.routeros_rest.errors import RestRefusal, is_duplicate, refusal_to_domain
from rds_csi.adapters.routeros_rest.http import RestPath
from rds_csi.application.snapshots_port import SnapshotBackend
from rds_csi.domain import (
    BackendError,
    DomainError,
    InvalidArgument,
    MalformedOutput,
    Size,
    Snapshot,
    SnapshotId,
    SnapshotNotFound,
    Volume,
    VolumeId,
    VolumeNotFound,
)
from rds_csi.domain.identity import check_base_path


__all__ = ["COPY_FROM", "FILE_COPY", "SNAPSHOT_METHODS", "RouterOsRestSnapshots"]

log = logging.getLogger(__name__)
T = TypeVar("T")

FILE_COPY: Final = "file-copy"
COPY_FROM: Final = "copy-from"
SNAPSHOT_METHODS: Final = (FILE_COPY, COPY_FROM)
# ``/file/copy``'s argument names over REST: a guess (emulator assumption A34)
COPY_SOURCE_ARG: Final = "source"
COPY_DEST_ARG: Final = "name"

_DISK: Final = RestPath("disk")
_FILE: Final = RestPath("file")
_FILE_COPY: Final = RestPath("file/copy")
_NO_SUCH_ITEM: Final = re.compile(r"no such item", re.IGNORECASE)
_STAMP_FORMATS: Final = ("%Y-%m-%d %H:%M:%S", "%b/%d/%Y %H:%M:%S")  # 7.16+, older


@attrs.frozen
class _SnapDisk:
    id: str
    snapshot: Snapshot
    image: str  # its ``/file`` name (no leading slash)


def _stamp(record: v.Record) -> float:
    """
    A ``/file`` item's ``last-modified`` (7.16+) or ``creation-time`` as epoch seconds, read
    as UTC like the SSH adapter reads it (RouterOS prints local time without a zone); 0 when
    absent or unreadable.
    """
    for key in ("last-modified", "creation-time"):
        text = record.get(key)
        if not isinstance(text, str):
            continue
        for fmt in _STAMP_FORMATS:
            try:
                return float(calendar.timegm(time.strptime(text.strip().title(), fmt)))
            except ValueError:
                continue
    return 0.0


def _snap_disk(record: v.Record, raw: str, stamp: float) -> _SnapDisk | None:
    slot = record.get("slot")
    if not isinstance(slot, str) or not SnapshotId.is_valid(slot) or record.get("type") != "file":
        return None
    snapshot_id = SnapshotId(slot)
    size_text = record.get("size", record.get("file-size"))
    if not isinstance(size_text, str) or not size_text.isdigit():
        raise MalformedOutput(f"snapshot disk {slot} shows no size in bytes", raw)
    image = record.get("file-path") or record.get("model")
    if not isinstance(image, str) or not image:
        raise MalformedOutput(f"snapshot disk {slot} shows no file", raw)
    snapshot = Snapshot(snapshot_id, snapshot_id.source, Size(int(size_text)), stamp)
    return _SnapDisk(v.item_id(record, raw), snapshot, image.lstrip("/"))


def snapshot_image(base: str, snapshot_id: SnapshotId) -> str:
    """Where a snapshot's image goes, as a ``/file`` name: beside its source's."""
    return f"{check_base_path(base, field='path').strip('/')}/{snapshot_id}.img".lstrip("/")


def _snap_slot(snapshot_id: SnapshotId) -> str:
    if not isinstance(snapshot_id, SnapshotId):
        raise InvalidArgument("snapshot_id", f"{snapshot_id!r} is not a SnapshotId")
    return v.safe(snapshot_id.value, field="snapshot_id")


class RouterOsRestSnapshots(SnapshotBackend):
    """
    Args:
        volumes: The REST volume backend whose client, retries and metrics are shared.
        method: ``file-copy`` or ``copy-from``.
    """

    def __init__(self, volumes: RouterOsRestBackend, *, method: str = FILE_COPY) -> None:
        if method not in SNAPSHOT_METHODS:
            raise ValueError(f"snapshot method {method!r}: use one of {SNAPSHOT_METHODS}")
        self._volumes = volumes
        self._client = volumes.client
        self._method = method

    @property
    def method(self) -> str:
        return self._method

    # --- plumbing -------------------------------------------------------------------------

    def _run(self, operation: str, action: str, step: Callable[[], T]) -> T:
        try:
            return self._volumes.retrying(operation, step)
        except RestRefusal as exc:
            raise refusal_to_domain(exc, action) from None

    def _find(self, operation: str, snapshot_id: SnapshotId) -> _SnapDisk | None:
        """The snapshot's disk (one try), with its image's time stamp."""
        slot = _snap_slot(snapshot_id)
        reply = self._client.request(operation, "GET", _DISK, query={"slot": slot})
        mine = [r for r in v.records(reply.doc, reply.raw) if r.get("slot") == slot]
        if len(mine) > 1:
            raise MalformedOutput(f"the RDS lists slot {snapshot_id} more than once", reply.raw)
        found = _snap_disk(mine[0], reply.raw, 0.0) if mine else None
        if found is None:
            return None
        return attrs.evolve(
            found,
            snapshot=attrs.evolve(found.snapshot, created_at=self._stamp(operation, found.image)),
        )

    def _stamp(self, operation: str, name: str) -> float:
        reply = self._client.request(
            operation, "GET", _FILE, query={"name": v.safe(name, field="path")}
        )
        files = [r for r in v.records(reply.doc, reply.raw) if r.get("name") == name]
        return _stamp(files[0]) if files else 0.0

    def _remove_file(self, operation: str, name: str) -> None:
        """Remove the ``/file`` named exactly ``name``, if there is one."""
        wanted = v.safe(name, field="path")
        reply = self._client.request(operation, "GET", _FILE, query={"name": wanted})
        for record in v.records(reply.doc, reply.raw):
            if record.get("name") == wanted:
                file_id = v.item_id(record, reply.raw)
                self._volumes.delete_item(operation, RestPath("file", file_id))

    def _copy(self, operation: str, source_id: str, source_image: str, dest: str) -> str | None:
        """The data copy; the ``copy-from`` value for the add (None: already copied)."""
        if self._method == COPY_FROM:
            return source_id
        body = {
            COPY_SOURCE_ARG: v.safe(source_image.lstrip("/"), field="path"),
            COPY_DEST_ARG: v.safe(dest, field="path"),
        }
        self._client.request(operation, "POST", _FILE_COPY, body=body)
        return None

    def _cleanup(self, what: str, remove: Callable[[], None]) -> None:
        """After RouterOS refused a request midway: remove what the step made (best effort)."""
        try:
            remove()
        except (DomainError, RestRefusal) as exc:
            log.warning("could not remove half-made %s: %s", what, exc)

    # --- the port -------------------------------------------------------------------------

    def create_snapshot(self, snapshot_id: SnapshotId, source: Volume) -> Snapshot:
        dest = snapshot_image(source.path.base, snapshot_id)
        operation = "create_snapshot"

        def step() -> _SnapDisk | None:
            found = self._find(operation, snapshot_id)
            if found is not None:
                return found
            origin = self._volumes.find_disk(operation, source.volume_id)
            if origin is None:
                raise VolumeNotFound(str(source.volume_id))
            # a disk appears only on a complete copy: an image without one was cut short
            self._remove_file(operation, dest)
            copy_from = self._copy(operation, origin[0], origin[1].path.value, dest)
            body = {
                "type": "file",
                "file-path": dest,
                "slot": _snap_slot(snapshot_id),
                "mount-filesystem": "false",
                "nvme-tcp-export": "false",
            }
            if copy_from is not None:
                body["copy-from"] = copy_from
            self._client.request(operation, "PUT", _DISK, body=body)
            return self._find(operation, snapshot_id)

        try:
            made = self._volumes.retrying(operation, step)
        except RestRefusal as exc:
            if is_duplicate(exc):  # a concurrent create of it won the slot: that one stands
                made = self._run(
                    operation, "read the snapshot", lambda: self._find(operation, snapshot_id)
                )
                if made is not None:
                    return made.snapshot
            self._cleanup(f"snapshot {snapshot_id}", lambda: self.delete_snapshot(snapshot_id))
            if _NO_SUCH_ITEM.search(exc.text):  # the source went away meanwhile
                raise VolumeNotFound(str(source.volume_id), "it disappeared") from None
            action = f"copy {source.volume_id} into snapshot {snapshot_id}"
            raise refusal_to_domain(exc, action) from None
        if made is None:
            raise BackendError(f"snapshot {snapshot_id} was not listed after its creation")
        return made.snapshot

    def get_snapshot(self, snapshot_id: SnapshotId) -> Snapshot:
        found = self._run(
            "inspect_snapshot",
            f"inspect snapshot {snapshot_id}",
            lambda: self._find("inspect_snapshot", snapshot_id),
        )
        if found is None:
            raise SnapshotNotFound(str(snapshot_id))
        return found.snapshot

    def delete_snapshot(self, snapshot_id: SnapshotId) -> None:
        operation = "delete_snapshot"
        slot = _snap_slot(snapshot_id)

        def step() -> None:
            found = self._find(operation, snapshot_id)
            if found is not None:
                self._volumes.delete_item(operation, RestPath("disk", found.id))
            # RouterOS keeps a removed disk's file; the image may also be a cut-short copy
            reply = self._client.request(operation, "GET", _FILE, query={".proplist": "name"})
            for record in v.records(reply.doc, reply.raw):
                name = record.get("name")
                if isinstance(name, str) and slot in name:
                    self._volumes.delete_item(
                        operation, RestPath("file", v.item_id(record, reply.raw))
                    )

        self._run(operation, f"delete snapshot {snapshot_id}", step)

    def list_snapshots(self) -> Sequence[Snapshot]:
        operation = "list_snapshots"

        def step() -> list[Snapshot]:
            disks = self._client.request(operation, "GET", _DISK)
            files = self._client.request(operation, "GET", _FILE)
            stamps = {
                r["name"]: _stamp(r)
                for r in v.records(files.doc, files.raw)
                if isinstance(r.get("name"), str)
            }
            found = []
            for record in v.records(disks.doc, disks.raw):
                snap = _snap_disk(record, disks.raw, 0.0)
                if snap is not None:
                    created = stamps.get(snap.image, 0.0)
                    found.append(attrs.evolve(snap.snapshot, created_at=created))
            return found

        return self._run(operation, "list the snapshots", step)

    def _populate(
        self, volume: Volume, source: Callable[[str], tuple[str, str]], what: str
    ) -> Volume:
        """
        Make ``volume`` from a copy of the disk ``source`` finds (its ``.id`` and image), as
        ``StorageBackend.create_volume`` makes one; grown to ``volume.size`` after the copy.
        """
        operation = "populate"
        dest = v.file_name(volume.path)

        def step() -> Volume:
            found = self._volumes.find_disk(operation, volume.volume_id)
            if found is not None:
                return found[1]
            origin_id, origin_image = source(operation)
            self._remove_file(operation, dest)  # a stale image of this volume is never reused
            copy_from = self._copy(operation, origin_id, origin_image, dest)
            body = v.create_body(volume)
            if copy_from is not None:
                body["copy-from"] = copy_from
            reply = self._client.request(operation, "PUT", _DISK, body=body)
            made = v.volume_from(v.one_record(reply.doc, reply.raw), reply.raw)
            if made is None:
                raise MalformedOutput(
                    f"the RDS made disk {volume.volume_id} unlike asked", reply.raw
                )
            return made

        try:
            made = self._volumes.retrying(operation, step)
        except RestRefusal as exc:
            if is_duplicate(exc):  # a concurrent create of it won the slot: that one stands
                with contextlib.suppress(VolumeNotFound):
                    return self._volumes.get_volume(volume.volume_id)

            def undo() -> None:
                self._volumes.delete_volume(volume.volume_id)
                # a copy whose disk was refused: its image may be under a base not yet seen
                self._volumes.retrying(operation, lambda: self._remove_file(operation, dest))

            self._cleanup(f"volume {volume.volume_id}", undo)
            raise refusal_to_domain(exc, f"make {volume.volume_id} from {what}") from None
        if made.path.value.lstrip("/") == volume.path.value.lstrip("/"):
            made = attrs.evolve(made, path=volume.path)  # keep the caller's spelling
        if made.size < volume.size:
            # the copy kept its source's size (copy-from may ignore file-size): grow it
            made = self._volumes.resize_volume(volume.volume_id, volume.size)
        return made

    def restore_snapshot(self, snapshot_id: SnapshotId, volume: Volume) -> Volume:
        def source(operation: str) -> tuple[str, str]:
            found = self._find(operation, snapshot_id)
            if found is None:
                raise SnapshotNotFound(str(snapshot_id))
            return found.id, found.image

        return self._populate(volume, source, f"snapshot {snapshot_id}")

    def clone_volume(self, source: VolumeId, volume: Volume) -> Volume:
        def origin(operation: str) -> tuple[str, str]:
            found = self._volumes.find_disk(operation, source)
            if found is None:
                raise VolumeNotFound(str(source))
            return found[0], found[1].path.value

        return self._populate(volume, origin, f"volume {source}")
