"""
``RouterOsSshBackend``: the RDS as a ``StorageBackend``, over the RouterOS CLI.

Round trips per operation on a warm connection: create 1 (one line checks, adds if missing,
prints; 2 when it must switch a disk's export back on), get 1, list 1, capacity 1, health 1,
delete 2 (print to learn the image file, then remove disk and file), resize 2 (print, then set
and print).

No command depends on an unverified RouterOS behaviour (``rds_csi.emulator.assumptions``):
removals are guarded by ``:if ([:len [find ...]] > 0)``, the exit status is never read, and
display fields never veto a record.

Retries: transport failures that are safe to repeat (refused or dropped connections, timeouts)
are retried with exponential backoff, 1, 2, 4, 8 s ... capped at 16 s, 5 attempts (tenacity;
the sleep is injectable), within the operation's deadline: the gRPC call's
(``application.deadline``) or ``call_timeout`` from the operation's start, whichever is sooner.
No retry starts that could not finish in time; the last failure is the answer
(``docs/deadlines.md``). Every command line we send is idempotent, so a retry after a drop
finds what the first attempt made instead of making it twice. RouterOS errors and malformed
output are not retried. Health checks are tried once.

RouterOS error texts are translated in one place (``_refusal``): "not enough space" ->
``CapacityExhausted``; "no such item" -> not found (success for delete); anything else ->
``BackendError`` carrying RouterOS's words.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Concatenate, Final, ParamSpec, Protocol, TypeVar

import attrs

from rds_csi.adapters.retry import RetryPolicy
from rds_csi.adapters.routeros_ssh import commands
from rds_csi.adapters.routeros_ssh.connection import CommandOutput, Counters, SshUnavailable
from rds_csi.adapters.routeros_ssh.parse import Record, RouterOsError, parse_detail, split_reply
from rds_csi.adapters.routeros_ssh.volumes import capacity_from_records, volume_from_record
from rds_csi.application.deadline import current_deadline, deadline_scope
from rds_csi.application.ports import Metrics, StorageBackend
from rds_csi.domain import (
    BackendError,
    BackendUnavailable,
    CapacityExhausted,
    CapacityReport,
    DiskPath,
    DomainError,
    MalformedOutput,
    Size,
    Volume,
    VolumeId,
    VolumeNotFound,
)
from rds_csi.domain.deadline import Deadline


__all__ = ["CommandRunner", "RetryPolicy", "RouterOsSshBackend"]

log = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")

_NO_SPACE: Final = re.compile(
    r"not enough (disk )?space|no space left|insufficient (disk )?space|disk (is )?full",
    re.IGNORECASE,
)
_NO_SUCH_ITEM: Final = re.compile(r"no such item", re.IGNORECASE)
_DUPLICATE: Final = re.compile(r"already have (such|an?) (entry|item|disk)", re.IGNORECASE)


class CommandRunner(Protocol):
    """Runs one RouterOS command line (``SshConnection`` is the real one)."""

    counters: Counters

    def run(self, command: str, deadline: Deadline | None = None) -> CommandOutput: ...

    def close(self) -> None: ...


def _operation(
    method: Callable[Concatenate[RouterOsSshBackend, P], T],
) -> Callable[Concatenate[RouterOsSshBackend, P], T]:
    """A port operation: everything it sends to the RDS shares one deadline."""

    def bounded(self: RouterOsSshBackend, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with self._bounded():
            return method(self, *args, **kwargs)

    return bounded


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, SshUnavailable) and exc.retryable


class RouterOsSshBackend(StorageBackend):
    """
    A StorageBackend on a real (or emulated) RDS.

    Args:
        runner: Where command lines go (one persistent SSH connection).
        base_path: The default volume directory.
        known_bases: Other volume directories (the StorageClasses' ``volumePath``s). A delete
            whose disk entry is already gone removes ``<base>/<id>.img`` under each of these,
            the default, and every base seen on a disk since start, so an interrupted delete
            never leaves an image behind.
        pool: Mount point of the pool whose size and free space ``capacity`` reports.
        metrics: Told about every command (``backend_command``).
    """

    def __init__(
        self,
        runner: CommandRunner,
        *,
        base_path: str,
        pool: str,
        metrics: Metrics | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        marker: Callable[[], str] = commands.new_marker,
        known_bases: Iterable[str] = (),
        call_timeout: float = 12.0,
    ) -> None:
        self._runner = runner
        self._base_path = base_path
        # insertion-ordered, keyed without the leading "/" RouterOS adds to paths
        self._bases: dict[str, str] = {}
        for base in (base_path, *known_bases):
            self._remember_base(base)
        self._pool = pool
        self._metrics = metrics
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._marker = marker
        self._call_timeout = call_timeout

    def _remember_base(self, base: str) -> None:
        self._bases.setdefault(base.strip("/"), base)

    def _seen(self, volume: Volume) -> Volume:
        self._remember_base(volume.path.base)
        return volume

    @property
    def counters(self) -> Counters:
        """SSH handshakes and command round trips so far."""
        return self._runner.counters

    def close(self) -> None:
        self._runner.close()

    # --- time -------------------------------------------------------------------------------

    def _deadline(self) -> Deadline:
        """The current operation's deadline: the caller's, or ``call_timeout`` from now."""
        return Deadline.after(self._call_timeout, self._clock()).earlier(current_deadline())

    def _bounded(self) -> AbstractContextManager[None]:
        """One operation's scope: its commands (and operations it calls) share one deadline."""
        return deadline_scope(self._deadline())

    # --- one command ------------------------------------------------------------------------

    def _once(self, operation: str, script: commands.Script, read: Callable[[str], T]) -> T:
        """One round trip; ``read`` interprets the answer (inside, so metrics see bad ones)."""
        start = self._clock()
        outcome = "ok"
        try:
            output = self._runner.run(script.render(), self._deadline())
            return read(split_reply(output.text, script.marker))
        except RouterOsError:
            outcome = "refused"
            raise
        except MalformedOutput:
            outcome = "malformed"
            raise
        except BackendUnavailable:
            outcome = "unavailable"
            raise
        except DomainError:
            outcome = "error"
            raise
        finally:
            if self._metrics is not None:
                self._metrics.backend_command(operation, self._clock() - start, outcome)

    def _command(
        self,
        operation: str,
        build: Callable[[str], commands.Script],
        read: Callable[[str], T],
    ) -> T:
        """Run a command (retrying what is safe to retry) and ``read`` its answer."""
        retrying = self._retry.retrying(
            operation, _retryable, deadline=self._deadline(), clock=self._clock
        )
        for attempt in retrying:
            with attempt:
                return self._once(operation, build(self._marker()), read)
        raise AssertionError("tenacity ended without a result")  # pragma: no cover

    def command(
        self,
        operation: str,
        build: Callable[[str], commands.Script],
        read: Callable[[str], T],
    ) -> T:
        """Run one script as the port's methods do (retries, metrics): for sibling adapters."""
        return self._command(operation, build, read)

    def refusal(self, text: str, action: str) -> DomainError:
        return self._refusal(text, action)

    def read_volume(self, volume_id: VolumeId, body: str) -> Volume | None:
        """The volume with this slot in a ``/disk print detail``, None if absent."""
        return self._one(parse_detail(body), volume_id, body)

    @staticmethod
    def _refusal(text: str, action: str) -> DomainError:
        """RouterOS's error text -> the domain error it means (the one translation table)."""
        if _NO_SPACE.search(text):
            return CapacityExhausted(f"not enough space on the RDS to {action}: {text}")
        return BackendError(f"the RDS refused to {action}", text)

    def _one(self, records: Sequence[Record], volume_id: VolumeId, raw: str) -> Volume | None:
        """The volume with this slot in a print, None if absent; foreign disks are errors."""
        mine = [r for r in records if r.fields.get("slot") == volume_id.value]
        if len(mine) != len(records):
            # we asked `where slot="<id>"`: any other disk means we misread the answer
            raise MalformedOutput(f"the RDS answered about disks other than {volume_id}", raw)
        if not mine:
            return None
        if len(mine) > 1:
            raise MalformedOutput(f"the RDS lists slot {volume_id} more than once", raw)
        volume = volume_from_record(mine[0], raw)
        if volume is not None:
            self._seen(volume)
        if volume is None:
            raise BackendError(
                f"the RDS has a disk with slot {volume_id} that is not a volume of this driver "
                "(not a file disk at <base>/<slot>.img); leaving it alone",
            )
        return volume

    # --- the port ----------------------------------------------------------------------------

    def _reader(self, volume_id: VolumeId) -> Callable[[str], Volume | None]:
        return lambda body: self._one(parse_detail(body), volume_id, body)

    @_operation
    def create_volume(self, volume: Volume) -> Volume:
        action = f"create disk {volume.volume_id} ({volume.size})"
        self._seen(volume)  # before the command: a kill after it must not lose the base
        try:
            made = self._command(
                "create",
                lambda m: commands.create_disk(volume, m),
                self._reader(volume.volume_id),
            )
        except RouterOsError as exc:
            if _DUPLICATE.search(exc.text):  # a concurrent create won the race: use its disk
                return _as_requested(self.get_volume(volume.volume_id), volume)
            raise self._refusal(exc.text, action) from None
        if made is None:
            raise BackendError(f"disk {volume.volume_id} was not listed after its creation")
        if not made.exported:
            made = self._export(made, volume)
        return _as_requested(made, volume)

    def _export(self, made: Volume, wanted: Volume) -> Volume:
        """Switch a disk's export back on (someone, or a half-finished operation, turned it off)."""
        log.warning("disk %s exists but is not exported; exporting it again", made.volume_id)
        target = attrs.evolve(made, nqn=wanted.nqn, nvme_port=wanted.nvme_port)
        try:
            again = self._command(
                "export", lambda m: commands.export_disk(target, m), self._reader(made.volume_id)
            )
        except RouterOsError as exc:
            if _NO_SUCH_ITEM.search(exc.text):
                raise VolumeNotFound(
                    str(made.volume_id), "it disappeared while exporting"
                ) from None
            raise self._refusal(exc.text, f"export disk {made.volume_id}") from None
        if again is None:
            raise VolumeNotFound(str(made.volume_id), "it disappeared while exporting")
        return again

    @_operation
    def delete_volume(self, volume_id: VolumeId) -> None:
        found = self._command(
            "inspect", lambda m: commands.print_disk(volume_id, m), self._reader(volume_id)
        )
        if found is not None:
            paths = [found.path]  # wherever the volume's disk says its image is
        else:  # the disk entry is gone (an interrupted delete?): its image may remain anywhere
            paths = [DiskPath(base, volume_id) for base in list(self._bases.values())]
        action = f"delete disk {volume_id}"
        for attempt in range(2):
            try:
                self._command(
                    "delete", lambda m: commands.delete_disk(volume_id, paths, m), _nothing
                )
            except RouterOsError as exc:
                # "no such item" only if a concurrent delete won between find and remove: the
                # guarded script is safe to run again
                if not _NO_SUCH_ITEM.search(exc.text) or attempt:
                    raise self._refusal(exc.text, action) from None
            else:
                return

    @_operation
    def get_volume(self, volume_id: VolumeId) -> Volume:
        found = self._command(
            "inspect", lambda m: commands.print_disk(volume_id, m), self._reader(volume_id)
        )
        if found is None:
            raise VolumeNotFound(str(volume_id))
        return found

    @_operation
    def list_volumes(self) -> Sequence[Volume]:
        def read(body: str) -> list[Volume]:
            volumes = [volume_from_record(r, body) for r in parse_detail(body)]
            return [self._seen(v) for v in volumes if v is not None]

        return self._command("list", commands.list_disks, read)

    @_operation
    def resize_volume(self, volume_id: VolumeId, size: Size) -> Volume:
        current = self.get_volume(volume_id)
        if size <= current.size:
            return current
        try:
            grown = self._command(
                "resize",
                lambda m: commands.resize_disk(volume_id, size, m),
                self._reader(volume_id),
            )
        except RouterOsError as exc:
            if _NO_SUCH_ITEM.search(exc.text):
                raise VolumeNotFound(str(volume_id)) from None
            raise self._refusal(exc.text, f"grow disk {volume_id} to {size}") from None
        if grown is None:
            raise VolumeNotFound(str(volume_id), "it disappeared while growing")
        if grown.size < size:
            raise BackendError(
                f"the RDS accepted growing disk {volume_id} to {size} but reports {grown.size}"
            )
        return grown

    @_operation
    def capacity(self) -> CapacityReport:
        def read(body: str) -> CapacityReport:
            records = parse_detail(body)
            if not records:
                raise BackendError(
                    f"no disk on the RDS is mounted at {self._pool!r}; set the pool setting to "
                    "the mount point that holds the volumes"
                )
            return capacity_from_records(records, body, self._pool)

        try:
            return self._command("capacity", lambda m: commands.capacity(self._pool, m), read)
        except RouterOsError as exc:
            raise self._refusal(exc.text, "report the pool's capacity") from None

    @_operation
    def check_health(self) -> None:
        try:
            self._once("health", commands.health(self._marker()), _nothing)
        except BackendUnavailable:
            raise
        except (RouterOsError, BackendError) as exc:
            raise BackendUnavailable(f"the RDS does not answer commands properly: {exc}") from None


def _nothing(body: str) -> None:
    """For commands that print nothing on success."""
    if body.strip():
        raise MalformedOutput("the RDS printed something where it prints nothing", body)


def _as_requested(made: Volume, wanted: Volume) -> Volume:
    """RouterOS shows paths with a leading ``/``; keep the caller's spelling of the same file."""
    if made.path.value.lstrip("/") == wanted.path.value.lstrip("/"):
        return attrs.evolve(made, path=wanted.path)
    return made
