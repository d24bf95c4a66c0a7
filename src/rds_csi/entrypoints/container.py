"""
The dependency-injector container: every adapter, use case and servicer, built from config.

Nothing is constructed at import time; providers build on first call. The configuration
keys are the serve options of ``settings.py`` (``backend``, ``rds_address``, ...) plus
``mode`` (``controller``, ``node`` or ``all``), set by the CLI.

Adding an adapter is one entry in a selector:

* ``backend`` (key ``config.backend``, ``auto`` resolved by mode): ``ssh`` (a real RDS),
  ``emulator`` (the embedded RouterOS emulator, reached through the same SSH adapter) and
  ``fake`` (in memory).
* ``initiator``, ``mounter``, ``filesystem`` (key ``config.initiator``, ``auto`` resolved by
  mode and backend: ``loop`` for ``all`` on the emulator, ``nvme`` otherwise): ``fake`` selects the
  whole in-memory node stack; ``nvme`` (nvme-cli, ``config.nvme_binary``,
  ``config.sysfs_root``) and ``loop`` (the emulator's images on loop devices,
  ``config.loop_exports_file``) select the real mount and filesystem adapters.

Tests override providers instead of monkeypatching: ``with container.backend.override(rds):``.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from dependency_injector import containers, providers
from prometheus_client import CollectorRegistry

from rds_csi import __version__
from rds_csi.adapters.clock import SystemClock
from rds_csi.adapters.fake_node import DeviceTable, FakeFilesystem, FakeMounter, FakeNvmeInitiator
from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.adapters.loop import LoopInitiator
from rds_csi.adapters.metrics import PrometheusMetrics
from rds_csi.adapters.mount import LinuxFilesystem, LinuxMounter
from rds_csi.adapters.nvme_cli import NvmeCliInitiator
from rds_csi.adapters.resilience import BreakingBackend
from rds_csi.application.health import CheckHealth, HealthMonitor
from rds_csi.application.locks import KeyedLocks
from rds_csi.application.node import (
    NodeExpandVolume,
    NodeGetVolumeStats,
    NodePublishVolume,
    NodeStageVolume,
    NodeUnpublishVolume,
    NodeUnstageVolume,
)
from rds_csi.application.provisioning import (
    CreateVolume,
    DeleteVolume,
    ExpandVolume,
    GetCapacity,
    GetVolume,
    ListVolumes,
    ValidateVolumeCapabilities,
)
from rds_csi.application.topology import CreateVolumeInTopology, Topology
from rds_csi.domain import InvalidArgument, VolumeParameters
from rds_csi.domain.identity import check_base_path, check_nqn_prefix
from rds_csi.domain.model import check_host, check_port
from rds_csi.entrypoints.backends import (
    AUTO,
    emulator_data_address,
    loop_exports_path,
    open_emulator,
    open_rds,
    resolve_backend,
    resolve_initiator,
    ssh_over_emulator,
)
from rds_csi.entrypoints.csi._pb import csi_pb2_grpc
from rds_csi.entrypoints.csi.admission import AdmissionLimits, admitted_server
from rds_csi.entrypoints.csi.controller import ControllerService, ControllerUseCases
from rds_csi.entrypoints.csi.identity import IdentityService
from rds_csi.entrypoints.csi.interceptors import RpcInterceptor
from rds_csi.entrypoints.csi.node import NodeInfo, NodeService, NodeUseCases


__all__ = ["Container", "backend_kinds", "initiator_kinds"]

MAX_WORKERS = 16


def fake_rds(latency: float | None) -> InMemoryRds:
    rds = InMemoryRds()
    rds.faults.latency = latency or 0.0
    return rds


def loop_initiator(exports_file: str) -> LoopInitiator:
    """The loop initiator on the emulator's exports file (required: nothing to guess)."""
    if not exports_file:
        raise InvalidArgument(
            "loop_exports_file",
            "is required with --initiator loop (the emulator's <data-dir>/nvme-exports.json)",
        )
    if not exports_file.startswith("/"):
        raise InvalidArgument("loop_exports_file", f"{exports_file!r} is not an absolute path")
    return LoopInitiator(exports_file)


def nvme_initiator(binary: str, sysfs_root: str) -> NvmeCliInitiator:
    if not binary:
        raise InvalidArgument("nvme_binary", "is required with --initiator nvme")
    if not sysfs_root.startswith("/"):
        raise InvalidArgument("sysfs_root", f"{sysfs_root!r} is not an absolute path")
    return NvmeCliInitiator(binary=binary, sysfs_root=sysfs_root, clock=SystemClock())


def volume_defaults(
    *,
    rds_address: str,
    nvme_address: str,
    nvme_port: int,
    ssh_port: int,
    volume_path: str,
    nqn_prefix: str,
) -> VolumeParameters:
    """The controller's defaults for StorageClass parameters, validated (fail fast)."""
    if rds_address:
        check_host(rds_address, field="rds_address")
    if nvme_address:
        check_host(nvme_address, field="nvme_address")
    check_base_path(volume_path, field="volume_path")
    check_nqn_prefix(nqn_prefix)
    return VolumeParameters(
        rds_address=rds_address,
        nvme_address=nvme_address,
        nvme_port=check_port(nvme_port, field="nvme_port"),
        ssh_port=check_port(ssh_port, field="rds_port"),
        volume_path=volume_path,
        nqn_prefix=nqn_prefix,
    )


def build_server(
    identity: csi_pb2_grpc.IdentityServicer,
    controller: csi_pb2_grpc.ControllerServicer,
    node: csi_pb2_grpc.NodeServicer,
    interceptors: Sequence[grpc.ServerInterceptor],  # type: ignore[type-arg]
    max_workers: int = MAX_WORKERS,
) -> grpc.Server:
    """A gRPC server with all three services; the caller adds the port and starts it."""
    # Identity keeps workers of its own: Probe never queues behind backend calls.
    server = admitted_server(interceptors, AdmissionLimits(running=max_workers))
    csi_pb2_grpc.add_IdentityServicer_to_server(identity, server)
    csi_pb2_grpc.add_ControllerServicer_to_server(controller, server)
    csi_pb2_grpc.add_NodeServicer_to_server(node, server)
    return server


def _serves_controller(mode: str) -> bool:
    return mode in {"controller", "all"}


class Container(containers.DeclarativeContainer):
    config = providers.Configuration()

    # --- shared ---------------------------------------------------------------------------
    metrics_registry = providers.Singleton(CollectorRegistry)
    metrics = providers.Singleton(PrometheusMetrics, registry=metrics_registry)
    controller_locks = providers.Singleton(KeyedLocks)
    node_locks = providers.Singleton(KeyedLocks)
    topology = providers.Singleton(Topology.parse, config.topology)

    # --- the RDS --------------------------------------------------------------------------
    emulator = providers.Resource(
        open_emulator,
        data_dir=config.emulator_data_dir,
        pool_size=config.emulator_pool_size,
        data_plane=config.emulator_data_plane,
        data_address=providers.Callable(
            emulator_data_address,
            config.emulator_data_address,
            config.nvme_address,
            config.rds_address,
        ),
    )
    raw_backend = providers.Selector(
        providers.Callable(resolve_backend, config.backend, config.mode),
        fake=providers.Singleton(fake_rds, latency=config.fake_rds_latency),
        ssh=providers.Resource(
            open_rds,
            address=config.rds_address,
            port=config.rds_port,
            user=config.rds_user,
            key_file=config.rds_ssh_key,
            known_hosts_file=config.rds_known_hosts,
            insecure_ignore_host_key=config.rds_insecure_ignore_host_key,
            base_path=config.volume_path,
            metrics=metrics,
        ),
        emulator=providers.Resource(
            ssh_over_emulator, emulator=emulator, base_path=config.volume_path, metrics=metrics
        ),
    )
    # Every use case sees the RDS through the circuit breaker (fails fast while it is down).
    backend = providers.Singleton(BreakingBackend, raw_backend, metrics=metrics)

    # --- controller -----------------------------------------------------------------------
    volume_defaults = providers.Singleton(
        volume_defaults,
        rds_address=config.rds_address,
        nvme_address=config.nvme_address,
        nvme_port=config.nvme_port,
        ssh_port=config.rds_port,
        volume_path=config.volume_path,
        nqn_prefix=config.nqn_prefix,
    )
    controller_use_cases = providers.Singleton(
        ControllerUseCases,
        create=providers.Factory(
            CreateVolumeInTopology,
            create=providers.Factory(
                CreateVolume, backend=backend, locks=controller_locks, defaults=volume_defaults
            ),
            topology=topology,
        ),
        delete=providers.Factory(DeleteVolume, backend=backend, locks=controller_locks),
        validate=providers.Factory(
            ValidateVolumeCapabilities, backend=backend, defaults=volume_defaults
        ),
        list=providers.Factory(ListVolumes, backend=backend),
        capacity=providers.Factory(GetCapacity, backend=backend, defaults=volume_defaults),
        expand=providers.Factory(ExpandVolume, backend=backend, locks=controller_locks),
        get=providers.Factory(GetVolume, backend=backend),
        topology=topology,
    )

    # --- node -----------------------------------------------------------------------------
    node_devices = providers.Singleton(DeviceTable)
    initiator_kind = providers.Callable(
        resolve_initiator, config.initiator, config.backend, config.mode
    )
    initiator = providers.Selector(
        initiator_kind,
        # In `all` mode the fake initiator connects only to what the controller's backend
        # exports; a lone node has no RDS to ask, and connects to any target.
        fake=providers.Singleton(
            FakeNvmeInitiator,
            devices=node_devices,
            exports=providers.Selector(
                config.mode, all=backend, controller=backend, node=providers.Object(None)
            ),
        ),
        nvme=providers.Singleton(
            nvme_initiator, binary=config.nvme_binary, sysfs_root=config.sysfs_root
        ),
        loop=providers.Singleton(
            loop_initiator,
            exports_file=providers.Callable(
                loop_exports_path,
                config.loop_exports_file,
                providers.Callable(resolve_backend, config.backend, config.mode),
                emulator.provider,
            ),
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
        node_id=config.node_id,
        max_volumes=config.max_volumes_per_node,
        topology=topology,
    )
    node_use_cases = providers.Singleton(
        NodeUseCases,
        stage=providers.Factory(
            NodeStageVolume,
            initiator=initiator,
            mounter=mounter,
            filesystem=filesystem,
            locks=node_locks,
            metrics=metrics,
        ),
        unstage=providers.Factory(
            NodeUnstageVolume,
            initiator=initiator,
            mounter=mounter,
            filesystem=filesystem,
            locks=node_locks,
        ),
        publish=providers.Factory(
            NodePublishVolume,
            initiator=initiator,
            mounter=mounter,
            filesystem=filesystem,
            locks=node_locks,
            metrics=metrics,
        ),
        unpublish=providers.Factory(NodeUnpublishVolume, mounter=mounter, locks=node_locks),
        stats=providers.Factory(
            NodeGetVolumeStats, initiator=initiator, mounter=mounter, filesystem=filesystem
        ),
        expand=providers.Factory(
            NodeExpandVolume,
            initiator=initiator,
            mounter=mounter,
            filesystem=filesystem,
            locks=node_locks,
        ),
        info=node_info,
    )

    # --- the CSI services, by mode --------------------------------------------------------
    # Started and stopped by serve(); Probe answers from it without waiting on the RDS.
    health_monitor = providers.Singleton(
        HealthMonitor,
        check=providers.Singleton(
            CheckHealth,
            backend=providers.Selector(
                config.mode, controller=backend, all=backend, node=providers.Object(None)
            ),
        ),
        clock=providers.Singleton(SystemClock),
    )
    identity_service = providers.Singleton(
        IdentityService,
        driver_name=config.driver_name,
        version=__version__,
        health=health_monitor,
        controller=providers.Callable(_serves_controller, config.mode),
        topology=topology.provided.enabled,
    )
    controller_service = providers.Singleton(
        ControllerService,
        use_cases=providers.Selector(
            config.mode,
            controller=controller_use_cases,
            all=controller_use_cases,
            node=providers.Object(None),
        ),
    )
    node_service = providers.Singleton(
        NodeService,
        use_cases=providers.Selector(
            config.mode,
            node=node_use_cases,
            all=node_use_cases,
            controller=providers.Object(None),
        ),
    )
    rpc_interceptor = providers.Singleton(RpcInterceptor, metrics=metrics)
    grpc_server = providers.Factory(
        build_server,
        identity=identity_service,
        controller=controller_service,
        node=node_service,
        interceptors=providers.List(rpc_interceptor),
    )


def backend_kinds() -> list[str]:
    """The ``backend`` values the container knows (the CLI's choices)."""
    return [AUTO, *sorted(Container.raw_backend.providers)]


def initiator_kinds() -> list[str]:
    return [AUTO, *sorted(Container.initiator.providers)]
