"""
Device lookup: which device a volume is on now, and what the mount table holds on it.

Plain functions over the ports they are given: the use cases keep their own ports and pass
them in, so nothing here holds state. The volume of a connection is ``Nqn.volume_id``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from rds_csi.application.ports import Filesystem, Mounter, MountInfo, NvmeInitiator
from rds_csi.domain import BackendError, Nqn, VolumeId


__all__ = [
    "connections_of",
    "device_number",
    "device_of",
    "holders",
    "mounts_on",
    "on_device",
    "stale_reason",
    "volume_on",
]


def connections_of(initiator: NvmeInitiator, volume_id: VolumeId) -> list[Nqn]:
    """This node's NVMe/TCP connections to ``volume_id``, whatever NQN prefix made them."""
    return [nqn for nqn in initiator.connections() if nqn.volume_id == volume_id]


def device_of(initiator: NvmeInitiator, volume_id: VolumeId) -> str | None:
    for nqn in connections_of(initiator, volume_id):
        device = initiator.device_for(nqn)
        if device:
            return device
    return None


def device_number(filesystem: Filesystem, device: str) -> str | None:
    try:
        return filesystem.device_number(device)
    except BackendError:
        return None  # gone between the question and the answer


def on_device(filesystem: Filesystem, info: MountInfo, device: str) -> bool:
    """Whether ``info`` is a mount of ``device`` as it is now (not of a device now gone)."""
    if info.major_minor:
        return info.major_minor == device_number(filesystem, device)
    return info.source == device


def _same_origin(info: MountInfo, other: MountInfo) -> bool:
    """Both mounts are on one device (live or not)."""
    if info.major_minor and other.major_minor:
        return info.major_minor == other.major_minor
    return info.source == other.source


def mounts_on(
    mounter: Mounter, filesystem: Filesystem, devices: Sequence[str], *, besides: Sequence[str]
) -> list[str]:
    """Mount points, other than ``besides``, on any of ``devices`` as they are now."""
    numbers = {device_number(filesystem, d) for d in devices} - {None}
    paths = set(devices)
    skip = {posixpath.normpath(p) for p in besides}
    return [
        m.target
        for m in mounter.mounts()
        if posixpath.normpath(m.target) not in skip
        and (m.major_minor in numbers if m.major_minor else m.source in paths)
    ]


def holders(mounter: Mounter, stale: MountInfo, *, besides: Sequence[str]) -> list[str]:
    """Mount points, other than ``besides``, still on the device ``stale`` is on."""
    skip = {posixpath.normpath(p) for p in besides}
    return [
        m.target
        for m in mounter.mounts()
        if posixpath.normpath(m.target) not in skip and _same_origin(m, stale)
    ]


def volume_on(
    initiator: NvmeInitiator, filesystem: Filesystem, info: MountInfo, *, besides: VolumeId
) -> VolumeId | Nqn | None:
    """
    Another connection here whose current device ``info`` is a mount of: its volume, or its
    NQN when that names no volume of ours (still not ours to touch).
    """
    for nqn in initiator.connections():
        owner = nqn.volume_id
        if owner == besides:
            continue
        device = initiator.device_for(nqn)
        if device and on_device(filesystem, info, device):
            return owner or nqn
    return None


def stale_reason(
    filesystem: Filesystem, vid: VolumeId, path: str, info: MountInfo, device: str | None
) -> str:
    """Why the mount ``info`` at ``path`` is not on volume ``vid``'s current ``device``."""
    if device is None:
        return (
            f"{path} is mounted from {info.source}, but volume {vid} has no NVMe/TCP "
            "connection on this node (the device is gone)"
        )
    number = device_number(filesystem, device)
    return (
        f"{path} is mounted from {info.source} ({info.major_minor or 'unknown number'}), "
        f"but volume {vid} is now {device} ({number or 'unknown number'}): "
        "a stale mount after a reconnect"
    )
