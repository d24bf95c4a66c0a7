"""NodeGetVolumeStats: usage and condition of a volume on this node."""

from __future__ import annotations

import attrs

from rds_csi.application.node.devices import device_of, on_device, stale_reason
from rds_csi.application.ports import Filesystem, FilesystemStats, Mounter, NvmeInitiator
from rds_csi.domain import (
    BackendError,
    InvalidArgument,
    NodePath,
    NotFound,
    VolumeNotFound,
    parse_volume_reference,
)


__all__ = ["NodeGetVolumeStats", "VolumeStats"]


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
        InvalidArgument: no ``volume_path`` (checked before the ID), or a bad ID.
        VolumeNotFound: ``volume_path`` is no path a volume could be at (relative, say),
            does not exist, or nothing is mounted there.
    """

    def __init__(self, initiator: NvmeInitiator, mounter: Mounter, filesystem: Filesystem) -> None:
        self._initiator = initiator
        self._mounter = mounter
        self._filesystem = filesystem

    def __call__(self, volume_id: str, volume_path: str) -> VolumeStats:
        if not volume_path:
            raise InvalidArgument("volume_path", "is required")
        vid = parse_volume_reference(volume_id)
        try:
            path = NodePath.parse(volume_path, field="volume_path").value
        except InvalidArgument as exc:
            # No volume is ever at such a path: the question has an answer, "not there".
            raise VolumeNotFound(str(vid), f"no volume is at volume_path: {exc.problem}") from None
        info = self._mounter.mount_at(path)
        if info is None:
            raise VolumeNotFound(str(vid), f"nothing is mounted at volume_path {path}")
        device = device_of(self._initiator, vid)
        message = ""
        if device is None or not on_device(self._filesystem, info, device):
            message = stale_reason(self._filesystem, vid, path, info, device)
        try:
            if self._filesystem.is_block_device(path):
                size = self._filesystem.device_size(path)
                return VolumeStats(size, None, abnormal=bool(message), message=message)
            stats = self._filesystem.stats(path)
        except NotFound as exc:
            raise VolumeNotFound(str(vid), f"volume_path {path}: {exc}") from exc
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
