"""
Snapshots of an ``InMemoryRds``: the same contract as the SSH adapter's, without data.

A snapshot takes room in the pool like the RDS's full copy does: it is counted against the
pool's free space here, so CapacityExhausted behaves as on the box.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import attrs

from rds_csi.adapters.fake_rds.backend import FaultPlan, InMemoryRds
from rds_csi.application.snapshots_port import SnapshotBackend
from rds_csi.domain import (
    CapacityExhausted,
    Size,
    Snapshot,
    SnapshotId,
    SnapshotNotFound,
    Volume,
    VolumeId,
)


__all__ = ["InMemorySnapshots"]


class InMemorySnapshots(SnapshotBackend):
    """
    Attributes:
        faults: Faults and latency for the snapshot operations.
        calls: Every operation name in call order.
    """

    def __init__(self, rds: InMemoryRds, clock: Callable[[], float] = time.time) -> None:
        self._rds = rds
        self._clock = clock
        self._snapshots: dict[SnapshotId, Snapshot] = {}
        self._lock = threading.Lock()
        self.faults = FaultPlan()
        self.calls: list[str] = []

    def _enter(self, operation: str) -> None:
        self.calls.append(operation)
        self.faults.before(operation)

    def _free(self) -> int:
        used = sum(s.size.bytes for s in self._snapshots.values())
        return self._rds.capacity().free.bytes - used

    def create_snapshot(self, snapshot_id: SnapshotId, source: Volume) -> Snapshot:
        self._enter("create_snapshot")
        with self._lock:
            existing = self._snapshots.get(snapshot_id)
            if existing is not None:
                return existing
            source = self._rds.get_volume(source.volume_id)
            if source.size.bytes > self._free():
                raise CapacityExhausted(
                    f"not enough space on the RDS for snapshot {snapshot_id}: "
                    f"{source.size} asked, {Size(max(self._free(), 0))} free"
                )
            made = Snapshot(snapshot_id, source.volume_id, source.size, self._clock())
            self._snapshots[snapshot_id] = made
            return made

    def get_snapshot(self, snapshot_id: SnapshotId) -> Snapshot:
        self._enter("get_snapshot")
        with self._lock:
            try:
                return self._snapshots[snapshot_id]
            except KeyError:
                raise SnapshotNotFound(str(snapshot_id)) from None

    def delete_snapshot(self, snapshot_id: SnapshotId) -> None:
        self._enter("delete_snapshot")
        with self._lock:
            self._snapshots.pop(snapshot_id, None)

    def list_snapshots(self) -> Sequence[Snapshot]:
        self._enter("list_snapshots")
        with self._lock:
            return list(self._snapshots.values())

    def _populate(self, size: Size, volume: Volume) -> Volume:
        if any(v.volume_id == volume.volume_id for v in self._rds.list_volumes()):
            return self._rds.get_volume(volume.volume_id)  # idempotent, like create_volume
        wanted = volume if volume.size >= size else attrs.evolve(volume, size=size)
        if wanted.size.bytes > self._free():
            raise CapacityExhausted(
                f"not enough space on the RDS for {volume.volume_id}: {wanted.size} asked"
            )
        return self._rds.create_volume(wanted)

    def restore_snapshot(self, snapshot_id: SnapshotId, volume: Volume) -> Volume:
        self._enter("restore_snapshot")
        with self._lock:
            snapshot = self._snapshots.get(snapshot_id)
            if snapshot is None:
                raise SnapshotNotFound(str(snapshot_id))
            return self._populate(snapshot.size, volume)

    def clone_volume(self, source: VolumeId, volume: Volume) -> Volume:
        self._enter("clone_volume")
        with self._lock:
            return self._populate(self._rds.get_volume(source).size, volume)
