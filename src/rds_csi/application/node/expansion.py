"""NodeExpandVolume: let the node see a volume the controller grew, and grow its filesystem."""

from __future__ import annotations

from rds_csi.application.node.confinement import KubeletDir
from rds_csi.application.node.devices import connections_of, on_device, stale_reason
from rds_csi.application.ports import Filesystem, Locks, Mounter, NvmeInitiator
from rds_csi.domain import (
    CapacityRange,
    Conflict,
    NodePath,
    OutOfRange,
    Size,
    VolumeCapability,
    VolumeNotFound,
    check_capabilities,
    parse_volume_reference,
)


__all__ = ["NodeExpandVolume"]


class NodeExpandVolume:
    """
    ``__call__(volume_id, volume_path, capacity, capability=None) -> Size``: grow online.

    Rescans the NVMe namespace, then grows the filesystem mounted at ``volume_path`` (a raw
    block volume needs nothing more). Returns the device's size. A volume already big enough
    is success.

    Raises:
        InvalidArgument: a bad ID, path or capability, or a path not below the kubelet dir.
        VolumeNotFound: nothing is mounted at ``volume_path``, or no connection on this node.
        Conflict: the mount at ``volume_path`` is stale (NodeStageVolume recovers it).
        OutOfRange: the device is still smaller than ``capacity.required``, or larger than
            ``capacity.limit``.
        OperationInProgress, BackendError.
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
        self._kubelet_dir = kubelet_dir
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
        given = NodePath.parse(volume_path, field="volume_path")
        if capability is not None:
            check_capabilities([capability], field="volume_capability")
        # it grows whatever is mounted there: only kubelet's paths, like every other node call
        path = self._kubelet_dir.confine(self._mounter, given, field="volume_path")
        with self._locks.hold(str(vid)):
            info = self._mounter.mount_at(path)
            if info is None:
                raise VolumeNotFound(str(vid), f"nothing is mounted at volume_path {path}")
            nqns = connections_of(self._initiator, vid)
            if not nqns:
                raise VolumeNotFound(str(vid), "it has no NVMe/TCP connection on this node")
            device = self._initiator.device_for(nqns[0])
            if device is None or not on_device(self._filesystem, info, device):
                reason = stale_reason(self._filesystem, vid, path, info, device)
                raise Conflict(f"cannot expand volume {vid}: {reason}")
            self._initiator.rescan(nqns[0])
            block = (
                capability.is_block
                if capability is not None
                else self._filesystem.is_block_device(path)
            )
            if not block:
                self._filesystem.grow(device, path, info.fs_type)
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
