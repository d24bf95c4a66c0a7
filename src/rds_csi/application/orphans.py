"""
Orphans: what the driver made that nobody owns any more.

Two kinds. A **disk** on the RDS whose slot is one of ours (``pvc-<uuid>``) and that no
PersistentVolume of our driver names (a DeleteVolume that never came, a PV deleted by hand
with ``Retain``). A **session** on a node: an NVMe/TCP connection whose NQN is
``<our prefix>:<volume-id>`` while kubelet has no record of the volume on this node and nothing
is mounted from its device (a NodeUnstage lost to a crash). A connection under any other NQN
is never one: the Go driver once disconnected a host's own NVMe root that way.

A disk is an orphan only once it has been seen without a PV for ``grace`` seconds: a
CreateVolume makes the disk before the provisioner makes the PV. ``Sightings`` is that memory;
the one-shot ``rds-csi orphans`` looks twice, ``grace`` apart, the controller's reconciler
(``OrphanReconciler``) remembers across its passes. Both report; only ``clean`` (the operator's
``--yes``, or the reconciler with ``orphan_delete`` on) removes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Final, Protocol

import attrs

from rds_csi.application.events import ORPHAN_FOUND, EventRecorder
from rds_csi.application.kubernetes import Kubernetes, ObjectRef
from rds_csi.application.leases import Lease
from rds_csi.application.node.devices import mounts_on
from rds_csi.application.ports import (
    Clock,
    Filesystem,
    Locks,
    Mounter,
    NvmeInitiator,
    StorageBackend,
)
from rds_csi.domain import DomainError, Nqn, VolumeId
from rds_csi.domain.identity import check_nqn_prefix


__all__ = [
    "DISK",
    "ORPHAN_KINDS",
    "SESSION",
    "CleanOrphans",
    "Cleaned",
    "FindOrphans",
    "KubeletVolumes",
    "Orphan",
    "OrphanMetrics",
    "OrphanReconciler",
    "Sightings",
]

_log = logging.getLogger(__name__)

DISK: Final = "disk"
SESSION: Final = "session"
ORPHAN_KINDS: Final = (DISK, SESSION)
LEASE_NAME: Final = "rds-csi-orphans"
LEASE_SLACK: Final = 10


class KubeletVolumes(Protocol):
    """What kubelet has recorded on this node (its ``vol_data.json`` files)."""

    def volume_handles(self) -> frozenset[str]:
        """The volume handles of our driver kubelet has staged or published here."""
        ...


class OrphanMetrics(Protocol):
    def orphans(self, kind: str, count: int) -> None:
        """Orphans of ``kind`` (``disk``, ``session``) found at the last pass."""
        ...


@attrs.frozen(order=True)
class Orphan:
    """
    Attributes:
        kind: ``disk`` or ``session``.
        name: The volume ID (a disk) or the NQN (a session).
        detail: The disk's file on the RDS, or the session's block device.
    """

    kind: str
    name: str
    detail: str = ""

    @property
    def volume_id(self) -> VolumeId | None:
        if self.kind == DISK:
            return VolumeId(self.name)
        return Nqn(self.name).volume_id


class Sightings:
    """
    When each candidate was first seen; a candidate counts once seen for ``grace`` seconds.
    One not seen at a pass is forgotten (a PV appeared, the disk went): its clock restarts.
    """

    def __init__(self, clock: Clock, grace: float) -> None:
        self._clock = clock
        self._grace = grace
        self._first: dict[Orphan, float] = {}
        self._lock = threading.Lock()

    @property
    def grace(self) -> float:
        return self._grace

    def forget(self) -> None:
        """Start over: sightings older than the last look prove nothing about now."""
        with self._lock:
            self._first.clear()

    def confirm(self, candidates: Iterable[Orphan], kinds: Iterable[str]) -> list[Orphan]:
        """Remember ``candidates`` (of ``kinds``, the ones looked for) and say which are due."""
        now = self._clock.monotonic()
        looked = set(kinds)
        seen = set(candidates)
        with self._lock:
            for known in [o for o in self._first if o.kind in looked and o not in seen]:
                del self._first[known]
            for orphan in seen:
                self._first.setdefault(orphan, now)
            return sorted(o for o in seen if now - self._first[o] >= self._grace)


class FindOrphans:
    """
    The candidates, as they are now (``disks``, ``sessions``), with no grace applied.

    Args:
        backend, kubernetes: The controller's side (disks); None on a node.
        initiator, mounter, filesystem, kubelet: The node's side (sessions); None on a
            controller.
        nqn_prefix: Only sessions under ``<nqn_prefix>:`` are ever candidates.
        volume_path: Only disks in this directory on the RDS are ever candidates (another
            cluster's disks on a shared RDS live elsewhere); empty: any of ours.
    """

    def __init__(
        self,
        *,
        nqn_prefix: str,
        backend: StorageBackend | None = None,
        kubernetes: Kubernetes | None = None,
        initiator: NvmeInitiator | None = None,
        mounter: Mounter | None = None,
        filesystem: Filesystem | None = None,
        kubelet: KubeletVolumes | None = None,
        volume_path: str = "",
    ) -> None:
        self._prefix = check_nqn_prefix(nqn_prefix) + ":"
        self._base = volume_path.strip("/")
        self._backend = backend
        self._kubernetes = kubernetes
        self._initiator = initiator
        self._mounter = mounter
        self._filesystem = filesystem
        self._kubelet = kubelet

    @property
    def kinds(self) -> tuple[str, ...]:
        """What this side can look for."""
        found = []
        if self._backend is not None and self._kubernetes is not None:
            found.append(DISK)
        if self._initiator is not None and self._mounter is not None:
            found.append(SESSION)
        return tuple(found)

    def disks(self) -> list[Orphan]:
        """Our disks no PersistentVolume of our driver names."""
        if self._backend is None or self._kubernetes is None:
            return []
        # PVs first: a disk created after this list is younger than the grace anyway.
        owned = {pv.volume_handle for pv in self._kubernetes.list_persistent_volumes()}
        return sorted(
            Orphan(DISK, str(v.volume_id), str(v.path))
            for v in self._backend.list_volumes()
            if str(v.volume_id) not in owned
            and (not self._base or v.path.base.strip("/") == self._base)
        )

    def sessions(self) -> list[Orphan]:
        """This node's connections under our NQN prefix that nothing here uses."""
        if self._initiator is None or self._mounter is None or self._filesystem is None:
            return []
        staged = self._kubelet.volume_handles() if self._kubelet is not None else frozenset()
        found = []
        for nqn in self._initiator.connections():
            vid = nqn.volume_id
            if not str(nqn).startswith(self._prefix) or vid is None:
                continue  # someone else's target (a root disk, another driver): never ours
            if str(vid) in staged:
                continue
            device = self._initiator.device_for(nqn) or ""
            if device and mounts_on(self._mounter, self._filesystem, [device], besides=()):
                continue
            found.append(Orphan(SESSION, str(nqn), device))
        return sorted(found)

    def candidates(self, kinds: Iterable[str]) -> list[Orphan]:
        wanted = set(kinds)
        return [
            *(self.disks() if DISK in wanted else []),
            *(self.sessions() if SESSION in wanted else []),
        ]

    def still_orphan(self, orphan: Orphan) -> bool:
        """Checked again right before a removal: a PV or a mount may have come meanwhile."""
        now = self.disks() if orphan.kind == DISK else self.sessions()
        return orphan in now


@attrs.frozen
class Cleaned:
    orphan: Orphan
    error: str = ""  # empty: removed


class CleanOrphans:
    """
    Remove orphans: delete the disk (and its file), or disconnect the session.

    Args:
        locks: The controller's per-volume locks: a disk is removed only while its volume's
            lock is free and held here, so never during a CreateVolume still making it (a
            long restore or clone has no PV yet either).
    """

    def __init__(
        self,
        find: FindOrphans,
        *,
        backend: StorageBackend | None = None,
        initiator: NvmeInitiator | None = None,
        locks: Locks | None = None,
    ) -> None:
        self._find = find
        self._backend = backend
        self._initiator = initiator
        self._locks = locks

    def __call__(self, orphans: Sequence[Orphan]) -> list[Cleaned]:
        done = []
        for orphan in orphans:
            try:
                with self._held(orphan):
                    if not self._find.still_orphan(orphan):
                        done.append(Cleaned(orphan, "no longer an orphan; left alone"))
                        continue
                    self._remove(orphan)
            except DomainError as exc:
                done.append(Cleaned(orphan, str(exc)))
                continue
            _log.warning("removed orphan %s %s", orphan.kind, orphan.name)
            done.append(Cleaned(orphan))
        return done

    def _held(self, orphan: Orphan) -> AbstractContextManager[None]:
        if self._locks is None or orphan.kind != DISK:
            return contextlib.nullcontext()
        return self._locks.hold(orphan.name)

    def _remove(self, orphan: Orphan) -> None:
        if orphan.kind == DISK and self._backend is not None:
            self._backend.delete_volume(VolumeId(orphan.name))
        elif orphan.kind == SESSION and self._initiator is not None:
            self._initiator.disconnect(Nqn(orphan.name))
        else:
            raise DomainError(f"this side cannot remove a {orphan.kind}")


class OrphanReconciler:
    """
    The controller's background report of orphan disks: an ``OrphanFound`` Event, the
    ``rds_csi_orphans{kind}`` gauge and a log line per pass; a removal only when ``delete``.
    With ``identity`` only the holder of the ``rds-csi-orphans`` Lease acts (two replicas).
    """

    def __init__(
        self,
        find: FindOrphans,
        sightings: Sightings,
        *,
        interval: float,
        clean: CleanOrphans | None = None,
        delete: bool = False,
        events: EventRecorder | None = None,
        metrics: OrphanMetrics | None = None,
        kubernetes: Kubernetes | None = None,
        identity: str = "",
    ) -> None:
        self._find = find
        self._sightings = sightings
        self._interval = interval
        self._clean = clean
        self._delete = delete
        self._events = events
        self._metrics = metrics
        self._stop = threading.Event()
        self._reported: set[Orphan] = set()
        seconds = int(interval * 2 + LEASE_SLACK)
        self._lease = Lease(kubernetes, LEASE_NAME, identity, seconds)

    def check(self) -> list[Orphan]:
        """One pass: the orphans past the grace, reported (and removed when enabled)."""
        kinds = self._find.kinds
        found = self._sightings.confirm(self._find.candidates(kinds), kinds)
        if self._metrics is not None:
            for kind in kinds:
                self._metrics.orphans(kind, sum(o.kind == kind for o in found))
        fresh = [o for o in found if o not in self._reported]
        self._reported = set(found)
        for orphan in found:
            self._report(orphan, fresh=orphan in fresh)
        if found:
            _log.warning(
                "%d orphan(s) (%d new): `rds-csi orphans list` shows them", len(found), len(fresh)
            )
        if self._delete and self._clean is not None and found:
            for result in self._clean(found):
                if result.error:
                    _log.warning("orphan %s not removed: %s", result.orphan.name, result.error)
        return found

    def _report(self, orphan: Orphan, *, fresh: bool) -> None:
        """The Event each pass (kept visible; rate-limited), a log line when first found."""
        then = "it is deleted now" if self._delete else "nothing is deleted (orphan_delete off)"
        owner = "PersistentVolume" if orphan.kind == DISK else "staged volume"
        message = (
            f"{orphan.kind} {orphan.name} ({orphan.detail or 'no device'}) has had no "
            f"{owner} for over {self._sightings.grace:.0f}s; {then}. "
            "`rds-csi orphans list` shows it, `rds-csi orphans clean --yes` removes it"
        )
        if fresh:
            _log.warning("OrphanFound: %s", message)
        if self._events is not None:
            # No PVC names an orphan; the Event is on the PV its volume ID would be.
            about = ObjectRef("PersistentVolume", str(orphan.volume_id or orphan.name))
            self._events.record(about, ORPHAN_FOUND, message)

    def leading(self) -> bool:
        """Whether this replica holds the ``rds-csi-orphans`` Lease (taking or renewing it)."""
        return self._lease.held()

    def start(self) -> None:
        self._stop.clear()
        threading.Thread(target=self._run, name="orphans", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                if self.leading():
                    self.check()
                else:
                    # A disk seen before another replica led may have gone and come back
                    # since (a new CreateVolume of the same name): its grace starts again.
                    self._sightings.forget()
                    self._reported.clear()
            except DomainError as exc:
                self._sightings.forget()  # a pass that did not finish saw nothing for sure
                _log.warning("orphan check failed: %s", exc)
