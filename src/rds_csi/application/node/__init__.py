"""
Node use cases: stage, unstage, publish, unpublish, expand and inspect a volume on this node.

Each takes the node ports (NvmeInitiator, Mounter, Filesystem, Metrics) and the per-volume
Locks in its constructor and is called with plain request values; the servicer does nothing
else. Modules by concern: ``staging``, ``publishing``, ``stats``, ``expansion``; ``devices``
(which device a volume is on, what is mounted on it), ``recovery`` (stale staging mounts) and
``shared`` (metric outcomes, undo steps) are the plain functions they share; ``confinement``
holds what the node may touch (paths below ``KubeletDir``, mounts a volume owns).

The node is stateless: everything is rediscovered from the initiator's connections (found by
``Nqn.volume_id``) and the mount table at the paths kubelet passes (each a ``NodePath``).

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
nothing else holds the old one; stats report it as an abnormal volume condition; expand
refuses. Recoveries are counted through ``Metrics.mount_recovery``, connects through
``Metrics.nvme_connect``.
"""

from rds_csi.application.node.confinement import KubeletDir
from rds_csi.application.node.expansion import NodeExpandVolume
from rds_csi.application.node.publishing import NodePublishVolume, NodeUnpublishVolume
from rds_csi.application.node.staging import NodeStageVolume, NodeUnstageVolume
from rds_csi.application.node.stats import NodeGetVolumeStats, VolumeStats


__all__ = [
    "KubeletDir",
    "NodeExpandVolume",
    "NodeGetVolumeStats",
    "NodePublishVolume",
    "NodeStageVolume",
    "NodeUnpublishVolume",
    "NodeUnstageVolume",
    "VolumeStats",
]
