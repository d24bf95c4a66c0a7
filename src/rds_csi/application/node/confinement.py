"""
What the node may touch: paths below kubelet's directory, mounts of the volume asked about.

Kubelet only ever sends paths below its own directory, but a bug or a compromised sidecar on
the CSI socket must not be able to mount over ``/etc`` or unmount ``/proc``. So every staging
and target path must resolve, symlinks and ``/proc/self/root`` included, strictly below
``KubeletDir``; the use cases then work on the resolved path, so a symlink swapped later does
not redirect them. And Unstage/Unpublish unmount only a mount that is the volume's
(``owns_mount``): nothing else is theirs to take away.
"""

from __future__ import annotations

import attrs

from rds_csi.application.node.devices import device_number, device_of, on_device, volume_on
from rds_csi.application.ports import Filesystem, Mounter, MountInfo, NvmeInitiator
from rds_csi.domain import InvalidArgument, NodePath, VolumeId
from rds_csi.domain.capability import SUPPORTED_FS_TYPES


__all__ = ["DEFAULT_KUBELET_DIR", "KubeletDir", "owns_mount"]

DEFAULT_KUBELET_DIR = "/var/lib/kubelet"


@attrs.frozen
class KubeletDir:
    """kubelet's directory (``--kubelet-dir``): staging and target paths live below it."""

    path: NodePath

    @classmethod
    def parse(cls, text: str) -> KubeletDir:
        """
        Raises:
            InvalidArgument: naming ``kubelet_dir``.
        """
        return cls(NodePath.parse(text, field="kubelet_dir"))

    def confine(self, mounter: Mounter, path: NodePath, *, field: str) -> str:
        """
        ``path`` resolved, when that is strictly below the kubelet directory (resolved too).

        Raises:
            InvalidArgument: naming ``field``, when it resolves anywhere else.
            BackendError: a component cannot be read.
        """
        root = mounter.resolve(self.path.value).rstrip("/")
        real = mounter.resolve(path.value)
        if not real.startswith(root + "/"):
            via = "" if real == path.value else f" (it resolves to {real!r})"
            raise InvalidArgument(
                field,
                f"{path.value!r}{via} is not below the kubelet directory {root or '/'!r} "
                "(--kubelet-dir); the node touches no other path",
            )
        return NodePath.parse(real, field=field).value


def owns_mount(
    initiator: NvmeInitiator, filesystem: Filesystem, vid: VolumeId, info: MountInfo
) -> bool:
    """
    Whether the mount ``info`` is volume ``vid``'s to unmount: it is on the volume's current
    device (a staging mount, or a publish bind of the staging path or of the device node),
    or it is a stale mount: of a device the initiator attached for the volume and has let go
    while the mount still holds it (``lingering``), or of a device now gone that no other
    connection here claims, holding a filesystem we make (or a bound device node). A live
    mount of any other device (a tmpfs, a host disk, another volume) is never ours.
    """
    device = device_of(initiator, vid)
    if device is not None and on_device(filesystem, info, device):
        return True
    if info.major_minor and any(
        device_number(filesystem, d) == info.major_minor for d in initiator.lingering(vid)
    ):
        return True  # a device of the volume, detached while this mount still holds it
    if volume_on(initiator, filesystem, info, besides=vid) is not None:
        return False
    if info.fs_type not in SUPPORTED_FS_TYPES and not filesystem.is_block_device(info.target):
        return False
    if not info.major_minor:
        return False
    # Stale: the name it was mounted from is gone, or is another device now.
    return device_number(filesystem, info.source) != info.major_minor
