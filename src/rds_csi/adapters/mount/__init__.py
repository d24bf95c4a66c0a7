"""Mounts and filesystems on Linux: util-linux mount/umount, blkid, mkfs, resize tools, statvfs."""

from rds_csi.adapters.mount.filesystem import LinuxFilesystem
from rds_csi.adapters.mount.kubelet import KubeletRecords
from rds_csi.adapters.mount.mounter import LinuxMounter


__all__ = ["KubeletRecords", "LinuxFilesystem", "LinuxMounter"]
