"""
An in-memory cluster behind the Kubernetes port, for tests and for ``rds-csi all`` without one.

It plays the API server's part: VolumeAttachments (with resource versions and a watch), CSINodes,
Nodes, PersistentVolumes and the Events recorded. With ``state_file`` it keeps the objects in a
JSON file instead (re-read whenever it changes, so another process can play the
external-attacher), and appends each Event to ``<state_file>.events.jsonl``: that is how the
e2e tier restarts a controller over the same cluster. Leases live in ``<state_file>.leases.json``,
read and written under an exclusive ``flock``, so controllers in several processes over one
state file elect one holder as they would through the API server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import pathlib
import threading
import time
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from typing import Any, Final

import attrs

from rds_csi.application.kubernetes import (
    CsiNodeInfo,
    EventType,
    Kubernetes,
    NodeStatus,
    ObjectRef,
    PersistentVolumeInfo,
    VolumeAttachmentInfo,
    VolumeAttachmentList,
    WatchEvent,
    WatchExpired,
)
from rds_csi.domain import BackendUnavailable


__all__ = ["FakeKubernetes", "RecordedEvent"]

_POLL: Final = 0.2


@attrs.frozen
class RecordedEvent:
    about: ObjectRef
    warning: bool
    reason: str
    message: str


def _va(data: dict[str, Any]) -> VolumeAttachmentInfo:
    return VolumeAttachmentInfo(
        name=str(data["name"]),
        pv_name=str(data.get("pv_name", "")),
        node_name=str(data["node_name"]),
        attached=bool(data.get("attached", False)),
        created_at=float(data.get("created_at", 0.0)),
        deleting=bool(data.get("deleting", False)),
    )


def _pv(data: dict[str, Any]) -> PersistentVolumeInfo:
    return PersistentVolumeInfo(
        name=str(data["name"]),
        volume_handle=str(data["volume_handle"]),
        access_modes=tuple(data.get("access_modes", ())),
        block=bool(data.get("block", False)),
        attributes=dict(data.get("attributes", {})),
        claim_namespace=str(data.get("claim_namespace", "")),
        claim_name=str(data.get("claim_name", "")),
    )


class FakeKubernetes(Kubernetes):
    """
    Args:
        nodes: Node IDs whose CSINode lists our driver (and whose Node is Ready).
        state_file: Keep the objects in this JSON file (see the module docstring).
    """

    def __init__(self, nodes: Iterable[str] = (), *, state_file: str = "") -> None:
        self._cond = threading.Condition()
        self._vas: dict[str, VolumeAttachmentInfo] = {}
        self._pvs: dict[str, PersistentVolumeInfo] = {}
        self._csi_nodes: set[str] = set(nodes)
        self._ready: dict[str, bool] = dict.fromkeys(self._csi_nodes, True)
        self._since: dict[str, float] = {}
        self._version = 1
        self._history: list[tuple[int, WatchEvent]] = []
        self._oldest = 1
        self.events: list[RecordedEvent] = []
        self.max_volumes: dict[str, int] = {}  # a node's attach limit (allocatable.count)
        self.leases: dict[str, tuple[str, float]] = {}  # name -> (holder, expiry, epoch seconds)
        self.unavailable = False
        self._file = pathlib.Path(state_file) if state_file else None
        self._stamp: tuple[int, int] | None = None
        if self._file is not None:
            with self._cond:
                if self._file.exists():
                    self._reload()
                else:
                    self._save()

    # --- the port ---------------------------------------------------------------------------

    def list_volume_attachments(self) -> VolumeAttachmentList:
        with self._cond:
            self._check()
            return VolumeAttachmentList(tuple(self._vas.values()), str(self._version))

    def watch_volume_attachments(
        self, resource_version: str, timeout_seconds: int
    ) -> Iterator[WatchEvent]:
        with self._cond:
            self._check()
            after = int(resource_version) if resource_version.isdigit() else 0
            if after < self._oldest - 1 or after > self._version:
                raise WatchExpired(f"resource version {resource_version!r} is too old")
        waited = 0.0
        while waited < timeout_seconds:
            with self._cond:
                self._check()
                pending = [event for rv, event in self._history if rv > after]
                if not pending:
                    self._cond.wait(_POLL)
                    waited += _POLL
                    continue
            for event in pending:
                yield event
                after = int(event.resource_version)

    def csi_node(self, node_id: str) -> CsiNodeInfo | None:
        with self._cond:
            self._check()
            if node_id not in self._csi_nodes:
                return None
            return CsiNodeInfo(node_id, node_id, self.max_volumes.get(node_id, 0))

    def node_status(self, name: str) -> NodeStatus | None:
        with self._cond:
            self._check()
            ready = self._ready.get(name)
            return None if ready is None else NodeStatus(name, ready, self._since.get(name, 0.0))

    def list_persistent_volumes(self) -> Sequence[PersistentVolumeInfo]:
        with self._cond:
            self._check()
            return tuple(self._pvs.values())

    def create_event(self, about: ObjectRef, *, warning: bool, reason: str, message: str) -> None:
        with self._cond:
            self._check()
            event = RecordedEvent(about, warning, reason, message)
            self.events.append(event)
            if self._file is not None:
                line = json.dumps({**attrs.asdict(event), "about": attrs.asdict(about)})
                with pathlib.Path(f"{self._file}.events.jsonl").open("a") as out:
                    out.write(line + "\n")

    def acquire_lease(self, name: str, holder: str, duration_seconds: int) -> bool:
        with self._cond:
            self._check()
            with self._shared_leases() as leases:
                now = time.time()
                current = leases.get(name)
                if current is not None and current[0] != holder and current[1] > now:
                    return False
                leases[name] = (holder, now + duration_seconds)
                return True

    @contextlib.contextmanager
    def _shared_leases(self) -> Iterator[MutableMapping[str, tuple[str, float]]]:
        """The leases: this object's, or the file's under an exclusive lock (written back)."""
        if self._file is None:
            yield self.leases
            return
        path = pathlib.Path(f"{self._file}.leases.json")
        with path.open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            text = handle.read()
            leases = {k: (str(v[0]), float(v[1])) for k, v in json.loads(text or "{}").items()}
            yield leases
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(leases))
            handle.flush()
            self.leases = dict(leases)

    # --- the cluster's other actors (tests) -------------------------------------------------

    def put_volume_attachment(self, va: VolumeAttachmentInfo) -> None:
        with self._cond:
            kind = EventType.MODIFIED if va.name in self._vas else EventType.ADDED
            self._vas[va.name] = va
            self._record(kind, va)
            self._save()

    def delete_volume_attachment(self, name: str) -> None:
        with self._cond:
            va = self._vas.pop(name, None)
            if va is not None:
                self._record(EventType.DELETED, va)
                self._save()

    def put_persistent_volume(self, pv: PersistentVolumeInfo) -> None:
        with self._cond:
            self._pvs[pv.name] = pv
            self._save()

    def put_node(
        self, name: str, *, ready: bool = True, csi: bool = True, since: float = 0.0
    ) -> None:
        """A Node (and its CSINode listing us when ``csi``), Ready or not since ``since``."""
        with self._cond:
            if self._ready.get(name) != ready or since:
                self._since[name] = since or time.time()
            self._ready[name] = ready
            if csi:
                self._csi_nodes.add(name)
            else:
                self._csi_nodes.discard(name)
            self._save()

    def delete_node(self, name: str) -> None:
        with self._cond:
            self._ready.pop(name, None)
            self._csi_nodes.discard(name)
            self._save()

    def compact(self) -> None:
        """Forget the watch history, as etcd compaction does: older versions expire."""
        with self._cond:
            self._history.clear()
            self._oldest = self._version + 1

    # --- internals --------------------------------------------------------------------------

    def _check(self) -> None:
        if self.unavailable:
            raise BackendUnavailable("Kubernetes API (fake) is unavailable")
        if self._file is not None:
            self._reload()

    def _record(self, kind: EventType, va: VolumeAttachmentInfo) -> None:
        self._version += 1
        self._history.append((self._version, WatchEvent(kind, va, str(self._version))))
        self._cond.notify_all()

    def _save(self) -> None:
        if self._file is None:
            return
        data = {
            "volume_attachments": [attrs.asdict(va) for va in self._vas.values()],
            "persistent_volumes": [attrs.asdict(pv) for pv in self._pvs.values()],
            "nodes": [
                {
                    "name": n,
                    "ready": r,
                    "csi": n in self._csi_nodes,
                    "since": self._since.get(n, 0.0),
                }
                for n, r in self._ready.items()
            ],
        }
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self._file)
        st = self._file.stat()
        self._stamp = (st.st_mtime_ns, st.st_size)

    def _reload(self) -> None:
        if self._file is None:
            return
        try:
            st = self._file.stat()
        except FileNotFoundError:
            return
        if self._stamp == (st.st_mtime_ns, st.st_size):
            return
        self._stamp = (st.st_mtime_ns, st.st_size)
        data = json.loads(self._file.read_text() or "{}")
        vas = {va.name: va for va in map(_va, data.get("volume_attachments", []))}
        for name in set(self._vas) - set(vas):
            self._record(EventType.DELETED, self._vas[name])
        for name, va in vas.items():
            old = self._vas.get(name)
            if old != va:
                self._record(EventType.ADDED if old is None else EventType.MODIFIED, va)
        self._vas = vas
        self._pvs = {pv.name: pv for pv in map(_pv, data.get("persistent_volumes", []))}
        nodes = data.get("nodes", [])
        self._ready = {str(n["name"]): bool(n.get("ready", True)) for n in nodes}
        self._csi_nodes = {str(n["name"]) for n in nodes if n.get("csi", True)}
        self._since = {str(n["name"]): float(n.get("since", 0.0)) for n in nodes}
