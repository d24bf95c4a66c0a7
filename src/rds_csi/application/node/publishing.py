"""NodePublishVolume and NodeUnpublishVolume: show a staged volume to a pod, or stop."""

from __future__ import annotations

import logging

from rds_csi.application.node.confinement import KubeletDir, owns_mount
from rds_csi.application.node.devices import (
    device_of,
    mounts_on,
    on_device,
    stale_reason,
    volume_on,
)
from rds_csi.application.node.recovery import remount_staging
from rds_csi.application.node.shared import (
    RECOVERED,
    RECOVERY_FAILED,
    cleanup,
    count_recovery,
    mode,
)
from rds_csi.application.ports import Filesystem, Locks, Metrics, Mounter, MountInfo, NvmeInitiator
from rds_csi.domain import (
    AccessMode,
    AlreadyExists,
    Conflict,
    NodePath,
    VolumeCapability,
    VolumeId,
    check_capabilities,
    parse_volume_reference,
)
from rds_csi.domain.capability import SUPPORTED_FS_TYPES


__all__ = ["NodePublishVolume", "NodeUnpublishVolume"]

_log = logging.getLogger(__name__)


class NodePublishVolume:
    """
    ``__call__(volume_id, staging_path, target_path, capability, read_only=False)``: make a
    staged volume visible at the pod's ``target_path``.

    Mount volume: creates the ``target_path`` directory and bind-mounts the staging path
    onto it. Block volume: creates an empty file at ``target_path`` and binds the device node
    onto it. Read-only when ``read_only`` or the access mode is a reader mode. Several target
    paths are fine (pods sharing a node, a VM migrating), except for SINGLE_NODE_SINGLE_WRITER.

    A stale staging mount is recovered first (the current device remounted), and a stale
    bind at ``target_path`` is replaced. Returns what was recovered, for the pod's
    ``MountRecovered`` Event ("" when nothing was).

    Both paths must resolve below the kubelet directory; the resolved paths are used.

    Raises:
        InvalidArgument: a missing or bad ``target_path`` (checked before the ID), a bad ID,
            or a path that resolves outside the kubelet directory.
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
        target_path: str,
        capability: VolumeCapability,
        *,
        read_only: bool = False,
    ) -> str:
        given_target = NodePath.parse(target_path, field="target_path")
        vid = parse_volume_reference(volume_id)
        if not staging_path:
            raise Conflict(
                "staging_target_path is required: this driver stages volumes "
                "(STAGE_UNSTAGE_VOLUME) before publishing them"
            )
        given_staging = NodePath.parse(staging_path, field="staging_target_path")
        check_capabilities([capability], field="volume_capability")
        target = self._kubelet_dir.confine(self._mounter, given_target, field="target_path")
        staging = self._kubelet_dir.confine(
            self._mounter, given_staging, field="staging_target_path"
        )
        read_only = read_only or capability.access_mode.is_read_only
        with self._locks.hold(str(vid)):
            device = device_of(self._initiator, vid)
            if device is None:
                raise Conflict(
                    f"volume {vid} is not staged on this node (no NVMe/TCP connection); "
                    "NodeStageVolume must succeed first"
                )
            recovered: list[str] = []
            source = (
                device
                if capability.is_block
                else self._staged(vid, staging, device, capability, recovered)
            )
            current = self._mounter.mount_at(target)
            if current is not None and self._published_already(
                vid,
                target,
                current,
                device=device,
                capability=capability,
                read_only=read_only,
                recovered=recovered,
            ):
                return "; ".join(recovered)
            if capability.access_mode is AccessMode.SINGLE_NODE_SINGLE_WRITER:
                self._check_single_writer(vid, device, staging, target)
            made = self._mounter.make_mount_point(target, file=capability.is_block)
            try:
                self._mounter.bind(source, target, read_only=read_only)
            except BaseException as exc:
                if made:
                    cleanup(
                        exc,
                        "publish",
                        [("remove mount point", lambda: self._mounter.remove_mount_point(target))],
                    )
                raise
            return "; ".join(recovered)

    def _staged(
        self,
        vid: VolumeId,
        staging_path: str,
        device: str,
        capability: VolumeCapability,
        recovered: list[str],
    ) -> str:
        """
        The staging path, mounted from the volume's current device (recovered if stale, and
        said in ``recovered``).
        """
        staged = self._mounter.mount_at(staging_path)
        if staged is None:
            raise Conflict(
                f"volume {vid} is not staged at staging_target_path {staging_path}; "
                "NodeStageVolume must succeed first"
            )
        if on_device(self._filesystem, staged, device):
            return staging_path
        if volume_on(self._initiator, self._filesystem, staged, besides=vid) is not None or (
            staged.fs_type not in SUPPORTED_FS_TYPES
        ):
            raise Conflict(
                f"staging_target_path {staging_path} has {staged.source} mounted, not volume "
                f"{vid}; NodeStageVolume must succeed first"
            )
        _log.warning(
            "volume %s: %s", vid, stale_reason(self._filesystem, vid, staging_path, staged, device)
        )
        remount_staging(
            self._mounter,
            self._filesystem,
            self._metrics,
            vid=vid,
            staging_path=staging_path,
            stale=staged,
            device=device,
            fs_type=staged.fs_type,
            options=capability.mount_options(),
        )
        recovered.append(f"the staging mount was stale ({staged.source}), now {device}")
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
        recovered: list[str],
    ) -> bool:
        """True when the request is already done; False when a stale bind was cleared."""
        if on_device(self._filesystem, current, device):
            if self._filesystem.is_block_device(target_path) != capability.is_block:
                raise AlreadyExists(
                    f"volume {vid} is published at {target_path} with a different access type"
                )
            if current.read_only != read_only:
                raise AlreadyExists(
                    f"volume {vid} is published at {target_path} {mode(current)}; "
                    f"this request wants it {'read-only' if read_only else 'read-write'}"
                )
            return True
        if volume_on(self._initiator, self._filesystem, current, besides=vid) is not None or not (
            current.fs_type in SUPPORTED_FS_TYPES or self._filesystem.is_block_device(target_path)
        ):
            raise AlreadyExists(
                f"target_path {target_path} already has {current.source} mounted, not volume {vid}"
            )
        # A bind of this volume's old device: replace it with the current one.
        _log.warning(
            "volume %s: %s", vid, stale_reason(self._filesystem, vid, target_path, current, device)
        )
        try:
            self._mounter.unmount(target_path)
        except Exception:
            count_recovery(self._metrics, RECOVERY_FAILED)
            raise
        count_recovery(self._metrics, RECOVERED)
        recovered.append(f"the pod's mount was stale ({current.source}), now {device}")
        return False

    def _check_single_writer(
        self, vid: VolumeId, device: str, staging_path: str, target_path: str
    ) -> None:
        """SINGLE_NODE_SINGLE_WRITER (ReadWriteOncePod): one workload, so one target path."""
        others = mounts_on(
            self._mounter, self._filesystem, [device], besides=[staging_path, target_path]
        )
        if others:
            raise Conflict(
                f"volume {vid} is SINGLE_NODE_SINGLE_WRITER and already published at "
                f"{others[0]}; it cannot be published at {target_path} too"
            )


class NodeUnpublishVolume:
    """
    ``__call__(volume_id, target_path)``: undo NodePublishVolume.

    Unmounts ``target_path`` if this volume is mounted there (its device, or a bind of its
    staging mount), then removes the directory or file publish created there (only one
    publish made, and only empty but for its mark: data is never deleted; a directory or
    file someone else made stays). A path already gone or not mounted is success.

    Raises:
        InvalidArgument: a missing or bad path (checked before the ID), one outside the
            kubelet directory, or a bad ID.
        VolumeNotFound (an ID not of ours), OperationInProgress.
        Conflict: something that is not this volume is mounted at ``target_path``.
        BackendError: still mounted (busy), or the mount point holds more than its mark.
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

    def __call__(self, volume_id: str, target_path: str) -> None:
        given = NodePath.parse(target_path, field="target_path")
        vid = parse_volume_reference(volume_id)
        target = self._kubelet_dir.confine(self._mounter, given, field="target_path")
        with self._locks.hold(str(vid)):
            current = self._mounter.mount_at(target)
            if current is not None:
                if not owns_mount(self._initiator, self._filesystem, vid, current):
                    raise Conflict(
                        f"target_path {target} has {current.source} ({current.fs_type}) "
                        f"mounted, not volume {vid}; it is not ours to unmount"
                    )
                self._mounter.unmount(target)
            self._mounter.remove_mount_point(target)
