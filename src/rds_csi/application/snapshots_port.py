"""
The ``SnapshotBackend`` port: point-in-time copies of volumes on the RDS, and volumes made
from them (restore) or from another volume (clone).

A snapshot is a file disk whose slot is the snapshot ID, not exported, holding a full copy of
the source's image; it is independent of its source. Re-exported by ``application.ports``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from rds_csi.domain import Snapshot, SnapshotId, Volume, VolumeId


__all__ = ["SnapshotBackend"]


@runtime_checkable
class SnapshotBackend(Protocol):
    def create_snapshot(self, snapshot_id: SnapshotId, source: Volume) -> Snapshot:
        """
        Copy the image of ``source`` (the volume ``snapshot_id.source``, as ``get_volume``
        returned it) into a new, unexported file disk with the snapshot ID as its slot.
        Returns when the copy is complete (``ready``).

        Idempotent: a snapshot with this ID is returned unchanged. A half-made copy (an
        image without its disk, left by an interrupted attempt) is removed and made again; a
        failure leaves nothing behind. The source is never modified.

        Raises:
            VolumeNotFound: the source does not exist (any more).
            CapacityExhausted: the pool has no room for the copy.
            BackendUnavailable, BackendError: as for ``StorageBackend``.
        """
        ...

    def get_snapshot(self, snapshot_id: SnapshotId) -> Snapshot:
        """
        Raises:
            SnapshotNotFound: no disk has this slot.
            BackendUnavailable, BackendError.
        """
        ...

    def delete_snapshot(self, snapshot_id: SnapshotId) -> None:
        """
        Remove the snapshot's disk and image. Idempotent: a missing snapshot is success.

        Raises:
            BackendUnavailable, BackendError.
        """
        ...

    def list_snapshots(self) -> Sequence[Snapshot]:
        """
        Every snapshot of ours (slot ``snap-<uuid>-at-<tag>``), in any order.

        Raises:
            BackendUnavailable, BackendError.
        """
        ...

    def restore_snapshot(self, snapshot_id: SnapshotId, volume: Volume) -> Volume:
        """
        Make ``volume`` (an exported disk, as ``StorageBackend.create_volume``) holding the
        snapshot's data, grown to ``volume.size`` when that is larger. Idempotent like
        ``create_volume``: an existing disk with the slot is returned unchanged. A failure
        leaves no half-made disk or image.

        Raises:
            SnapshotNotFound: no such snapshot.
            CapacityExhausted, BackendUnavailable, BackendError.
        """
        ...

    def clone_volume(self, source: VolumeId, volume: Volume) -> Volume:
        """
        As ``restore_snapshot``, from the current data of the volume ``source``.

        Raises:
            VolumeNotFound: no such source.
            CapacityExhausted, BackendUnavailable, BackendError.
        """
        ...
