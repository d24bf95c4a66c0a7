"""
Node use cases: stage, unstage, publish, unpublish, expand and inspect a volume on this node.

Each takes the node ports (NvmeInitiator, Mounter, Filesystem, Metrics) and the per-volume
Locks in its constructor and is called with plain request values; the servicer does nothing
else.

The node is stateless: everything is rediscovered from the initiator's connections (found by
NQN, whose last part is the volume ID) and the mount table at the paths kubelet passes.

Layout on the node:

* mount volume: ``connect`` -> device; format it if blank (never a device with data); mount
  it at the staging path; publish bind-mounts the staging path onto the pod's target dir.
* block volume: ``connect`` only at stage; publish binds the device node onto a target file
  it creates. Never formatted.

Every mutating use case is idempotent (a repeat with the same arguments succeeds and changes
nothing) and undoes its own partial work when it fails: a failed stage leaves no mount, no
mount point and no connection it made, a failed publish leaves no mount point it created.

Stale mounts. A mount is on a device: ``MountInfo.major_minor`` (or, failing that, its
``source``). The volume's device is what ``NvmeInitiator.device_for`` says now. When the two
differ (the NVMe/TCP connection was lost for longer than ctrl-loss-tmo and came back as a
new namespace device, or is gone altogether) the mount is stale: reads and writes through it
fail. Stage and publish recover a stale staging mount by remounting the current device, once
nothing else holds the old one (a second live superblock of one filesystem would corrupt it;
xfs refuses it outright); stats report it as an abnormal volume condition; expand refuses.
Recoveries are counted through ``Metrics.mount_recovery``, connects through
``Metrics.nvme_connect``.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import attrs

from rds_csi.application.ports import (
    Filesystem,
    FilesystemStats,
    Locks,
    Metrics,
    Mounter,
    MountInfo,
    NvmeInitiator,
)
from rds_csi.application.structure import structure_context
from rds_csi.domain import (
    AccessMode,
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    CapacityRange,
    Conflict,
    InvalidArgument,
    MountAccess,
    NotFound,
    Nqn,
    NvmeTarget,
    OutOfRange,
    Size,
    VolumeCapability,
    VolumeContext,
    VolumeId,
    VolumeNotFound,
    check_capabilities,
    parse_volume_reference,
)
from rds_csi.domain.capability import SUPPORTED_FS_TYPES


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

_log = logging.getLogger(__name__)

PATH_MAX_BYTES: Final = 4096

# Metrics.nvme_connect outcomes.
CONNECTED: Final = "success"
REUSED: Final = "reused"
NOT_EXPORTED: Final = "not_found"
UNREACHABLE: Final = "unavailable"
FAILED: Final = "failure"
# Metrics.mount_recovery outcomes.
RECOVERED: Final = "recovered"
RECOVERY_REFUSED: Final = "refused"
RECOVERY_FAILED: Final = "failed"


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


def _mode(info: MountInfo) -> str:
    return "read-only" if info.read_only else "read-write"


def _norm(path: str) -> str:
    return posixpath.normpath(path)


def _mount_options(capability: VolumeCapability, access: MountAccess) -> list[str]:
    options = list(access.mount_flags)
    if capability.access_mode.is_read_only:
        options.append("ro")
    return options


Step = tuple[str, Callable[[], object]]


def _cleanup(error: BaseException, what: str, steps: Sequence[Step]) -> None:
    """
    Run undo ``steps`` (name, zero-argument callable) in order, stopping at the first that
    fails: each later step assumes the earlier ones worked (never disconnect a device that is
    still mounted). A cleanup failure is noted on ``error``, never replaces it.
    """
    for name, step in steps:
        try:
            step()
        except Exception as cleanup:  # noqa: BLE001 - reported on the error being raised
            error.add_note(f"cleanup after the failed {what} also failed ({name}): {cleanup}")
            _log.warning("cleanup after the failed %s: %s failed: %s", what, name, cleanup)
            return


class _Node:
    """What every node use case asks the ports: the volume's device, and what sits on it."""

    def __init__(
        self,
        initiator: NvmeInitiator,
        mounter: Mounter,
        filesystem: Filesystem,
        metrics: Metrics | None = None,
    ) -> None:
        self.initiator = initiator
        self.mounter = mounter
        self.filesystem = filesystem
        self.metrics = metrics

    def connections_of(self, volume_id: VolumeId) -> list[Nqn]:
        """This node's NVMe/TCP connections to ``volume_id``, whatever NQN prefix made them."""
        return [nqn for nqn in self.initiator.connections() if _owner(nqn) == str(volume_id)]

    def device_of(self, volume_id: VolumeId) -> str | None:
        for nqn in self.connections_of(volume_id):
            device = self.initiator.device_for(nqn)
            if device:
                return device
        return None

    def number_of(self, device: str) -> str | None:
        try:
            return self.filesystem.device_number(device)
        except BackendError:
            return None  # gone between the question and the answer

    def on_device(self, info: MountInfo, device: str) -> bool:
        """Whether ``info`` is a mount of ``device`` as it is now (not of a device now gone)."""
        if info.major_minor:
            return info.major_minor == self.number_of(device)
        return info.source == device

    def mounts_on(self, devices: Sequence[str], *, besides: Sequence[str]) -> list[str]:
        """Mount points, other than ``besides``, on any of ``devices`` as they are now."""
        numbers = {self.number_of(d) for d in devices} - {None}
        paths = set(devices)
        skip = {_norm(p) for p in besides}
        return [
            m.target
            for m in self.mounter.mounts()
            if _norm(m.target) not in skip
            and (m.major_minor in numbers if m.major_minor else m.source in paths)
        ]

    @staticmethod
    def same_origin(info: MountInfo, other: MountInfo) -> bool:
        """Both mounts are on one device (live or not)."""
        if info.major_minor and other.major_minor:
            return info.major_minor == other.major_minor
        return info.source == other.source

    def holders(self, stale: MountInfo, *, besides: Sequence[str]) -> list[str]:
        """Mount points, other than ``besides``, still on the device ``stale`` is on."""
        skip = {_norm(p) for p in besides}
        return [
            m.target
            for m in self.mounter.mounts()
            if _norm(m.target) not in skip and self.same_origin(m, stale)
        ]

    def volume_on(self, info: MountInfo, besides: VolumeId) -> str | None:
        """Another volume connected here whose current device ``info`` is a mount of."""
        for nqn in self.initiator.connections():
            if _owner(nqn) == str(besides):
                continue
            device = self.initiator.device_for(nqn)
            if device and self.on_device(info, device):
                return _owner(nqn)
        return None

    def connect(self, target: NvmeTarget, *, reused: bool) -> str:
        try:
            device = self.initiator.connect(target)
        except VolumeNotFound:
            self._connect_outcome(NOT_EXPORTED)
            raise
        except BackendUnavailable:
            self._connect_outcome(UNREACHABLE)
            raise
        except Exception:
            self._connect_outcome(FAILED)
            raise
        self._connect_outcome(REUSED if reused else CONNECTED)
        return device

    def _connect_outcome(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.nvme_connect(outcome)

    def recovery_outcome(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.mount_recovery(outcome)

    def stale_reason(self, vid: VolumeId, path: str, info: MountInfo, device: str | None) -> str:
        if device is None:
            return (
                f"{path} is mounted from {info.source}, but volume {vid} has no NVMe/TCP "
                "connection on this node (the device is gone)"
            )
        return (
            f"{path} is mounted from {info.source} ({info.major_minor or 'unknown number'}), "
            f"but volume {vid} is now {device} ({self.number_of(device) or 'unknown number'}): "
            "a stale mount after a reconnect"
        )

    def refuse_while_held(self, vid: VolumeId, staging_path: str, stale: MountInfo) -> None:
        """
        Raises:
            Conflict: mounts besides the staging path still hold the stale mount's device
                (counted as a refused recovery).
        """
        holders = self.holders(stale, besides=[staging_path])
        if holders:
            self.recovery_outcome(RECOVERY_REFUSED)
            raise Conflict(
                f"volume {vid}: the staging mount at {staging_path} is stale, and "
                f"{', '.join(holders)} still use{'s' if len(holders) == 1 else ''} the old "
                f"device {stale.source}; it is remounted once those are unpublished (their "
                "pods restarted), never while a second copy of the filesystem is live"
            )

    def remount_staging(
        self,
        vid: VolumeId,
        staging_path: str,
        stale: MountInfo,
        *,
        device: str,
        fs_type: str,
        options: Sequence[str],
    ) -> None:
        """
        Replace the stale staging mount ``stale`` with ``device``, which must already hold
        ``fs_type``: a recovery never formats.

        Raises:
            Conflict: other mounts still hold the old device (a refused recovery), or
                ``device`` holds no ``fs_type`` (a failed one).
            BackendError: from the ports (a failed recovery).
        """
        self.refuse_while_held(vid, staging_path, stale)
        _log.warning(
            "volume %s: recovering the stale staging mount %s (%s -> %s)",
            vid,
            staging_path,
            stale.source,
            device,
        )
        try:
            self.mounter.unmount(staging_path)
            self._require_filesystem(vid, staging_path, device, fs_type)
            self.mounter.mount(device, staging_path, fs_type, options)
        except Exception:
            self.recovery_outcome(RECOVERY_FAILED)
            raise
        self.recovery_outcome(RECOVERED)
        _log.warning("volume %s: %s is mounted from %s again", vid, staging_path, device)

    def _require_filesystem(self, vid: VolumeId, path: str, device: str, fs_type: str) -> None:
        found = self.filesystem.detect(device)
        if found != fs_type:
            raise Conflict(
                f"volume {vid}: recovering the stale mount at {path}: its device {device} "
                f"holds {found or 'no filesystem'}, not {fs_type}; a recovery never formats"
            )


class NodeStageVolume:
    """
    ``__call__(volume_id, staging_path, capability, context)``: attach and prepare a volume.

    ``context`` is the volume_context (ours or the Go driver's keys). A mount volume is
    connected, formatted with the capability's fs_type if blank, and mounted at
    ``staging_path`` (which kubelet created). A block volume is only connected.

    A repeat finds the volume mounted and succeeds. A stale mount of the volume at
    ``staging_path`` (its device gone, or back under another name) is recovered: the
    volume is reconnected if need be and its current device mounted in place.

    Raises:
        InvalidArgument: a bad ID, path or context.
        VolumeNotFound: the target does not export the volume.
        AlreadyExists: ``staging_path`` holds something else, or this volume staged another way.
        Conflict: the device holds a different filesystem (or a partition table, or other
            data) than the capability asks for; a stale mount cannot be recovered yet.
        OperationInProgress: another operation holds the volume.
        BackendUnavailable, BackendError: from the ports; nothing made is left behind.
    """

    def __init__(
        self,
        initiator: NvmeInitiator,
        mounter: Mounter,
        filesystem: Filesystem,
        locks: Locks,
        metrics: Metrics | None = None,
    ) -> None:
        self._node = _Node(initiator, mounter, filesystem, metrics)
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
        ctx = structure_context(context)
        if _owner(ctx.nqn) != str(vid):
            raise InvalidArgument("volume_context.nqn", f"{ctx.nqn} does not name volume {vid}")
        with self._locks.hold(str(vid)):
            current = self._mounter.mount_at(staging_path)
            if current is not None:
                self._staged_already(vid, ctx, staging_path, current, capability)
            else:
                self._stage(vid, ctx, staging_path, capability)

    def _stage(
        self, vid: VolumeId, ctx: VolumeContext, staging_path: str, capability: VolumeCapability
    ) -> None:
        access = capability.access
        made = (
            self._mounter.make_mount_point(staging_path)
            if isinstance(access, MountAccess)
            else False
        )
        was_connected = self._initiator.device_for(ctx.nqn) is not None
        try:
            device = self._node.connect(ctx.target, reused=was_connected)
            if isinstance(access, MountAccess):
                self._format_and_mount(vid, device, staging_path, capability, access)
        except BaseException as exc:
            steps: list[Step] = [("unmount", lambda: self._unmount_if_mounted(staging_path))]
            if not was_connected:
                steps.append(("disconnect", lambda: self._initiator.disconnect(ctx.nqn)))
            if made:
                steps.append(
                    ("remove mount point", lambda: self._mounter.remove_mount_point(staging_path))
                )
            _cleanup(exc, "stage", steps)
            raise

    def _unmount_if_mounted(self, path: str) -> None:
        if self._mounter.mount_at(path) is not None:
            self._mounter.unmount(path)

    def _format_and_mount(
        self,
        vid: VolumeId,
        device: str,
        staging_path: str,
        capability: VolumeCapability,
        access: MountAccess,
    ) -> None:
        # detect() names anything it finds (a filesystem, a partition table, LUKS): only a
        # device it calls blank is formatted; mkfs itself refuses anything else, too.
        found = self._filesystem.detect(device)
        if found is None:
            self._filesystem.make(device, access.fs_type)
        elif found != access.fs_type:
            raise Conflict(
                f"volume {vid}: its device {device} holds {found}, the capability asks for "
                f"{access.fs_type}; refusing to reformat a volume with data"
            )
        self._mounter.mount(
            device, staging_path, access.fs_type, _mount_options(capability, access)
        )

    def _staged_already(
        self,
        vid: VolumeId,
        ctx: VolumeContext,
        staging_path: str,
        current: MountInfo,
        capability: VolumeCapability,
    ) -> None:
        access = capability.access
        device = self._initiator.device_for(ctx.nqn)
        if device is not None and self._node.on_device(current, device):
            if not isinstance(access, MountAccess):
                raise AlreadyExists(
                    f"volume {vid} is staged at {staging_path} as a filesystem; "
                    "a raw block capability was asked for"
                )
            if current.fs_type != access.fs_type:
                raise AlreadyExists(
                    f"volume {vid} is staged at {staging_path} with {current.fs_type}; "
                    f"the capability asks for {access.fs_type}"
                )
            return
        other = self._node.volume_on(current, besides=vid)
        if (
            other is not None
            or not isinstance(access, MountAccess)
            or current.fs_type not in SUPPORTED_FS_TYPES
        ):
            # Not a stale mount of ours: another volume, or nothing we could have mounted.
            raise AlreadyExists(
                f"staging_target_path {staging_path} already has {current.source} "
                f"({current.fs_type}) mounted, not volume {vid}"
                + (f" (it is volume {other}'s device)" if other else "")
            )
        self._recover(
            vid, ctx, staging_path, current, capability=capability, access=access, device=device
        )

    def _recover(
        self,
        vid: VolumeId,
        ctx: VolumeContext,
        staging_path: str,
        stale: MountInfo,
        *,
        capability: VolumeCapability,
        access: MountAccess,
        device: str | None,
    ) -> None:
        _log.warning(
            "volume %s: %s", vid, self._node.stale_reason(vid, staging_path, stale, device)
        )
        was_connected = device is not None
        self._node.refuse_while_held(vid, staging_path, stale)  # before connecting for nothing
        try:
            if device is None:
                device = self._node.connect(ctx.target, reused=False)
        except Exception:
            self._node.recovery_outcome(RECOVERY_FAILED)
            raise
        try:
            self._node.remount_staging(
                vid,
                staging_path,
                stale,
                device=device,
                fs_type=access.fs_type,
                options=_mount_options(capability, access),
            )
        except BaseException as exc:
            if not was_connected:
                # The recovery made this connection; a failed recovery does not keep it.
                _cleanup(
                    exc, "recovery", [("disconnect", lambda: self._initiator.disconnect(ctx.nqn))]
                )
            raise


class NodeUnstageVolume:
    """
    ``__call__(volume_id, staging_path)``: undo NodeStageVolume.

    Unmounts the staging path if mounted and disconnects every NVMe/TCP connection of the
    volume. A volume that is not staged is success. A volume still published (its device
    bound somewhere besides the staging path) is refused: disconnecting it would pull the
    device from under a pod.

    Raises:
        InvalidArgument, VolumeNotFound (an ID not of ours), OperationInProgress.
        Conflict: the volume is still published on this node.
        BackendError: from the ports.
    """

    def __init__(
        self, initiator: NvmeInitiator, mounter: Mounter, filesystem: Filesystem, locks: Locks
    ) -> None:
        self._node = _Node(initiator, mounter, filesystem)
        self._initiator = initiator
        self._mounter = mounter
        self._locks = locks

    def __call__(self, volume_id: str, staging_path: str) -> None:
        vid = parse_volume_reference(volume_id)
        check_node_path(staging_path, "staging_target_path")
        with self._locks.hold(str(vid)):
            nqns = self._node.connections_of(vid)
            devices = [d for d in (self._initiator.device_for(n) for n in nqns) if d]
            published = self._node.mounts_on(devices, besides=[staging_path])
            if published:
                raise Conflict(
                    f"volume {vid} is still published at {', '.join(published)}; "
                    "NodeUnpublishVolume must succeed there first"
                )
            if self._mounter.mount_at(staging_path) is not None:
                self._mounter.unmount(staging_path)
            for nqn in nqns:
                self._initiator.disconnect(nqn)


class NodePublishVolume:
    """
    ``__call__(volume_id, staging_path, target_path, capability, read_only=False)``: make a
    staged volume visible at the pod's ``target_path``.

    Mount volume: creates the ``target_path`` directory and bind-mounts the staging path
    onto it. Block volume: creates an empty file at ``target_path`` and binds the device node
    onto it. Read-only when ``read_only`` or the access mode is a reader mode. Several target
    paths are fine (pods sharing a node, a VM migrating), except for SINGLE_NODE_SINGLE_WRITER.

    A stale staging mount is recovered first (the current device remounted), and a stale
    bind at ``target_path`` is replaced.

    Raises:
        InvalidArgument: a bad ID or path.
        Conflict: no ``staging_path``, the volume is not staged on this node, its stale
            staging mount cannot be recovered yet, or it is SINGLE_NODE_SINGLE_WRITER and
            published at another path.
        AlreadyExists: ``target_path`` is already mounted differently.
        OperationInProgress, BackendError.
    """

    def __init__(
        self,
        initiator: NvmeInitiator,
        mounter: Mounter,
        filesystem: Filesystem,
        locks: Locks,
        metrics: Metrics | None = None,
    ) -> None:
        self._node = _Node(initiator, mounter, filesystem, metrics)
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
            device = self._node.device_of(vid)
            if device is None:
                raise Conflict(
                    f"volume {vid} is not staged on this node (no NVMe/TCP connection); "
                    "NodeStageVolume must succeed first"
                )
            source = (
                device
                if capability.is_block
                else self._staged(vid, staging_path, device, capability)
            )
            current = self._mounter.mount_at(target_path)
            if current is not None and self._published_already(
                vid, target_path, current, device=device, capability=capability, read_only=read_only
            ):
                return
            if capability.access_mode is AccessMode.SINGLE_NODE_SINGLE_WRITER:
                self._check_single_writer(vid, device, staging_path, target_path)
            made = self._mounter.make_mount_point(target_path, file=capability.is_block)
            try:
                self._mounter.bind(source, target_path, read_only=read_only)
            except BaseException as exc:
                if made:
                    _cleanup(
                        exc,
                        "publish",
                        [
                            (
                                "remove mount point",
                                lambda: self._mounter.remove_mount_point(target_path),
                            )
                        ],
                    )
                raise

    def _staged(
        self, vid: VolumeId, staging_path: str, device: str, capability: VolumeCapability
    ) -> str:
        """The staging path, mounted from the volume's current device (recovered if stale)."""
        staged = self._mounter.mount_at(staging_path)
        if staged is None:
            raise Conflict(
                f"volume {vid} is not staged at staging_target_path {staging_path}; "
                "NodeStageVolume must succeed first"
            )
        if self._node.on_device(staged, device):
            return staging_path
        if self._node.volume_on(staged, besides=vid) is not None or (
            staged.fs_type not in SUPPORTED_FS_TYPES
        ):
            raise Conflict(
                f"staging_target_path {staging_path} has {staged.source} mounted, not volume "
                f"{vid}; NodeStageVolume must succeed first"
            )
        _log.warning(
            "volume %s: %s", vid, self._node.stale_reason(vid, staging_path, staged, device)
        )
        access = capability.access
        options = _mount_options(capability, access) if isinstance(access, MountAccess) else []
        self._node.remount_staging(
            vid, staging_path, staged, device=device, fs_type=staged.fs_type, options=options
        )
        return staging_path

    def _published_already(
        self,
        vid: VolumeId,
        target_path: str,
        current: MountInfo,
        *,
        device: str,
        capability: VolumeCapability,
        read_only: bool,
    ) -> bool:
        """True when the request is already done; False when a stale bind was cleared."""
        if self._node.on_device(current, device):
            if self._filesystem.is_block_device(target_path) != capability.is_block:
                raise AlreadyExists(
                    f"volume {vid} is published at {target_path} with a different access type"
                )
            if current.read_only != read_only:
                raise AlreadyExists(
                    f"volume {vid} is published at {target_path} {_mode(current)}; "
                    f"this request wants it {'read-only' if read_only else 'read-write'}"
                )
            return True
        if self._node.volume_on(current, besides=vid) is not None or not (
            current.fs_type in SUPPORTED_FS_TYPES or self._filesystem.is_block_device(target_path)
        ):
            raise AlreadyExists(
                f"target_path {target_path} already has {current.source} mounted, not volume {vid}"
            )
        # A bind of this volume's old device: replace it with the current one.
        _log.warning(
            "volume %s: %s", vid, self._node.stale_reason(vid, target_path, current, device)
        )
        try:
            self._mounter.unmount(target_path)
        except Exception:
            self._node.recovery_outcome(RECOVERY_FAILED)
            raise
        self._node.recovery_outcome(RECOVERED)
        return False

    def _check_single_writer(
        self, vid: VolumeId, device: str, staging_path: str, target_path: str
    ) -> None:
        """SINGLE_NODE_SINGLE_WRITER (ReadWriteOncePod): one workload, so one target path."""
        others = self._node.mounts_on([device], besides=[staging_path, target_path])
        if others:
            raise Conflict(
                f"volume {vid} is SINGLE_NODE_SINGLE_WRITER and already published at "
                f"{others[0]}; it cannot be published at {target_path} too"
            )


class NodeUnpublishVolume:
    """
    ``__call__(volume_id, target_path)``: undo NodePublishVolume.

    Unmounts ``target_path`` if mounted, then removes the directory or file publish created
    (only ever an empty one: data is never deleted). A path already gone or not mounted is
    success.

    Raises:
        InvalidArgument, VolumeNotFound (an ID not of ours), OperationInProgress,
        BackendError: still mounted (busy), or not an empty mount point.
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
        abnormal: The volume condition: True when the NVMe/TCP connection is gone, the
            mount no longer sits on the volume's current device (a stale mount), or its
            usage cannot be read.
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
    It repairs nothing either; it reports.

    Raises:
        InvalidArgument: a bad ID or path.
        VolumeNotFound: ``volume_path`` does not exist, or nothing is mounted there.
    """

    def __init__(self, initiator: NvmeInitiator, mounter: Mounter, filesystem: Filesystem) -> None:
        self._node = _Node(initiator, mounter, filesystem)
        self._mounter = mounter
        self._filesystem = filesystem

    def __call__(self, volume_id: str, volume_path: str) -> VolumeStats:
        vid = parse_volume_reference(volume_id)
        check_node_path(volume_path, "volume_path")
        info = self._mounter.mount_at(volume_path)
        if info is None:
            raise VolumeNotFound(str(vid), f"nothing is mounted at volume_path {volume_path}")
        device = self._node.device_of(vid)
        message = ""
        if device is None or not self._node.on_device(info, device):
            message = self._node.stale_reason(vid, volume_path, info, device)
        try:
            if self._filesystem.is_block_device(volume_path):
                size = self._filesystem.device_size(volume_path)
                return VolumeStats(size, None, abnormal=bool(message), message=message)
            stats = self._filesystem.stats(volume_path)
        except NotFound as exc:
            raise VolumeNotFound(str(vid), f"volume_path {volume_path}: {exc}") from exc
        except BackendError as exc:
            # The condition is the news; kubelet still wants a usage entry, so report zero.
            unreadable = f"usage unreadable: {exc}"
            return VolumeStats(
                0,
                None,
                abnormal=True,
                message=f"{message}; {unreadable}" if message else unreadable,
            )
        return VolumeStats(stats.bytes_total, stats, abnormal=bool(message), message=message)


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
        Conflict: the mount at ``volume_path`` is stale (NodeStageVolume recovers it).
        OutOfRange: the device is still smaller than ``capacity.required``, or larger than
            ``capacity.limit``.
        OperationInProgress, BackendError.
    """

    def __init__(
        self, initiator: NvmeInitiator, mounter: Mounter, filesystem: Filesystem, locks: Locks
    ) -> None:
        self._node = _Node(initiator, mounter, filesystem)
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
            nqns = self._node.connections_of(vid)
            if not nqns:
                raise VolumeNotFound(str(vid), "it has no NVMe/TCP connection on this node")
            device = self._initiator.device_for(nqns[0])
            if device is None or not self._node.on_device(info, device):
                raise Conflict(
                    f"cannot expand volume {vid}: "
                    f"{self._node.stale_reason(vid, volume_path, info, device)}"
                )
            self._initiator.rescan(nqns[0])
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
