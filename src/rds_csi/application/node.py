"""
Node use cases: stage, unstage, publish, unpublish, expand and inspect a volume on this node.

Each takes the node ports (NvmeInitiator, Mounter, Filesystem) and the per-volume Locks in
its constructor and is called with plain request values; the servicer does nothing else.

The node is stateless: everything is rediscovered from the initiator's connections (found by
NQN, whose last part is the volume ID) and the mount table at the paths kubelet passes.

Layout on the node:

* mount volume: ``connect`` -> device; format it if blank (never a device with data); mount
  it at the staging path; publish bind-mounts the staging path onto the pod's target dir.
* block volume: ``connect`` only at stage; publish binds the device node onto a target file
  it creates. Never formatted.

Every mutating use case is idempotent (a repeat with the same arguments succeeds and changes
nothing) and undoes its own partial work when it fails: a failed stage leaves no mount and no
connection it made, a failed publish leaves no mount point it created.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from rds_csi.application.ports import (
    Filesystem,
    FilesystemStats,
    Locks,
    Mounter,
    MountInfo,
    NvmeInitiator,
)
from rds_csi.domain import (
    AccessMode,
    AlreadyExists,
    BackendError,
    CapacityRange,
    Conflict,
    InvalidArgument,
    MountAccess,
    Nqn,
    OutOfRange,
    Size,
    VolumeCapability,
    VolumeContext,
    VolumeId,
    VolumeNotFound,
    check_capabilities,
    parse_volume_reference,
)


__all__ = [
    "NodeExpandVolume",
    "NodeGetVolumeStats",
    "NodePublishVolume",
    "NodeStageVolume",
    "NodeUnpublishVolume",
    "NodeUnstageVolume",
    "VolumeStats",
    "check_node_path",
]

PATH_MAX_BYTES: Final = 4096


def check_node_path(path: str, field: str) -> str:
    """
    A path kubelet passed: required, absolute, no ``..``, no control characters.

    It reaches mount(8)'s argv; being absolute, it can never be read as an option.
    """
    if not path:
        raise InvalidArgument(field, "is required")
    if len(path.encode()) > PATH_MAX_BYTES:
        raise InvalidArgument(field, f"is longer than {PATH_MAX_BYTES} bytes")
    if not path.startswith("/"):
        raise InvalidArgument(field, f"{path!r} is not an absolute path")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):  # noqa: PLR2004
        raise InvalidArgument(field, f"{path!r} contains a control character")
    if ".." in path.split("/"):
        raise InvalidArgument(field, f"{path!r} must not contain '..'")
    return path


def _owner(nqn: Nqn) -> str:
    """The volume ID an NQN names: its last ``:``-part (``<prefix>:<volume-id>``)."""
    return nqn.value.rpartition(":")[2]


def _connections_of(initiator: NvmeInitiator, volume_id: VolumeId) -> list[Nqn]:
    """This node's NVMe/TCP connections to ``volume_id``, whatever NQN prefix made them."""
    return [nqn for nqn in initiator.connections() if _owner(nqn) == str(volume_id)]


def _device_of(initiator: NvmeInitiator, volume_id: VolumeId) -> str | None:
    for nqn in _connections_of(initiator, volume_id):
        device = initiator.device_for(nqn)
        if device:
            return device
    return None


def _mode(info: MountInfo) -> str:
    return "read-only" if info.read_only else "read-write"


class NodeStageVolume:
    """
    ``__call__(volume_id, staging_path, capability, context)``: attach and prepare a volume.

    ``context`` is the volume_context (ours or the Go driver's keys). A mount volume is
    connected, formatted with the capability's fs_type if blank, and mounted at
    ``staging_path`` (which kubelet created). A block volume is only connected.

    Raises:
        InvalidArgument: a bad ID, path or context.
        VolumeNotFound: the target does not export the volume.
        AlreadyExists: ``staging_path`` holds something else, or this volume staged another way.
        Conflict: the device holds a different filesystem than the capability asks for.
        OperationInProgress: another operation holds the volume.
        BackendUnavailable, BackendError: from the ports; nothing made is left behind.
    """

    def __init__(
        self, initiator: NvmeInitiator, mounter: Mounter, filesystem: Filesystem, locks: Locks
    ) -> None:
        self._initiator = initiator
        self._mounter = mounter
        self._filesystem = filesystem
        self._locks = locks

    def __call__(
        self,
        volume_id: str,
        staging_path: str,
        capability: VolumeCapability,
        context: Mapping[str, str],
    ) -> None:
        vid = parse_volume_reference(volume_id)
        check_node_path(staging_path, "staging_target_path")
        check_capabilities([capability], field="volume_capability")
        ctx = VolumeContext.from_mapping(context)
        if _owner(ctx.nqn) != str(vid):
            raise InvalidArgument("volume_context.nqn", f"{ctx.nqn} does not name volume {vid}")
        with self._locks.hold(str(vid)):
            current = self._mounter.mount_at(staging_path)
            if current is not None:
                self._check_already_staged(vid, ctx.nqn, staging_path, current, capability)
                return
            ours = self._initiator.device_for(ctx.nqn) is None
            try:
                device = self._initiator.connect(ctx.target)
                if isinstance(capability.access, MountAccess):
                    self._mount(vid, device, staging_path, capability, capability.access)
            except BaseException as exc:
                self._undo(staging_path, ctx.nqn, disconnect=ours, error=exc)
                raise

    def _check_already_staged(
        self,
        vid: VolumeId,
        nqn: Nqn,
        staging_path: str,
        current: MountInfo,
        capability: VolumeCapability,
    ) -> None:
        device = self._initiator.device_for(nqn)
        if device is None or current.source != device:
            raise AlreadyExists(
                f"staging_target_path {staging_path} already has {current.source} mounted, "
                f"not volume {vid}"
            )
        if not isinstance(capability.access, MountAccess):
            raise AlreadyExists(
                f"volume {vid} is staged at {staging_path} as a filesystem; "
                "a raw block capability was asked for"
            )
        if current.fs_type != capability.access.fs_type:
            raise AlreadyExists(
                f"volume {vid} is staged at {staging_path} with {current.fs_type}; "
                f"the capability asks for {capability.access.fs_type}"
            )

    def _mount(
        self,
        vid: VolumeId,
        device: str,
        staging_path: str,
        capability: VolumeCapability,
        access: MountAccess,
    ) -> None:
        found = self._filesystem.detect(device)
        if found is None:
            self._filesystem.make(device, access.fs_type)
        elif found != access.fs_type:
            raise Conflict(
                f"volume {vid}: its device {device} holds {found}, the capability asks for "
                f"{access.fs_type}; refusing to reformat a volume with data"
            )
        options = list(access.mount_flags)
        if capability.access_mode.is_read_only:
            options.append("ro")
        self._mounter.mount(device, staging_path, access.fs_type, options)

    def _undo(self, staging_path: str, nqn: Nqn, *, disconnect: bool, error: BaseException) -> None:
        # Best effort: a cleanup failure is noted on the original error, never replaces it.
        try:
            if self._mounter.mount_at(staging_path) is not None:
                self._mounter.unmount(staging_path)
            if disconnect:
                self._initiator.disconnect(nqn)
        except Exception as cleanup:  # noqa: BLE001 - reported on the error being raised
            error.add_note(f"cleanup after the failed stage also failed: {cleanup}")


class NodeUnstageVolume:
    """
    ``__call__(volume_id, staging_path)``: undo NodeStageVolume.

    Unmounts the staging path if mounted and disconnects every NVMe/TCP connection of the
    volume. A volume that is not staged is success.

    Raises:
        InvalidArgument, VolumeNotFound (an ID not of ours), OperationInProgress,
        BackendError.
    """

    def __init__(self, initiator: NvmeInitiator, mounter: Mounter, locks: Locks) -> None:
        self._initiator = initiator
        self._mounter = mounter
        self._locks = locks

    def __call__(self, volume_id: str, staging_path: str) -> None:
        vid = parse_volume_reference(volume_id)
        check_node_path(staging_path, "staging_target_path")
        with self._locks.hold(str(vid)):
            if self._mounter.mount_at(staging_path) is not None:
                self._mounter.unmount(staging_path)
            for nqn in _connections_of(self._initiator, vid):
                self._initiator.disconnect(nqn)


class NodePublishVolume:
    """
    ``__call__(volume_id, staging_path, target_path, capability, read_only=False)``: make a
    staged volume visible at the pod's ``target_path``.

    Mount volume: creates the ``target_path`` directory and bind-mounts the staging path
    onto it. Block volume: creates an empty file at ``target_path`` and binds the device node
    onto it. Read-only when ``read_only`` or the access mode is a reader mode. Several target
    paths are fine (pods sharing a node), except for SINGLE_NODE_SINGLE_WRITER.

    Raises:
        InvalidArgument: a bad ID or path.
        Conflict: no ``staging_path``, the volume is not staged on this node, or it is
            SINGLE_NODE_SINGLE_WRITER and published at another path.
        AlreadyExists: ``target_path`` is already mounted differently.
        OperationInProgress, BackendError.
    """

    def __init__(
        self, initiator: NvmeInitiator, mounter: Mounter, filesystem: Filesystem, locks: Locks
    ) -> None:
        self._initiator = initiator
        self._mounter = mounter
        self._filesystem = filesystem
        self._locks = locks

    def __call__(
        self,
        volume_id: str,
        staging_path: str,
        target_path: str,
        capability: VolumeCapability,
        *,
        read_only: bool = False,
    ) -> None:
        vid = parse_volume_reference(volume_id)
        check_node_path(target_path, "target_path")
        if not staging_path:
            raise Conflict(
                "staging_target_path is required: this driver stages volumes "
                "(STAGE_UNSTAGE_VOLUME) before publishing them"
            )
        check_node_path(staging_path, "staging_target_path")
        check_capabilities([capability], field="volume_capability")
        read_only = read_only or capability.access_mode.is_read_only
        with self._locks.hold(str(vid)):
            source, device = self._source(vid, staging_path, capability)
            current = self._mounter.mount_at(target_path)
            if current is not None:
                self._check_already_published(vid, target_path, current, device, capability)
                if current.read_only != read_only:
                    raise AlreadyExists(
                        f"volume {vid} is published at {target_path} {_mode(current)}; "
                        f"this request wants it {'read-only' if read_only else 'read-write'}"
                    )
                return
            if capability.access_mode is AccessMode.SINGLE_NODE_SINGLE_WRITER:
                self._check_single_writer(vid, device, staging_path, target_path)
            created = self._mounter.make_mount_point(target_path, file=capability.is_block)
            try:
                self._mounter.bind(source, target_path, read_only=read_only)
            except BaseException as exc:
                if created:
                    try:
                        self._mounter.remove_mount_point(target_path)
                    except Exception as cleanup:  # noqa: BLE001 - noted on the real error
                        exc.add_note(f"removing {target_path} also failed: {cleanup}")
                raise

    def _source(
        self, vid: VolumeId, staging_path: str, capability: VolumeCapability
    ) -> tuple[str, str]:
        """What to bind (the device node or the staging dir) and the device behind it."""
        device = _device_of(self._initiator, vid)
        if device is None:
            raise Conflict(
                f"volume {vid} is not staged on this node (no NVMe/TCP connection); "
                "NodeStageVolume must succeed first"
            )
        if capability.is_block:
            return device, device
        staged = self._mounter.mount_at(staging_path)
        if staged is None or staged.source != device:
            raise Conflict(
                f"volume {vid} is not staged at staging_target_path {staging_path}; "
                "NodeStageVolume must succeed first"
            )
        return staging_path, device

    def _check_single_writer(
        self, vid: VolumeId, device: str, staging_path: str, target_path: str
    ) -> None:
        """SINGLE_NODE_SINGLE_WRITER (ReadWriteOncePod): one workload, so one target path."""
        own = {posixpath.normpath(staging_path), posixpath.normpath(target_path)}
        others = [
            m.target
            for m in self._mounter.mounts()
            if m.source == device and posixpath.normpath(m.target) not in own
        ]
        if others:
            raise Conflict(
                f"volume {vid} is SINGLE_NODE_SINGLE_WRITER and already published at "
                f"{others[0]}; it cannot be published at {target_path} too"
            )

    def _check_already_published(
        self,
        vid: VolumeId,
        target_path: str,
        current: MountInfo,
        device: str,
        capability: VolumeCapability,
    ) -> None:
        if current.source != device:
            raise AlreadyExists(
                f"target_path {target_path} already has {current.source} mounted, not volume {vid}"
            )
        if self._filesystem.is_block_device(target_path) != capability.is_block:
            raise AlreadyExists(
                f"volume {vid} is published at {target_path} with a different access type"
            )


class NodeUnpublishVolume:
    """
    ``__call__(volume_id, target_path)``: undo NodePublishVolume.

    Unmounts ``target_path`` if mounted, then removes the directory or file publish created.
    A path already gone or not mounted is success.

    Raises:
        InvalidArgument, VolumeNotFound (an ID not of ours), OperationInProgress,
        BackendError.
    """

    def __init__(self, mounter: Mounter, locks: Locks) -> None:
        self._mounter = mounter
        self._locks = locks

    def __call__(self, volume_id: str, target_path: str) -> None:
        vid = parse_volume_reference(volume_id)
        check_node_path(target_path, "target_path")
        with self._locks.hold(str(vid)):
            if self._mounter.mount_at(target_path) is not None:
                self._mounter.unmount(target_path)
            self._mounter.remove_mount_point(target_path)


@attrs.frozen
class VolumeStats:
    """
    NodeGetVolumeStats' answer.

    Attributes:
        total_bytes: The filesystem's size, or the raw device's.
        filesystem: Space and inodes for a mount volume; None for a raw block volume, or
            when an abnormal volume's usage cannot be read (``total_bytes`` is then 0).
        abnormal: The volume condition: True when the NVMe/TCP connection is gone or the
            mount no longer sits on the volume's current device (a stale mount).
        message: Why it is abnormal, for the operator.
    """

    total_bytes: int
    filesystem: FilesystemStats | None
    abnormal: bool = False
    message: str = ""


class NodeGetVolumeStats:
    """
    ``__call__(volume_id, volume_path)``: usage and condition of a published or staged volume.

    Takes no lock: kubelet polls it, and reading must not make a concurrent stage ABORTED.

    Raises:
        InvalidArgument: a bad ID or path.
        VolumeNotFound: nothing is mounted at ``volume_path``.
        BackendError.
    """

    def __init__(self, initiator: NvmeInitiator, mounter: Mounter, filesystem: Filesystem) -> None:
        self._initiator = initiator
        self._mounter = mounter
        self._filesystem = filesystem

    def __call__(self, volume_id: str, volume_path: str) -> VolumeStats:
        vid = parse_volume_reference(volume_id)
        check_node_path(volume_path, "volume_path")
        info = self._mounter.mount_at(volume_path)
        if info is None:
            raise VolumeNotFound(str(vid), f"nothing is mounted at volume_path {volume_path}")
        device = _device_of(self._initiator, vid)
        abnormal, message = False, ""
        if device is None:
            abnormal, message = True, f"volume {vid} has no NVMe/TCP connection on this node"
        elif info.source != device:
            abnormal = True
            message = (
                f"{volume_path} is mounted from {info.source}, but volume {vid} is now {device} "
                "(a stale mount after a reconnect)"
            )
        try:
            if self._filesystem.is_block_device(volume_path):
                size = self._filesystem.device_size(volume_path)
                return VolumeStats(size, None, abnormal, message)
            stats = self._filesystem.stats(volume_path)
        except BackendError as exc:
            if not abnormal:
                raise
            # The condition is the news; kubelet still wants a usage entry, so report zero.
            return VolumeStats(0, None, abnormal, f"{message}; usage unreadable: {exc}")
        return VolumeStats(stats.bytes_total, stats, abnormal, message)


class NodeExpandVolume:
    """
    ``__call__(volume_id, volume_path, capacity, capability=None) -> Size``: let the node see
    a volume the controller grew, and grow its filesystem (online).

    Rescans the NVMe namespace, then grows the filesystem mounted at ``volume_path`` (a raw
    block volume needs nothing more). Returns the device's size. A volume already big enough
    is success.

    Raises:
        InvalidArgument: a bad ID, path or capability.
        VolumeNotFound: nothing is mounted at ``volume_path``, or no connection on this node.
        OutOfRange: the device is still smaller than ``capacity.required``, or larger than
            ``capacity.limit``.
        OperationInProgress, BackendError.
    """

    def __init__(
        self, initiator: NvmeInitiator, mounter: Mounter, filesystem: Filesystem, locks: Locks
    ) -> None:
        self._initiator = initiator
        self._mounter = mounter
        self._filesystem = filesystem
        self._locks = locks

    def __call__(
        self,
        volume_id: str,
        volume_path: str,
        capacity: CapacityRange,
        capability: VolumeCapability | None = None,
    ) -> Size:
        vid = parse_volume_reference(volume_id)
        check_node_path(volume_path, "volume_path")
        if capability is not None:
            check_capabilities([capability], field="volume_capability")
        with self._locks.hold(str(vid)):
            info = self._mounter.mount_at(volume_path)
            if info is None:
                raise VolumeNotFound(str(vid), f"nothing is mounted at volume_path {volume_path}")
            nqns: Sequence[Nqn] = _connections_of(self._initiator, vid)
            if not nqns:
                raise VolumeNotFound(str(vid), "it has no NVMe/TCP connection on this node")
            self._initiator.rescan(nqns[0])
            device = self._initiator.device_for(nqns[0])
            if device is None:
                raise VolumeNotFound(str(vid), "its NVMe/TCP connection went away")
            block = (
                capability.is_block
                if capability is not None
                else self._filesystem.is_block_device(volume_path)
            )
            if not block:
                self._filesystem.grow(device, volume_path, info.fs_type)
            size = self._filesystem.device_size(device)
        if capacity.required and size < capacity.required:
            raise OutOfRange(
                f"capacity_range: volume {vid} has {size} bytes on this node after a rescan, "
                f"below required_bytes {capacity.required}; expand it on the controller first"
            )
        if capacity.limit and size > capacity.limit:
            raise OutOfRange(
                f"capacity_range: volume {vid} has {size} bytes, above limit_bytes {capacity.limit}"
            )
        return Size(size)
