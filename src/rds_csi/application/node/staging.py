"""NodeStageVolume and NodeUnstageVolume: attach a volume to this node and prepare it, or undo."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from rds_csi.application.node.confinement import KubeletDir, owns_mount
from rds_csi.application.node.devices import (
    connections_of,
    mounts_on,
    on_device,
    stale_reason,
    volume_on,
)
from rds_csi.application.node.recovery import refuse_while_held, remount_staging
from rds_csi.application.node.shared import RECOVERY_FAILED, Step, cleanup, connect, count_recovery
from rds_csi.application.ports import Filesystem, Locks, Metrics, Mounter, MountInfo, NvmeInitiator
from rds_csi.application.structure import structure_context
from rds_csi.domain import (
    AlreadyExists,
    BackendError,
    Conflict,
    InvalidArgument,
    MountAccess,
    NodePath,
    VolumeCapability,
    VolumeContext,
    VolumeId,
    check_capabilities,
    parse_volume_reference,
)
from rds_csi.domain.capability import SUPPORTED_FS_TYPES


__all__ = ["NodeStageVolume", "NodeUnstageVolume"]

_log = logging.getLogger(__name__)
# A filesystem smaller than its device by more than 1/8 is grown at stage (mkfs keeps less)
_GROW_SLACK: Final = 8


class NodeStageVolume:
    """
    ``__call__(volume_id, staging_path, capability, context)``: attach and prepare a volume.

    ``context`` is the volume_context (ours or the Go driver's keys). A mount volume is
    connected, formatted with the capability's fs_type if blank, and mounted at
    ``staging_path`` (which kubelet created). A block volume is only connected.

    A repeat finds the volume mounted and succeeds. A stale mount of the volume at
    ``staging_path`` (its device gone, or back under another name) is recovered: the
    volume is reconnected if need be and its current device mounted in place.

    ``staging_path`` must resolve below the kubelet directory; the resolved path is used.

    Raises:
        InvalidArgument: a missing or bad path (checked before the ID), a bad ID or context,
            or a path that resolves outside the kubelet directory.
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
        *,
        kubelet_dir: KubeletDir,
    ) -> None:
        self._initiator = initiator
        self._mounter = mounter
        self._filesystem = filesystem
        self._locks = locks
        self._metrics = metrics
        self._kubelet_dir = kubelet_dir

    def __call__(
        self,
        volume_id: str,
        staging_path: str,
        capability: VolumeCapability,
        context: Mapping[str, str],
    ) -> None:
        given = NodePath.parse(staging_path, field="staging_target_path")
        vid = parse_volume_reference(volume_id)
        check_capabilities([capability], field="volume_capability")
        ctx = structure_context(context)
        if ctx.nqn.volume_id != vid:
            raise InvalidArgument("volume_context.nqn", f"{ctx.nqn} does not name volume {vid}")
        path = self._kubelet_dir.confine(self._mounter, given, field="staging_target_path")
        with self._locks.hold(str(vid)):
            current = self._mounter.mount_at(path)
            if current is not None:
                self._staged_already(vid, ctx, path, current, capability)
            else:
                self._stage(vid, ctx, path, capability)

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
            device = connect(self._initiator, self._metrics, ctx.target, reused=was_connected)
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
            cleanup(exc, "stage", steps)
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
        self._mounter.mount(device, staging_path, access.fs_type, capability.mount_options())
        if found is not None:
            self._grow_to_device(vid, device, staging_path, access.fs_type)

    def _grow_to_device(self, vid: VolumeId, device: str, path: str, fs_type: str) -> None:
        """
        A volume restored or cloned into a larger size has a filesystem the size of its
        source: grow it now (CSI: the full size by NodePublish). Only when the device is
        clearly larger than the filesystem (more than any mkfs overhead), so an ordinary
        stage runs no resize tool; a grow that fails leaves the smaller filesystem mounted.
        """
        total = self._filesystem.stats(path).bytes_total
        size = self._filesystem.device_size(device)
        if size - total <= size // _GROW_SLACK:
            return
        try:
            self._filesystem.grow(device, path, fs_type)
        except BackendError as exc:
            _log.warning(
                "volume %s: its %s filesystem (%d bytes) is smaller than its device (%d): %s",
                vid,
                fs_type,
                total,
                size,
                exc,
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
        if device is not None and on_device(self._filesystem, current, device):
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
        other = volume_on(self._initiator, self._filesystem, current, besides=vid)
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
            "volume %s: %s",
            vid,
            stale_reason(self._filesystem, vid, staging_path, stale, device),
        )
        was_connected = device is not None
        # Before connecting for nothing.
        refuse_while_held(self._mounter, self._metrics, vid, staging_path, stale)
        try:
            if device is None:
                device = connect(self._initiator, self._metrics, ctx.target, reused=False)
        except Exception:
            count_recovery(self._metrics, RECOVERY_FAILED)
            raise
        try:
            remount_staging(
                self._mounter,
                self._filesystem,
                self._metrics,
                vid=vid,
                staging_path=staging_path,
                stale=stale,
                device=device,
                fs_type=access.fs_type,
                options=capability.mount_options(),
            )
        except BaseException as exc:
            if not was_connected:
                # The recovery made this connection; a failed recovery does not keep it.
                cleanup(
                    exc, "recovery", [("disconnect", lambda: self._initiator.disconnect(ctx.nqn))]
                )
            raise


class NodeUnstageVolume:
    """
    ``__call__(volume_id, staging_path)``: undo NodeStageVolume.

    Unmounts the staging path if the volume is mounted there, disconnects every NVMe/TCP
    connection of the volume and removes the staging directory if stage made it (never one
    kubelet made). A volume that is not staged is success. A volume still published (its
    device bound somewhere besides the staging path) is refused: disconnecting it would pull
    the device from under a pod. A mount at the staging path that is not this volume's is
    never unmounted.

    Raises:
        InvalidArgument: a missing or bad path (checked before the ID), one outside the
            kubelet directory, or a bad ID.
        VolumeNotFound (an ID not of ours), OperationInProgress.
        Conflict: the volume is still published on this node, or something else is mounted
            at the staging path.
        BackendError: from the ports.
    """

    def __init__(
        self,
        initiator: NvmeInitiator,
        mounter: Mounter,
        filesystem: Filesystem,
        locks: Locks,
        *,
        kubelet_dir: KubeletDir,
    ) -> None:
        self._initiator = initiator
        self._mounter = mounter
        self._filesystem = filesystem
        self._locks = locks
        self._kubelet_dir = kubelet_dir

    def __call__(self, volume_id: str, staging_path: str) -> None:
        given = NodePath.parse(staging_path, field="staging_target_path")
        vid = parse_volume_reference(volume_id)
        path = self._kubelet_dir.confine(self._mounter, given, field="staging_target_path")
        with self._locks.hold(str(vid)):
            nqns = connections_of(self._initiator, vid)
            devices = [d for d in (self._initiator.device_for(n) for n in nqns) if d]
            published = mounts_on(self._mounter, self._filesystem, devices, besides=[path])
            if published:
                raise Conflict(
                    f"volume {vid} is still published at {', '.join(published)}; "
                    "NodeUnpublishVolume must succeed there first"
                )
            current = self._mounter.mount_at(path)
            if current is not None:
                if not owns_mount(self._initiator, self._filesystem, vid, current):
                    raise Conflict(
                        f"staging_target_path {path} has {current.source} ({current.fs_type}) "
                        f"mounted, not volume {vid}; it is not ours to unmount"
                    )
                self._mounter.unmount(path)
            for nqn in nqns:
                self._initiator.disconnect(nqn)
            self._mounter.remove_mount_point(path)
