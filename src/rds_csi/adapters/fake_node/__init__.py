"""
The node side in memory: an NVMe/TCP initiator, a mount table and filesystems, faked.

They share one ``DeviceTable`` (the node's ``/dev``) and behave like the real tools where
the node use cases can tell: devices appear under fresh names on connect, a filesystem made
on a device survives a disconnect and reconnect (it lives on the RDS), mounting a missing
device or onto a missing directory fails, unmounting what is not mounted is fine. Mount
points are real directories and files (kubelet's paths exist), mounts are not.
"""

from rds_csi.adapters.fake_node.devices import DeviceTable, FakeDevice, FakeMedium
from rds_csi.adapters.fake_node.filesystem import FakeFilesystem
from rds_csi.adapters.fake_node.initiator import FakeNvmeInitiator
from rds_csi.adapters.fake_node.mounter import FakeMounter


__all__ = [
    "DeviceTable",
    "FakeDevice",
    "FakeFilesystem",
    "FakeMedium",
    "FakeMounter",
    "FakeNvmeInitiator",
]
