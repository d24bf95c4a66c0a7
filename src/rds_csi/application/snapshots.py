"""
Snapshot use cases: CreateSnapshot, DeleteSnapshot, ListSnapshots, and making a volume from a
snapshot (restore) or from another volume (clone).

Snapshots are independent full copies, so a volume with snapshots may be deleted and its
snapshots stay usable. A snapshot being restored from is locked for the restore: deleting it
meanwhile is ABORTED (retried by the CO), never half-done.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
from collections.abc import Callable
from contextlib import ExitStack
from typing import Final

import attrs

from rds_csi.application.copies import PendingCopies, Running, measured
from rds_csi.application.ports import Locks, Metrics, StorageBackend
from rds_csi.application.provisioning import check_name
from rds_csi.application.snapshots_port import SnapshotBackend
from rds_csi.domain import (
    AlreadyExists,
    CapacityRange,
    Conflict,
    ContentSource,
    InvalidArgument,
    InvalidPageToken,
    NotFound,
    OperationInProgress,
    OutOfRange,
    Size,
    Snapshot,
    SnapshotId,
    Volume,
    VolumeId,
    parse_snapshot_reference,
    parse_volume_reference,
)


__all__ = [
    "CreateSnapshot",
    "DeleteSnapshot",
    "ListSnapshots",
    "PopulateVolume",
    "SnapshotPage",
]

DEFAULT_READY_WAIT: Final = 5.0
_TOKEN_PREFIX: Final = "s1:"  # noqa: S105 - a format tag, not a secret


class CreateSnapshot:
    """
    Cut a snapshot for a CSI name, or find the one cut for it before.

    Round trips: a list (to find the name on another source), the source, then the copy.
    The source volume is locked from the start of the copy to its end. A copy that
    outlasts ``ready_wait`` seconds goes on in the background and the snapshot is reported
    not ready; the CO's next call reports it ready, or the copy's error.
    """

    def __init__(
        self,
        snapshots: SnapshotBackend,
        volumes: StorageBackend,
        locks: Locks,
        copies: PendingCopies,
        *,
        clock: Callable[[], float],
        ready_wait: float = DEFAULT_READY_WAIT,
        metrics: Metrics | None = None,
    ) -> None:
        self._snapshots = snapshots
        self._volumes = volumes
        self._locks = locks
        self._copies = copies
        self._clock = clock
        self._ready_wait = ready_wait
        self._metrics = metrics

    def __call__(self, name: str, raw_source: str) -> Snapshot:
        check_name(name)
        source = parse_volume_reference(raw_source, field="source_volume_id")
        snapshot_id = SnapshotId.for_name(name, source)
        with self._locks.hold(str(snapshot_id)):
            running = self._copies.get(snapshot_id)
            if running is not None:
                return self._outcome(snapshot_id, running)
            for existing in self._snapshots.list_snapshots():
                if existing.snapshot_id == snapshot_id:
                    return existing
                if existing.snapshot_id.tag == snapshot_id.tag:
                    raise AlreadyExists(
                        f"snapshot name {name!r} is already used for a snapshot of "
                        f"{existing.source_volume_id}, not of {source}"
                    )
            # The source is held until the copy ends, in the background too: deleting, growing
            # or cloning it meanwhile is ABORTED (retried), never raced with the copy.
            source_held = ExitStack()
            source_held.enter_context(self._locks.hold(str(source)))
            try:
                origin = self._volumes.get_volume(source)
            except BaseException:
                source_held.close()
                raise

            def copy() -> Snapshot:
                with source_held:
                    return measured(
                        self._metrics,
                        "snapshot",
                        lambda: self._snapshots.create_snapshot(snapshot_id, origin),
                    )

            future = self._copies.start(copy)
            try:
                return future.result(timeout=self._ready_wait)
            except concurrent.futures.TimeoutError:
                placeholder = Snapshot(snapshot_id, source, origin.size, self._clock(), ready=False)
                self._copies.track(snapshot_id, Running(placeholder, future))
                return placeholder

    def _outcome(self, snapshot_id: SnapshotId, running: Running) -> Snapshot:
        if not running.future.done():
            return running.placeholder
        self._copies.forget(snapshot_id)
        made = running.future.result()  # re-raises the copy's error, reported once
        # keep the time first reported: a repeat must answer the same creation_time
        return attrs.evolve(made, created_at=running.placeholder.created_at)


class DeleteSnapshot:
    """Remove a snapshot. Unknown, foreign or already-deleted snapshots are success."""

    def __init__(self, snapshots: SnapshotBackend, locks: Locks, copies: PendingCopies) -> None:
        self._snapshots = snapshots
        self._locks = locks
        self._copies = copies

    def __call__(self, raw_snapshot_id: str) -> None:
        try:
            snapshot_id = parse_snapshot_reference(raw_snapshot_id)
        except NotFound:
            return
        if self._copies.is_running(snapshot_id):
            raise OperationInProgress(str(snapshot_id))
        with self._locks.hold(str(snapshot_id)):
            self._snapshots.delete_snapshot(snapshot_id)
            self._copies.forget(snapshot_id)


@attrs.frozen
class SnapshotPage:
    snapshots: tuple[Snapshot, ...]
    next_token: str = ""


def _encode_token(after: SnapshotId) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{after}".encode()).decode()


def _decode_token(token: str) -> SnapshotId:
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidPageToken(token) from None
    body = text.removeprefix(_TOKEN_PREFIX)
    if body == text or not SnapshotId.is_valid(body):
        raise InvalidPageToken(token)
    return SnapshotId(body)


class ListSnapshots:
    """
    Our snapshots in ID order, a page at a time, optionally filtered by snapshot ID or source
    volume. A filter naming nothing of ours gives an empty list (csi-sanity expects it).
    Copies still running are listed with ``ready=False``.
    """

    def __init__(self, snapshots: SnapshotBackend, copies: PendingCopies) -> None:
        self._snapshots = snapshots
        self._copies = copies

    def __call__(
        self,
        max_entries: int = 0,
        starting_token: str = "",
        snapshot_id: str = "",
        source_volume_id: str = "",
    ) -> SnapshotPage:
        if max_entries < 0:
            raise InvalidArgument("max_entries", f"must not be negative, got {max_entries}")
        after = _decode_token(starting_token) if starting_token else None
        if snapshot_id and not SnapshotId.is_valid(snapshot_id):
            return SnapshotPage(())
        if source_volume_id and not VolumeId.is_valid(source_volume_id):
            return SnapshotPage(())
        found = {s.snapshot_id: s for s in self._copies.placeholders()}
        found.update({s.snapshot_id: s for s in self._snapshots.list_snapshots()})
        listed = sorted(found.values(), key=lambda s: s.snapshot_id.value)
        if snapshot_id:
            listed = [s for s in listed if s.snapshot_id.value == snapshot_id]
        if source_volume_id:
            listed = [s for s in listed if s.source_volume_id.value == source_volume_id]
        if after is not None:
            listed = [s for s in listed if s.snapshot_id.value > after.value]
        if max_entries and len(listed) > max_entries:
            page = tuple(listed[:max_entries])
            return SnapshotPage(page, _encode_token(page[-1].snapshot_id))
        return SnapshotPage(tuple(listed))


class PopulateVolume:
    """
    Make a new volume from a snapshot or a volume (CreateVolume's content source).

    Size rules (CSI): the new volume is at least the source's size; a ``limit_bytes`` below
    it is OUT_OF_RANGE; a larger request is honoured by growing the copy (the node grows the
    filesystem when it stages the volume).
    """

    def __init__(
        self,
        snapshots: SnapshotBackend,
        volumes: StorageBackend,
        locks: Locks,
        copies: PendingCopies,
        metrics: Metrics | None = None,
    ) -> None:
        self._snapshots = snapshots
        self._volumes = volumes
        self._locks = locks
        self._copies = copies
        self._metrics = metrics

    def __call__(self, wanted: Volume, capacity: CapacityRange, source: ContentSource) -> Volume:
        if source.snapshot_id:
            return self._restore(wanted, capacity, source.snapshot_id)
        return self._clone(wanted, capacity, source.volume_id)

    def _restore(self, wanted: Volume, capacity: CapacityRange, raw: str) -> Volume:
        field = "volume_content_source.snapshot.snapshot_id"
        snapshot_id = parse_snapshot_reference(raw, field=field)
        if self._copies.is_running(snapshot_id):
            raise Conflict(
                f"snapshot {snapshot_id} is not ready to use yet (its copy is still running); "
                "retry when it is"
            )
        with self._locks.hold(str(snapshot_id)):
            snapshot = self._snapshots.get_snapshot(snapshot_id)
            size = _size(wanted.size, capacity, snapshot.size, f"snapshot {snapshot_id}")
            target = attrs.evolve(wanted, size=size)
            return measured(
                self._metrics,
                "restore",
                lambda: self._snapshots.restore_snapshot(snapshot_id, target),
            )

    def _clone(self, wanted: Volume, capacity: CapacityRange, raw: str) -> Volume:
        source_id = parse_volume_reference(raw, field="volume_content_source.volume.volume_id")
        if source_id == wanted.volume_id:
            raise InvalidArgument(
                "volume_content_source.volume.volume_id", "a volume cannot be cloned onto itself"
            )
        with self._locks.hold(str(source_id)):
            source = self._volumes.get_volume(source_id)
            size = _size(wanted.size, capacity, source.size, f"volume {source_id}")
            target = attrs.evolve(wanted, size=size)
            return measured(
                self._metrics, "clone", lambda: self._snapshots.clone_volume(source_id, target)
            )


def _size(requested: Size, capacity: CapacityRange, source: Size, what: str) -> Size:
    if capacity.limit and source.bytes > capacity.limit:
        raise OutOfRange(
            f"capacity_range: {what} holds {source.bytes} bytes, above limit_bytes "
            f"{capacity.limit}; a volume made from it is at least that big"
        )
    return max(requested, source)
