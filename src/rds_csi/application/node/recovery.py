"""
Stale staging mounts: remount the volume's current device in place, once nothing else holds
the old one (a second live superblock of one filesystem would corrupt it; xfs refuses it).

Stage and publish both recover; each passes the ports it holds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rds_csi.application.node.devices import holders
from rds_csi.application.node.shared import (
    RECOVERED,
    RECOVERY_FAILED,
    RECOVERY_REFUSED,
    count_recovery,
)
from rds_csi.application.ports import Filesystem, Metrics, Mounter, MountInfo
from rds_csi.domain import Conflict, VolumeId


__all__ = ["refuse_while_held", "remount_staging"]

_log = logging.getLogger(__name__)


def refuse_while_held(
    mounter: Mounter,
    metrics: Metrics | None,
    vid: VolumeId,
    staging_path: str,
    stale: MountInfo,
) -> None:
    """
    Raises:
        Conflict: mounts besides the staging path still hold the stale mount's device
            (counted as a refused recovery).
    """
    held = holders(mounter, stale, besides=[staging_path])
    if held:
        count_recovery(metrics, RECOVERY_REFUSED)
        raise Conflict(
            f"volume {vid}: the staging mount at {staging_path} is stale, and "
            f"{', '.join(held)} still use{'s' if len(held) == 1 else ''} the old "
            f"device {stale.source}; it is remounted once those are unpublished (their "
            "pods restarted), never while a second copy of the filesystem is live"
        )


def remount_staging(
    mounter: Mounter,
    filesystem: Filesystem,
    metrics: Metrics | None,
    *,
    vid: VolumeId,
    staging_path: str,
    stale: MountInfo,
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
    refuse_while_held(mounter, metrics, vid, staging_path, stale)
    _log.warning(
        "volume %s: recovering the stale staging mount %s (%s -> %s)",
        vid,
        staging_path,
        stale.source,
        device,
    )
    try:
        mounter.unmount(staging_path)
        _require_filesystem(filesystem, vid, staging_path, device, fs_type)
        mounter.mount(device, staging_path, fs_type, options)
    except Exception:
        count_recovery(metrics, RECOVERY_FAILED)
        raise
    count_recovery(metrics, RECOVERED)
    _log.warning("volume %s: %s is mounted from %s again", vid, staging_path, device)


def _require_filesystem(
    filesystem: Filesystem, vid: VolumeId, path: str, device: str, fs_type: str
) -> None:
    found = filesystem.detect(device)
    if found != fs_type:
        raise Conflict(
            f"volume {vid}: recovering the stale mount at {path}: its device {device} "
            f"holds {found or 'no filesystem'}, not {fs_type}; a recovery never formats"
        )
