"""
An RDS in memory: a pool of fixed size, disks keyed by slot, the same errors as the real one.

It holds itself to the ``StorageBackend`` contract (the suite in ``tests/contract`` runs it
beside the SSH adapter), so a test that passes here means something on the real box. Faults
and latency can be switched on at runtime.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence

import attrs

from rds_csi.application.ports import StorageBackend
from rds_csi.domain import (
    BackendUnavailable,
    CapacityExhausted,
    CapacityReport,
    DomainError,
    Size,
    Volume,
    VolumeId,
    VolumeNotFound,
)
from rds_csi.domain.size import TIB


__all__ = ["FaultPlan", "InMemoryRds"]


@attrs.define
class _Fault:
    remaining: int
    error: Callable[[], DomainError]
    operations: frozenset[str] | None


@attrs.define
class FaultPlan:
    """
    What the next calls should suffer: an error for the next N, and a fixed latency.

    Attributes:
        latency: Seconds every call sleeps before answering (``clear`` cuts the sleep short).
    """

    latency: float = 0.0
    _faults: list[_Fault] = attrs.field(factory=list)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)
    # Set by clear(): calls sleeping out the latency return at once (a test's teardown).
    _wake: threading.Event = attrs.field(factory=threading.Event)

    def fail_next(
        self,
        count: int,
        error: Callable[[], DomainError] = lambda: BackendUnavailable("injected: RDS unreachable"),
        *,
        operations: Collection[str] | None = None,
    ) -> None:
        """Make the next ``count`` calls (of ``operations``, or any) raise ``error()``."""
        with self._lock:
            self._faults.append(
                _Fault(count, error, frozenset(operations) if operations is not None else None)
            )

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.latency = 0.0
            self._wake.set()
            self._wake = threading.Event()

    def before(self, operation: str) -> None:
        if self.latency:
            self._wake.wait(self.latency)
        with self._lock:
            for fault in self._faults:
                if fault.remaining and (fault.operations is None or operation in fault.operations):
                    fault.remaining -= 1
                    raise fault.error()


class InMemoryRds(StorageBackend):
    """
    A StorageBackend in memory.

    Attributes:
        faults: Switch faults and latency on here.
        calls: Every operation name in the order it was called (for round-trip assertions).
    """

    def __init__(self, pool_size: Size | None = None) -> None:
        self._pool_size = pool_size or Size(10 * TIB)
        self._disks: dict[VolumeId, Volume] = {}
        self._lock = threading.Lock()
        self.faults = FaultPlan()
        self.calls: list[str] = []

    def _enter(self, operation: str) -> None:
        self.calls.append(operation)
        self.faults.before(operation)

    def _used(self) -> int:
        return sum(v.size.bytes for v in self._disks.values())

    def create_volume(self, volume: Volume) -> Volume:
        self._enter("create_volume")
        with self._lock:
            existing = self._disks.get(volume.volume_id)
            if existing is not None:
                return existing
            free = self._pool_size.bytes - self._used()
            if volume.size.bytes > free:
                raise CapacityExhausted(
                    f"not enough space on the RDS for {volume.volume_id}: "
                    f"{volume.size} asked, {Size(free)} free"
                )
            made = attrs.evolve(volume, exported=True)
            self._disks[volume.volume_id] = made
            return made

    def delete_volume(self, volume_id: VolumeId) -> None:
        self._enter("delete_volume")
        with self._lock:
            self._disks.pop(volume_id, None)

    def get_volume(self, volume_id: VolumeId) -> Volume:
        self._enter("get_volume")
        with self._lock:
            try:
                return self._disks[volume_id]
            except KeyError:
                raise VolumeNotFound(str(volume_id)) from None

    def list_volumes(self) -> Sequence[Volume]:
        self._enter("list_volumes")
        with self._lock:
            return list(self._disks.values())

    def resize_volume(self, volume_id: VolumeId, size: Size) -> Volume:
        self._enter("resize_volume")
        with self._lock:
            try:
                current = self._disks[volume_id]
            except KeyError:
                raise VolumeNotFound(str(volume_id)) from None
            if size <= current.size:
                return current
            free = self._pool_size.bytes - self._used()
            if size.bytes - current.size.bytes > free:
                raise CapacityExhausted(
                    f"not enough space on the RDS to grow {volume_id} to {size}: {Size(free)} free"
                )
            grown = attrs.evolve(current, size=size)
            self._disks[volume_id] = grown
            return grown

    def capacity(self) -> CapacityReport:
        self._enter("capacity")
        with self._lock:
            return CapacityReport(
                total=self._pool_size, free=Size(self._pool_size.bytes - self._used())
            )

    def check_health(self) -> None:
        self._enter("check_health")
