"""
``RouterOsRestBackend``: the RDS as a ``StorageBackend``, over RouterOS's REST API.

Requests per operation on a warm connection (the pool keeps them alive):

- create 3: find the slot (``GET /disk?slot=``), look for a stale image of the same volume
  (``GET /file?name=``; deleted if there, +1), ``PUT /disk`` (exported in the same add); +1
  ``PATCH`` if the disk exists but its export is off
- get 1, list 1, capacity 1, health 1
- delete 4: find, ``DELETE /disk/<.id>``, find the image, ``DELETE /file/<.id>``; +1 ``PATCH``
  switching the export off first when it is on (as the hardware-tested REST driver does)
- resize 2: find, ``PATCH file-size``

Idempotency: every step finds by slot (or file name) before it acts, and a retry repeats the
whole step, so a create whose reply was lost finds the disk it made instead of making another;
a ``DELETE`` answered 404 is success; a concurrent create that wins the slot
("already have such entry") is read back.

Retries: only transport failures that are safe to repeat (``RestUnavailable.retryable``:
refused or dropped connections, timeouts), 1, 2, 4, 8 s ... capped at 16 s, 5 attempts
(tenacity; the sleep is injectable). RouterOS's error answers are translated in one place
(``errors.refusal_to_domain``) and never retried; health checks are tried once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import attrs

from rds_csi.adapters.retry import RetryPolicy
from rds_csi.adapters.routeros_rest import volumes as v
from rds_csi.adapters.routeros_rest.errors import (
    RestRefusal,
    RestUnavailable,
    is_duplicate,
    refusal_to_domain,
)
from rds_csi.adapters.routeros_rest.http import Counters, RestClient, RestPath
from rds_csi.application.deadline import current_deadline
from rds_csi.application.ports import StorageBackend
from rds_csi.domain import (
    BackendError,
    BackendUnavailable,
    CapacityReport,
    DiskPath,
    MalformedOutput,
    Size,
    Volume,
    VolumeId,
    VolumeNotFound,
)


__all__ = ["RetryPolicy", "RouterOsRestBackend"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_DISK = RestPath("disk")
_FILE = RestPath("file")
_CREATE_ROUNDS = 3  # a disk deleted under a create is made again, this many times at most


@attrs.frozen
class _Disk:
    """A ``/disk`` item of ours: its ``.id`` and what it means."""

    id: str
    volume: Volume


class _Vanished(Exception):
    """The disk a create found went away before it could be exported."""


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, RestUnavailable) and exc.retryable


class RouterOsRestBackend(StorageBackend):
    """
    A StorageBackend on a real (or emulated) RDS, over HTTPS.

    Args:
        client: The pooled HTTPS client.
        base_path: The default volume directory.
        known_bases: Other volume directories; a delete whose disk is already gone looks for
            ``<base>/<id>.img`` under each of these, the default, and every base seen since
            start, so an interrupted delete never leaves an image behind.
        pool: Mount point of the pool whose size and free space ``capacity`` reports.
    """

    def __init__(
        self,
        client: RestClient,
        *,
        base_path: str,
        pool: str,
        retry: RetryPolicy | None = None,
        known_bases: Iterable[str] = (),
    ) -> None:
        self._client = client
        self._bases: dict[str, str] = {}
        for base in (base_path, *known_bases):
            self._remember_base(base)
        self._pool = v.safe(pool, field="pool")
        self._retry = retry or RetryPolicy()

    def _remember_base(self, base: str) -> None:
        self._bases.setdefault(base.strip("/"), base)

    def _seen(self, volume: Volume) -> Volume:
        self._remember_base(volume.path.base)
        return volume

    @property
    def counters(self) -> Counters:
        """Connections opened and requests answered so far."""
        return self._client.counters

    def close(self) -> None:
        self._client.close()

    # --- plumbing ----------------------------------------------------------------------------

    def _retrying(self, operation: str, step: Callable[[], T]) -> T:
        """Run ``step`` (whole: it finds before it acts), retrying what is safe to retry."""
        # the caller's gRPC deadline, when there is one: no retry that could not start in time
        retrying = self._retry.retrying(operation, _retryable, deadline=current_deadline())
        for attempt in retrying:
            with attempt:
                return step()
        raise AssertionError("tenacity ended without a result")  # pragma: no cover

    def _find(self, operation: str, volume_id: VolumeId) -> _Disk | None:
        """The disk with this slot (filtered by RouterOS and again here), None if absent."""
        slot = v.slot(volume_id)
        reply = self._client.request(operation, "GET", _DISK, query={"slot": slot})
        mine = [r for r in v.records(reply.doc, reply.raw) if r.get("slot") == slot]
        if not mine:
            return None
        if len(mine) > 1:
            raise MalformedOutput(f"the RDS lists slot {volume_id} more than once", reply.raw)
        volume = v.volume_from(mine[0], reply.raw)
        if volume is None:
            raise BackendError(
                f"the RDS has a disk with slot {volume_id} that is not a volume of this driver "
                "(not a file disk at <base>/<slot>.img); leaving it alone",
            )
        return _Disk(v.item_id(mine[0], reply.raw), self._seen(volume))

    def _file_ids(self, operation: str, path: DiskPath) -> list[str]:
        name = v.file_name(path)
        reply = self._client.request(operation, "GET", _FILE, query={"name": name})
        found = v.records(reply.doc, reply.raw)
        return [v.item_id(r, reply.raw) for r in found if r.get("name") == name]

    def _delete(self, operation: str, path: RestPath) -> None:
        """``DELETE``; 404 (already gone) is success."""
        try:
            self._client.request(operation, "DELETE", path)
        except RestRefusal as exc:
            if not exc.not_found:
                raise

    # --- shared with the snapshot adapter (one client, one retry policy) -----------------------

    @property
    def client(self) -> RestClient:
        return self._client

    def retrying(self, operation: str, step: Callable[[], T]) -> T:
        """Run a whole find-then-act ``step``, retrying transport failures safe to repeat."""
        return self._retrying(operation, step)

    def find_disk(self, operation: str, volume_id: VolumeId) -> tuple[str, Volume] | None:
        """The ``.id`` and volume of the disk with this slot (one try), None if absent."""
        found = self._find(operation, volume_id)
        return None if found is None else (found.id, found.volume)

    def file_ids(self, operation: str, path: DiskPath) -> list[str]:
        """The ``.id`` of every ``/file`` named exactly as ``path`` (one try)."""
        return self._file_ids(operation, path)

    def delete_item(self, operation: str, path: RestPath) -> None:
        """``DELETE`` one item (one try); already gone is success."""
        self._delete(operation, path)

    # --- the port ----------------------------------------------------------------------------

    def create_volume(self, volume: Volume) -> Volume:
        action = f"create disk {volume.volume_id} ({volume.size})"
        self._seen(volume)  # before the request: a kill after it must not lose the base
        for _ in range(_CREATE_ROUNDS):
            try:
                return _as_requested(self._create_once(volume, action), volume)
            except _Vanished:
                log.warning("disk %s vanished during its create; again", volume.volume_id)
        raise BackendError(f"disk {volume.volume_id} keeps vanishing while it is created")

    def _create_once(self, volume: Volume, action: str) -> Volume:
        def step() -> _Disk:
            found = self._find("create", volume.volume_id)
            if found is not None:
                return found
            # a stale image of this volume (an interrupted delete) must not be reused
            for stale in self._file_ids("create", volume.path):
                self._delete("create", RestPath("file", stale))
            reply = self._client.request("create", "PUT", _DISK, body=v.create_body(volume))
            record = v.one_record(reply.doc, reply.raw)
            made = v.volume_from(record, reply.raw)
            if made is None:
                raise MalformedOutput(
                    f"the RDS made disk {volume.volume_id} unlike asked", reply.raw
                )
            return _Disk(v.item_id(record, reply.raw), made)

        try:
            disk = self._retrying("create", step)
        except RestRefusal as exc:
            if is_duplicate(exc):  # a concurrent create won the race: use its disk
                again = self._retrying("create", lambda: self._find("create", volume.volume_id))
                if again is None:
                    raise _Vanished from None
                disk = again
            else:
                raise refusal_to_domain(exc, action) from None
        if disk.volume.exported:
            return disk.volume
        return self._export(disk, volume)

    def _export(self, disk: _Disk, wanted: Volume) -> Volume:
        """Switch a disk's export back on (someone, or a half-finished operation, turned it off)."""
        log.warning("disk %s exists but is not exported; exporting it again", disk.volume.volume_id)
        target = attrs.evolve(disk.volume, nqn=wanted.nqn, nvme_port=wanted.nvme_port)

        def step() -> Volume | None:
            reply = self._client.request(
                "export", "PATCH", RestPath("disk", disk.id), body=v.export_body(target)
            )
            return v.volume_from(v.one_record(reply.doc, reply.raw), reply.raw)

        try:
            again = self._retrying("export", step)
        except RestRefusal as exc:
            if exc.not_found:
                raise _Vanished from None
            raise refusal_to_domain(exc, f"export disk {disk.volume.volume_id}") from None
        if again is None or not again.exported:
            raise BackendError(f"the RDS did not export disk {disk.volume.volume_id} when asked")
        return again

    def delete_volume(self, volume_id: VolumeId) -> None:
        action = f"delete disk {volume_id}"
        try:
            found = self._retrying("delete", lambda: self._find("delete", volume_id))
            if found is not None:
                self._retrying("delete", lambda: self._remove_disk(found))
                paths = [found.volume.path]  # wherever the disk said its image is
            else:  # the disk entry is gone (an interrupted delete?): its image may be anywhere
                paths = [DiskPath(base, volume_id) for base in list(self._bases.values())]
            for path in {p.value.lstrip("/"): p for p in paths}.values():
                self._retrying("delete", lambda p=path: self._remove_file(volume_id, p))  # type: ignore[misc]
        except RestRefusal as exc:
            raise refusal_to_domain(exc, action) from None

    def _remove_disk(self, disk: _Disk) -> None:
        if disk.volume.exported:
            try:
                self._client.request(
                    "delete",
                    "PATCH",
                    RestPath("disk", disk.id),
                    body={"nvme-tcp-export": "false"},
                )
            except RestRefusal as exc:
                if exc.not_found:
                    return
                raise
        self._delete("delete", RestPath("disk", disk.id))

    def _remove_file(self, volume_id: VolumeId, path: DiskPath) -> None:
        for file_id in self._file_ids("delete", path):
            try:
                self._delete("delete", RestPath("file", file_id))
            except RestRefusal:
                # in use: a create of the same volume ran concurrently and won; its disk
                # stands, whole (the caller's delete came first)
                again = self._find("delete", volume_id)
                if again is not None and again.volume.path.value.lstrip("/") == v.file_name(path):
                    return
                raise

    def get_volume(self, volume_id: VolumeId) -> Volume:
        found = self._retrying("inspect", lambda: self._find("inspect", volume_id))
        if found is None:
            raise VolumeNotFound(str(volume_id))
        return found.volume

    def list_volumes(self) -> Sequence[Volume]:
        def step() -> list[Volume]:
            reply = self._client.request("list", "GET", _DISK)
            found = [v.volume_from(r, reply.raw) for r in v.records(reply.doc, reply.raw)]
            return [self._seen(x) for x in found if x is not None]

        try:
            return self._retrying("list", step)
        except RestRefusal as exc:
            raise refusal_to_domain(exc, "list the disks") from None

    def resize_volume(self, volume_id: VolumeId, size: Size) -> Volume:
        found = self._retrying("inspect", lambda: self._find("inspect", volume_id))
        if found is None:
            raise VolumeNotFound(str(volume_id))
        if size <= found.volume.size:
            return found.volume

        def step() -> Volume | None:
            reply = self._client.request(
                "resize", "PATCH", RestPath("disk", found.id), body=v.resize_body(size)
            )
            return v.volume_from(v.one_record(reply.doc, reply.raw), reply.raw)

        try:
            grown = self._retrying("resize", step)
        except RestRefusal as exc:
            if exc.not_found:
                raise VolumeNotFound(str(volume_id), "it disappeared while growing") from None
            raise refusal_to_domain(exc, f"grow disk {volume_id} to {size}") from None
        if grown is None:
            raise BackendError(f"disk {volume_id} is no longer a volume after growing")
        if grown.size < size:
            raise BackendError(
                f"the RDS accepted growing disk {volume_id} to {size} but reports {grown.size}"
            )
        return grown

    def capacity(self) -> CapacityReport:
        def step() -> CapacityReport:
            reply = self._client.request(
                "capacity", "GET", _DISK, query={"mount-point": self._pool}
            )
            found = [
                r for r in v.records(reply.doc, reply.raw) if r.get("mount-point") == self._pool
            ]
            if not found:
                raise BackendError(
                    f"no disk on the RDS is mounted at {self._pool!r}; set the pool setting to "
                    "the mount point that holds the volumes"
                )
            return v.capacity_from(found, reply.raw, self._pool)

        try:
            return self._retrying("capacity", step)
        except RestRefusal as exc:
            raise refusal_to_domain(exc, "report the pool's capacity") from None

    def check_health(self) -> None:
        try:
            reply = self._client.request("health", "GET", RestPath("system/resource"))
        except BackendUnavailable:
            raise
        except (RestRefusal, BackendError) as exc:
            raise BackendUnavailable(f"the RDS does not answer requests properly: {exc}") from None
        if not isinstance(reply.doc, dict):
            raise BackendUnavailable("the RDS's /system/resource is not an item")


def _as_requested(made: Volume, wanted: Volume) -> Volume:
    """RouterOS may show paths with or without a leading ``/``; keep the caller's spelling."""
    if made.path.value.lstrip("/") == wanted.path.value.lstrip("/"):
        return attrs.evolve(made, path=wanted.path)
    return made
