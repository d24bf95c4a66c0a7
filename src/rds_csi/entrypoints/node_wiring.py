"""
The node's wiring: the initiator, mounter and filesystem a node uses, and its use cases.

A sub-container of ``Container`` (``container.py``), which gives it the settings, the mode,
the backend kind and, for ``rds-csi all``, the controller's backend (the fake initiator connects
only to what that backend exports) and the embedded emulator (whose exports file the loop
initiator reads). One selector decides the node stack: ``fake`` is the whole in-memory node;
``nvme`` (nvme-cli) and ``loop`` (the emulator's images on loop devices) use the real mount and
filesystem adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from rds_csi.adapters.clock import SystemClock
from rds_csi.adapters.fake_node import DeviceTable, FakeFilesystem, FakeMounter, FakeNvmeInitiator
from rds_csi.adapters.loop import LoopInitiator
from rds_csi.adapters.mount import LinuxFilesystem, LinuxMounter
from rds_csi.adapters.nvme_cli import NvmeCliInitiator
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
from rds_csi.application.ports import Metrics, StorageBackend
from rds_csi.domain import InvalidArgument
from rds_csi.entrypoints.csi.node import NodeInfo, NodeUseCases
from rds_csi.entrypoints.di import containers, providers
from rds_csi.entrypoints.settings import AUTO, Mode, Settings


if TYPE_CHECKING:
    from rds_csi.emulator import Emulator

__all__ = ["EMULATOR_KINDS", "NodeWiring", "resolve_initiator"]

EMULATOR_KINDS: Final = frozenset({"emulator", "emulator-rest"})


def resolve_initiator(initiator: str, backend_kind: str, mode: Mode) -> str:
    """
    ``auto``: a single-node trial on the emulator attaches its images as loop devices (this
    host has no NVMe/TCP target to talk to); on the in-memory RDS it uses the in-memory node
    stack; a real node uses nvme-cli.
    """
    if initiator != AUTO:
        return initiator
    if mode is Mode.ALL and backend_kind in {*EMULATOR_KINDS, "fake"}:
        return "loop" if backend_kind in EMULATOR_KINDS else "fake"
    return "nvme"


def loop_initiator(
    explicit: str, backend_kind: str, emulator: Callable[[], Emulator], records_dir: str = ""
) -> LoopInitiator:
    """The loop initiator on the emulator's exports file: as given, or the embedded one's."""
    # Imported here: the emulator package is heavy, and only this choice needs its file name.
    from rds_csi.emulator.dataplane import EXPORTS_FILE  # noqa: PLC0415

    if not explicit and backend_kind in EMULATOR_KINDS:
        explicit = str(emulator().config.data_dir / EXPORTS_FILE)
    if not explicit:
        raise InvalidArgument(
            "loop_exports_file",
            "is required with --initiator loop (the emulator's <data-dir>/nvme-exports.json)",
        )
    return LoopInitiator(explicit, records_dir=records_dir or None, own_records=bool(records_dir))


def nvme_initiator(binary: str, sysfs_root: str) -> NvmeCliInitiator:
    if not binary:
        raise InvalidArgument("nvme_binary", "is required with --initiator nvme")
    return NvmeCliInitiator(binary=binary, sysfs_root=sysfs_root, clock=SystemClock())


class NodeWiring(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    mode = providers.Dependency(instance_of=Mode)
    mode_name = mode.provided.value
    backend_kind = providers.Dependency(instance_of=str)
    # the controller's backend, in `all`: the fake initiator connects only to its exports
    backend: providers.Dependency[StorageBackend] = providers.Dependency()
    # a provider of the embedded emulator, built only if the loop initiator needs its file
    emulator: providers.Dependency[Callable[[], Emulator]] = providers.Dependency()
    metrics: providers.Dependency[Metrics] = providers.Dependency()
    locks = providers.Singleton(KeyedLocks)

    node_devices = providers.Singleton(DeviceTable)
    initiator_kind = providers.Callable(
        resolve_initiator, settings.provided.initiator, backend_kind, mode
    )
    initiator = providers.Selector(
        initiator_kind,
        # In `all` mode the fake initiator connects only to what the controller's backend
        # exports; a lone node has no RDS to ask, and connects to any target.
        fake=providers.Singleton(
            FakeNvmeInitiator,
            devices=node_devices,
            exports=providers.Selector(
                mode_name, all=backend, controller=backend, node=providers.Object(None)
            ),
        ),
        nvme=providers.Singleton(
            nvme_initiator,
            binary=settings.provided.node.nvme_binary,
            sysfs_root=settings.provided.node.sysfs_root,
        ),
        loop=providers.Singleton(
            loop_initiator,
            settings.provided.node.loop_exports_file,
            backend_kind,
            emulator,
            settings.provided.node.loop_records_dir,
        ),
    )
    linux_mounter = providers.Singleton(LinuxMounter)
    linux_filesystem = providers.Singleton(LinuxFilesystem)
    mounter = providers.Selector(
        initiator_kind,
        fake=providers.Singleton(FakeMounter, devices=node_devices),
        nvme=linux_mounter,
        loop=linux_mounter,
    )
    filesystem = providers.Selector(
        initiator_kind,
        fake=providers.Singleton(FakeFilesystem, devices=node_devices, mounter=mounter),
        nvme=linux_filesystem,
        loop=linux_filesystem,
    )
    node_info = providers.Singleton(
        NodeInfo,
        node_id=settings.provided.node.node_id,
        max_volumes=settings.provided.node.max_volumes_per_node,
        topology=settings.provided.topology,
    )
    # Every staging and target path must resolve below it (docs/node-confinement.md).
    kubelet_dir = providers.Singleton(KubeletDir.parse, settings.provided.node.kubelet_dir)
    use_cases = providers.Singleton(
        NodeUseCases,
        stage=providers.Factory(
            NodeStageVolume,
            initiator=initiator,
            mounter=mounter,
            filesystem=filesystem,
            locks=locks,
            metrics=metrics,
            kubelet_dir=kubelet_dir,
        ),
        unstage=providers.Factory(
            NodeUnstageVolume,
            initiator=initiator,
            mounter=mounter,
            filesystem=filesystem,
            locks=locks,
            kubelet_dir=kubelet_dir,
        ),
        publish=providers.Factory(
            NodePublishVolume,
            initiator=initiator,
            mounter=mounter,
            filesystem=filesystem,
            locks=locks,
            metrics=metrics,
            kubelet_dir=kubelet_dir,
        ),
        unpublish=providers.Factory(
            NodeUnpublishVolume,
            initiator=initiator,
            mounter=mounter,
            filesystem=filesystem,
            locks=locks,
            kubelet_dir=kubelet_dir,
        ),
        stats=providers.Factory(
            NodeGetVolumeStats, initiator=initiator, mounter=mounter, filesystem=filesystem
        ),
        expand=providers.Factory(
            NodeExpandVolume,
            initiator=initiator,
            mounter=mounter,
            filesystem=filesystem,
            locks=locks,
            kubelet_dir=kubelet_dir,
        ),
        info=node_info,
    )
