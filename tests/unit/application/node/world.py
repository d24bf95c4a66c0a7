"""The node use cases' world: the fake node ports linked to an in-memory RDS."""

from __future__ import annotations

import pathlib

import attrs
import pytest
from prometheus_client import CollectorRegistry

from rds_csi.adapters.fake_node import DeviceTable, FakeFilesystem, FakeMounter, FakeNvmeInitiator
from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.adapters.metrics import PrometheusMetrics
from rds_csi.application.locks import KeyedLocks
from rds_csi.application.node import (
    KubeletDir,
    NodeExpandVolume,
    NodeGetVolumeStats,
    NodePublishVolume,
    NodeStageVolume,
    NodeUnpublishVolume,
    NodeUnstageVolume,
)
from rds_csi.application.provisioning import CreateVolume
from rds_csi.domain import (
    CapacityRange,
    Nqn,
    Size,
    VolumeCapability,
    VolumeParameters,
)
from rds_csi.domain.size import GIB


__all__ = ["BLOCK", "MOUNT", "Node", "node"]

MOUNT = VolumeCapability.mount()
BLOCK = VolumeCapability.block()


@attrs.define
class Node:
    rds: InMemoryRds
    devices: DeviceTable
    initiator: FakeNvmeInitiator
    mounter: FakeMounter
    fs: FakeFilesystem
    locks: KeyedLocks
    root: pathlib.Path
    metrics: PrometheusMetrics

    @property
    def kubelet_dir(self) -> KubeletDir:
        return KubeletDir.parse(str(self.root))

    @property
    def stage(self) -> NodeStageVolume:
        return NodeStageVolume(
            self.initiator,
            self.mounter,
            self.fs,
            self.locks,
            self.metrics,
            kubelet_dir=self.kubelet_dir,
        )

    @property
    def unstage(self) -> NodeUnstageVolume:
        return NodeUnstageVolume(
            self.initiator, self.mounter, self.fs, self.locks, kubelet_dir=self.kubelet_dir
        )

    @property
    def publish(self) -> NodePublishVolume:
        return NodePublishVolume(
            self.initiator,
            self.mounter,
            self.fs,
            self.locks,
            self.metrics,
            kubelet_dir=self.kubelet_dir,
        )

    @property
    def unpublish(self) -> NodeUnpublishVolume:
        return NodeUnpublishVolume(
            self.initiator, self.mounter, self.fs, self.locks, kubelet_dir=self.kubelet_dir
        )

    @property
    def stats(self) -> NodeGetVolumeStats:
        return NodeGetVolumeStats(self.initiator, self.mounter, self.fs)

    @property
    def expand(self) -> NodeExpandVolume:
        return NodeExpandVolume(
            self.initiator, self.mounter, self.fs, self.locks, kubelet_dir=self.kubelet_dir
        )

    def create(self, name: str, size: int = GIB) -> tuple[str, dict[str, str]]:
        made = CreateVolume(self.rds, self.locks, VolumeParameters(rds_address="10.0.0.1"))(
            name, CapacityRange(required=size), [MOUNT], {}
        )
        return str(made.volume.volume_id), made.context.to_mapping()

    def staging(self, name: str = "staging") -> str:
        path = self.root / name
        path.mkdir(exist_ok=True)  # kubelet creates the staging directory
        return str(path)

    def target(self, name: str = "target") -> str:
        return str(self.root / "pods" / name)

    def connects(self, outcome: str) -> float:
        return self._sample("rds_csi_nvme_connect_total", outcome)

    def recoveries(self, outcome: str) -> float:
        return self._sample("rds_csi_mount_recovery_total", outcome)

    def _sample(self, name: str, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"outcome": outcome})
        return value or 0.0

    def device(self, ctx: dict[str, str]) -> str:
        device = self.initiator.device_for(Nqn(ctx["nqn"]))
        assert device is not None
        return device


@pytest.fixture
def node(tmp_path: pathlib.Path) -> Node:
    rds = InMemoryRds(Size(100 * GIB))
    devices = DeviceTable()
    mounter = FakeMounter(devices)
    return Node(
        rds=rds,
        devices=devices,
        initiator=FakeNvmeInitiator(devices, exports=rds),
        mounter=mounter,
        fs=FakeFilesystem(devices, mounter),
        locks=KeyedLocks(),
        root=tmp_path,
        metrics=PrometheusMetrics(CollectorRegistry()),
    )
