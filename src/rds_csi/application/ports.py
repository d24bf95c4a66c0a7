"""
The ports: what the use cases need from the outside world, as ``typing.Protocol``s.

Adapters subclass these explicitly so mypy checks each signature where the class is defined.
Every method's ``Raises:`` lists the domain errors it may raise; that list is the contract the
suites in ``tests/contract/`` hold every implementation to. Nothing else may escape: an adapter
translates its library's failures (paramiko, subprocess, HTTP) into these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import attrs

from rds_csi.application.snapshots_port import SnapshotBackend
from rds_csi.domain import CapacityReport, Nqn, NvmeTarget, Size, Volume, VolumeId


__all__ = [
    "AttachmentMetrics",
    "CapacityMetrics",
    "Clock",
    "Filesystem",
    "FilesystemStats",
    "Locks",
    "Metrics",
    "MountInfo",
    "Mounter",
    "NvmeInitiator",
    "SnapshotBackend",
    "StorageBackend",
]


@runtime_checkable
class StorageBackend(Protocol):
    """The RDS: file-backed disks exported over NVMe/TCP, and the pool they live in."""

    def create_volume(self, volume: Volume) -> Volume:
        """
        Make the disk file and its NVMe/TCP export as ``volume`` describes.

        Idempotent: if a disk with ``volume.volume_id`` as its slot exists already, it is
        returned unchanged, whatever its size or path (the caller judges compatibility), and
        nothing is created. A failure leaves no half-made disk behind.

        Raises:
            CapacityExhausted: the pool has no room for the file.
            BackendUnavailable: the RDS cannot be reached (safe to retry).
            BackendError: the RDS refused for another reason.
        """
        ...

    def delete_volume(self, volume_id: VolumeId) -> None:
        """
        Remove the disk and its image file. Idempotent: a missing disk is success.

        Raises:
            BackendUnavailable: the RDS cannot be reached (safe to retry).
            BackendError: the RDS refused.
        """
        ...

    def get_volume(self, volume_id: VolumeId) -> Volume:
        """
        Raises:
            VolumeNotFound: no disk has this slot.
            BackendUnavailable, BackendError: as above.
        """
        ...

    def list_volumes(self) -> Sequence[Volume]:
        """
        Every disk whose slot is a volume ID of ours, in any order. Disks of other owners
        (pools, hand-made disks) are not listed.

        Raises:
            BackendUnavailable, BackendError: as above.
        """
        ...

    def resize_volume(self, volume_id: VolumeId, size: Size) -> Volume:
        """
        Grow the disk file to ``size`` (never shrinks; a smaller size is a no-op).

        Raises:
            VolumeNotFound: no disk has this slot.
            CapacityExhausted: the pool has no room to grow.
            BackendUnavailable, BackendError: as above.
        """
        ...

    def capacity(self) -> CapacityReport:
        """
        The pool's total and free space.

        Raises:
            BackendUnavailable, BackendError: as above.
        """
        ...

    def check_health(self) -> None:
        """
        Cheaply confirm the RDS answers (for Probe).

        Raises:
            BackendUnavailable: it does not.
        """
        ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def time(self) -> float:
        """Seconds since the epoch (for timestamps shown to people)."""
        ...

    def sleep(self, seconds: float) -> None: ...


class Locks(Protocol):
    """A non-blocking per-key guard: one operation per volume at a time."""

    def hold(self, key: str) -> AbstractContextManager[None]:
        """
        Hold ``key`` for the ``with`` block.

        Raises:
            OperationInProgress: someone else holds it (at once; never waits).
        """
        ...


class Metrics(Protocol):
    """What the application reports; the Prometheus adapter turns it into series."""

    def backend_command(self, operation: str, seconds: float, outcome: str) -> None: ...

    def nvme_connect(self, outcome: str) -> None: ...

    def mount_recovery(self, outcome: str) -> None: ...

    def rpc_started(self, method: str) -> None:
        """A CSI call (``CreateVolume``, ...) has arrived and is being served."""
        ...

    def rpc_finished(self, method: str, code: str, seconds: float) -> None:
        """A CSI call has ended with the gRPC status ``code`` (``OK``, ``NOT_FOUND``, ...)."""
        ...

    def circuit_state(self, state: str) -> None:
        """The backend's circuit breaker is now ``closed``, ``open`` or ``half_open``."""
        ...

    def copy_started(self, kind: str) -> None:
        """An image copy on the RDS began: ``snapshot``, ``restore`` or ``clone``."""
        ...

    def copy_finished(self, kind: str, seconds: float, outcome: str) -> None:
        """That copy ended (``ok`` or ``error``) after ``seconds``."""
        ...


class CapacityMetrics(Protocol):
    """
    The pool as the controller last saw it (``application/capacity.py`` refreshes it), per
    RDS: ``rds`` is the control-plane address the controller talks to.
    """

    def pool_capacity(self, rds: str, report: CapacityReport) -> None:
        """The pool's size and free space (used is their difference)."""
        ...

    def volume_count(self, rds: str, count: int) -> None:
        """How many of our volumes the RDS holds."""
        ...

    def snapshot_count(self, rds: str, count: int) -> None:
        """How many of our snapshots the RDS holds (only where snapshots exist)."""
        ...

    def backend_up(self, rds: str, *, up: bool) -> None:
        """Whether the last refresh reached the RDS."""


class AttachmentMetrics(Protocol):
    """What the attachment use cases report (kept apart so node-only doubles need none of it)."""

    def attachments(self, by_mode: Mapping[str, int]) -> None:
        """The volumes attached now, by access mode name (every mode, zeros included)."""
        ...

    def migration(self, outcome: str, seconds: float) -> None:
        """A live migration ended: ``succeeded``, ``timed_out`` or ``aborted``."""
        ...

    def attach_refused(self, reason: str) -> None:
        """A ControllerPublish was fenced off: ``held`` (another node) or ``migration_timeout``."""
        ...

    def stale_attachments(self, count: int) -> None:
        """Attachments the reconciler found stale at its last pass."""
        ...


# --- node side -------------------------------------------------------------------------------


@runtime_checkable
class NvmeInitiator(Protocol):
    """
    Attaches NVMe/TCP targets to this node (nvme-cli; a loop-device stand-in on test hosts).

    Stateless: every answer is re-derived from the kernel (sysfs, the loop device list), so a
    restarted node plugin finds the connections it made before.
    """

    def connect(self, target: NvmeTarget) -> str:
        """
        Connect to ``target`` (idempotent: an existing connection is reused) and return the
        block device path, found by NQN and waited for within a bound. A connect that fails
        leaves no connection of its own making behind.

        Raises:
            VolumeNotFound: the target does not export this NQN.
            BackendUnavailable: the target cannot be reached, or the device never appeared.
            BackendError: the node itself is at fault (tool missing, host NQN file garbage,
                losetup refused).
        """
        ...

    def disconnect(self, nqn: Nqn) -> None:
        """
        Idempotent: a target not connected is success.

        Raises:
            BackendError: the connection is still there afterwards.
        """
        ...

    def device_for(self, nqn: Nqn) -> str | None:
        """The block device of a connected NQN, or None."""
        ...

    def connections(self) -> Sequence[Nqn]:
        """Every NQN this node is connected to (over a fabric; local drives are not listed)."""
        ...

    def lingering(self, volume_id: VolumeId) -> Sequence[str]:
        """
        Block devices this initiator attached for ``volume_id`` (under any NQN) that are no
        longer a connection but still exist, because a mount holds them (a loop device
        detached while busy). A mount of one is a stale mount of that volume, the volume's to
        unmount. Initiators whose devices vanish when the connection goes return none.
        """
        ...

    def rescan(self, nqn: Nqn) -> None:
        """
        Make the node see a new size after the target grew.

        Raises:
            VolumeNotFound: not connected.
            BackendError: the rescan failed.
        """
        ...


@attrs.frozen
class MountInfo:
    """
    One line of the mount table that matters to us.

    Attributes:
        source: The block device behind the mount (``/dev/nvme0n1``), for bind mounts too:
            the device of the filesystem a bound directory lives on, or the device node bound
            onto a file (``/dev/loop0``, not the devtmpfs it lives in). The name is the one
            the device had when it was mounted; after the device went away it names nothing,
            or another device.
        options: The per-mount options (``ro``, ``noatime``), not the filesystem's own.
        root: The path inside the source filesystem that is mounted here: ``/`` for a whole
            filesystem, ``/loop0`` for a bind of ``/dev/loop0``, ``/sub`` for a bind of a subdir.
        major_minor: The device number behind the mount (``7:0``): the filesystem's device, or
            the bound device node's. Empty when unknown. A staging mount whose device number
            no longer matches the NQN's device (``Filesystem.device_number``) is stale.
    """

    source: str
    target: str
    fs_type: str
    options: tuple[str, ...] = ()
    root: str = "/"
    major_minor: str = ""

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


@attrs.frozen
class FilesystemStats:
    bytes_total: int
    bytes_available: int
    bytes_used: int
    inodes_total: int = 0
    inodes_available: int = 0
    inodes_used: int = 0


class Mounter(Protocol):
    """
    mount(8) and friends. Paths are absolute. ``mount`` and ``bind`` need an existing mount
    point, as mount(8) does; ``make_mount_point`` is the one way to create one, and
    ``remove_mount_point`` the one way to delete it, so the caller always knows what it made.
    """

    def mount(self, source: str, target: str, fs_type: str, options: Sequence[str]) -> None:
        """
        Mount the filesystem on ``source`` at ``target`` with ``options``.

        Idempotent: ``source`` already mounted there is success; nothing is ever stacked.

        Raises:
            Conflict: something else is mounted at ``target``.
            InvalidArgument: a path, type or option that cannot be passed safely.
            BackendError: ``target`` does not exist, or mount failed (its stderr in the
                message); nothing is left mounted.
        """
        ...

    def bind(self, source: str, target: str, *, read_only: bool = False) -> None:
        """
        Bind ``source`` (a directory or a device node) onto ``target`` (an existing directory,
        or an existing file for a device node); read-only binds refuse writes. Idempotent
        like ``mount``.

        Raises:
            Conflict: something else, or the same thing with the other read-only flag, is
                mounted at ``target``.
            BackendError: ``source`` or ``target`` is missing, or the bind failed; nothing is
                left mounted.
        """
        ...

    def unmount(self, target: str) -> None:
        """
        Unmount everything mounted at ``target`` (the mount point stays; ``remove_mount_point``
        deletes it). Idempotent: a path that is not mounted, or does not exist, is fine.

        Raises:
            BackendError: it is still mounted (busy).
        """
        ...

    def mount_at(self, target: str) -> MountInfo | None:
        """
        What is mounted exactly at ``target`` (the topmost mount), if anything.

        ``MountInfo.source`` is the block device behind the mount, for bind mounts too: the
        device of the filesystem a bound directory lives on, or the bound device node itself.
        The node use cases compare it with ``NvmeInitiator.device_for``.
        """
        ...

    def mounts(self) -> Sequence[MountInfo]:
        """The whole mount table (the node use cases look for a device's other mounts)."""
        ...

    def make_mount_point(self, path: str, *, file: bool = False) -> bool:
        """
        Create ``path`` (a directory, or a file when ``file``) to mount onto, marked as made
        here (a mark the mount hides and ``remove_mount_point`` looks for); its parents are
        created too. Returns whether it was created (False: it existed already, unmarked).

        Raises:
            BackendError: it cannot be created.
        """
        ...

    def remove_mount_point(self, path: str) -> bool:
        """
        Remove a mount point ``make_mount_point`` made (it carries the mark) and that is no
        longer mounted. A path without the mark was made by someone else and is left alone.
        Returns whether it was removed. Idempotent: a missing path is fine (False).

        Raises:
            BackendError: it is still mounted, holds more than the mark, or cannot be removed.
        """
        ...

    def resolve(self, path: str) -> str:
        """
        ``path`` as the kernel walks it: every symlink (``/proc/self/root`` too) resolved,
        ``.`` and ``//`` folded. Components that do not exist yet are kept as written.

        Raises:
            BackendError: it cannot be resolved (a component cannot be read).
        """
        ...


class Filesystem(Protocol):
    """Filesystems on block devices (blkid, mkfs, resize2fs/xfs_growfs, statvfs).

    Every method raises BackendError when the tool fails or the device is missing.
    """

    def detect(self, device: str) -> str | None:
        """
        The filesystem type on ``device`` (``ext4``), or None only when it is blank. Anything
        else found there (a partition table, LUKS, several signatures) is reported, never None.

        Raises:
            BackendError: the device does not exist or cannot be probed.
        """
        ...

    def make(self, device: str, fs_type: str) -> None:
        """
        mkfs. Refuses a device that is not blank, whatever the caller checked before.

        Raises:
            InvalidArgument: an unsupported ``fs_type``.
            Conflict: the device holds a filesystem or other data.
            BackendError: mkfs failed.
        """
        ...

    def grow(self, device: str, mount_path: str, fs_type: str) -> None:
        """
        Grow the mounted filesystem to fill its (already grown) device.

        Raises:
            InvalidArgument: an unsupported ``fs_type``.
            BackendError: the resize tool failed.
        """
        ...

    def stats(self, path: str) -> FilesystemStats:
        """
        Bytes and inodes of the filesystem holding ``path``.

        Raises:
            NotFound: ``path`` does not exist.
            BackendError: it cannot be read (a stale mount answers EIO).
        """
        ...

    def device_size(self, device: str) -> int:
        """
        The size of a block device in bytes (``device`` may also be a file a device node is
        bound onto).

        Raises:
            BackendError: it does not exist or cannot be opened.
        """
        ...

    def device_number(self, device: str) -> str:
        """
        The ``major:minor`` of the block device node ``device`` (as ``MountInfo.major_minor``
        writes it): the node use cases compare it with a mount's to tell a stale mount.

        Raises:
            BackendError: ``device`` does not exist or is not a block device.
        """
        ...

    def is_block_device(self, path: str) -> bool:
        """Whether ``path`` is a block device node (a raw block volume published there)."""
        ...
