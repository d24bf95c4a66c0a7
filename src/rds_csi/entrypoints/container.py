"""
The dependency-injector container: every adapter, use case and servicer, built from Settings.

Nothing is constructed at import time; providers build on first call. The container takes two
dependencies, the typed ``Settings`` (``entrypoints/settings.py``) and the ``Mode``:
``Container(settings=..., mode=Mode.ALL)``; ``check_dependencies()`` says if one is missing.

Adding an adapter is one entry in a selector:

* ``backend`` (kind decided once, by ``backend_kind``: ``auto`` is ``emulator`` for ``all``,
  ``ssh`` otherwise): ``ssh`` (a real RDS), ``emulator`` (the embedded RouterOS emulator,
  reached through the same SSH adapter), ``rest`` and ``emulator-rest`` (the same two over
  the REST API) and ``fake`` (in memory). Both SSH kinds are wired by the ``RdsSsh``
  sub-container (``rds_wiring.py``, with the embedded emulator), both REST kinds by ``RdsRest``
  (``rest_wiring.py``).
* ``initiator``, ``mounter``, ``filesystem`` (kind decided by ``initiator_kind`` from the
  setting, the mode and ``backend_kind``), wired by the ``NodeWiring`` sub-container
  (``node_wiring.py``): ``fake`` selects the whole in-memory node stack; ``nvme`` (nvme-cli)
  and ``loop`` (the emulator's images on loop devices) select the real mount and filesystem
  adapters.

Tests override providers instead of monkeypatching: ``with container.backend.override(rds):``.

Importing this module stays light (issue 15): the SSH adapter and the emulator are imported by
``rds_wiring.py``'s factories when first built, never by a node.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from prometheus_client import CollectorRegistry

from rds_csi import __version__
from rds_csi.adapters.clock import SystemClock
from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.adapters.metrics import PrometheusMetrics
from rds_csi.adapters.resilience import BreakerSettings, BreakingBackend
from rds_csi.application.attachment import AttachmentState, PublishVolume, UnpublishVolume
from rds_csi.application.attachment_sync import AttachmentSync
from rds_csi.application.capacity import CapacityRefresher
from rds_csi.application.events import EventRecorder
from rds_csi.application.health import CheckHealth, HealthMonitor
from rds_csi.application.locks import KeyedLocks
from rds_csi.application.provisioning import (
    CreateVolume,
    DeleteVolume,
    ExpandVolume,
    GetCapacity,
    GetVolume,
    ListVolumes,
    ValidateVolumeCapabilities,
)
from rds_csi.application.stale import StaleAttachments
from rds_csi.application.topology import CreateVolumeInTopology
from rds_csi.domain import VolumeParameters
from rds_csi.entrypoints.csi._pb import csi_pb2_grpc
from rds_csi.entrypoints.csi.admission import AdmissionLimits, admitted_server
from rds_csi.entrypoints.csi.controller import ControllerService, ControllerUseCases
from rds_csi.entrypoints.csi.deadlines import DeadlineInterceptor
from rds_csi.entrypoints.csi.identity import IdentityService
from rds_csi.entrypoints.csi.interceptors import RpcInterceptor
from rds_csi.entrypoints.csi.node import NodeService
from rds_csi.entrypoints.di import containers, providers
from rds_csi.entrypoints.kube_wiring import KubeWiring, node_events, replica_identity
from rds_csi.entrypoints.node_wiring import NodeWiring
from rds_csi.entrypoints.orphan_wiring import OrphanWiring
from rds_csi.entrypoints.rds_wiring import (
    RdsSsh,
    closing,
    emulator_data_address,
    emulator_ssh_settings,
    open_emulator,
    open_ssh_backend,
    rds_ssh_settings,
)
from rds_csi.entrypoints.rest_wiring import (
    RdsRest,
    closing_rest,
    emulator_rest_settings,
    rds_rest_settings,
)
from rds_csi.entrypoints.settings import AUTO, Mode, Settings
from rds_csi.entrypoints.snapshot_wiring import SnapshotWiring, running_copies


__all__ = ["Container", "RdsSsh", "backend_kinds", "initiator_kinds", "open_ssh_backend"]


MAX_WORKERS = 16


# --- what the providers call: decisions and requirements that span options ----------------


def resolve_backend(backend: str, mode: Mode) -> str:
    """
    ``auto`` picks what a new user expects: ``all`` (a single-node trial) runs on the
    embedded emulator; ``controller`` talks to a real RDS over SSH.
    """
    if backend != AUTO:
        return backend
    return "emulator" if mode is Mode.ALL else "ssh"


def fake_rds(latency: float) -> InMemoryRds:
    rds = InMemoryRds()
    rds.faults.latency = latency
    return rds


def volume_defaults(settings: Settings) -> VolumeParameters:
    """The controller's defaults for StorageClass parameters (each already checked)."""
    return VolumeParameters(
        rds_address=settings.rds.address,
        nvme_address=settings.controller.nvme_address,
        nvme_port=settings.controller.nvme_port,
        ssh_port=settings.rds.port,
        volume_path=settings.controller.volume_path,
        nqn_prefix=settings.controller.nqn_prefix,
    )


def build_server(
    identity: csi_pb2_grpc.IdentityServicer,
    controller: csi_pb2_grpc.ControllerServicer,
    node: csi_pb2_grpc.NodeServicer,
    interceptors: Sequence[grpc.ServerInterceptor],  # type: ignore[type-arg]
    *,
    max_workers: int = MAX_WORKERS,
    identity_workers: int = AdmissionLimits().reserved,
) -> grpc.Server:
    """A gRPC server with all three services; the caller adds the port and starts it."""
    # Identity keeps workers of its own: Probe never queues behind backend calls.
    server = admitted_server(
        interceptors, AdmissionLimits(running=max_workers, reserved=identity_workers)
    )
    csi_pb2_grpc.add_IdentityServicer_to_server(identity, server)
    csi_pb2_grpc.add_ControllerServicer_to_server(controller, server)
    csi_pb2_grpc.add_NodeServicer_to_server(node, server)
    return server


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    mode = providers.Dependency(instance_of=Mode)
    mode_name = mode.provided.value

    # --- shared ---------------------------------------------------------------------------
    metrics_registry = providers.Singleton(CollectorRegistry)
    metrics = providers.Singleton(PrometheusMetrics, registry=metrics_registry)
    controller_locks = providers.Singleton(KeyedLocks)
    topology = settings.provided.topology

    # --- the RDS --------------------------------------------------------------------------
    backend_kind = providers.Callable(resolve_backend, settings.provided.backend, mode)
    emulator = providers.Resource(
        open_emulator,
        settings,
        providers.Callable(emulator_data_address, settings),
        rest=providers.Callable(lambda kind: kind == "emulator-rest", backend_kind),
    )
    snapshot_method = settings.provided.controller.snapshot_method
    rds_ssh = providers.Container(
        RdsSsh,
        settings=providers.Callable(rds_ssh_settings, settings),
        metrics=metrics,
        snapshot_method=snapshot_method,
    )
    emulator_ssh = providers.Container(
        RdsSsh,
        settings=providers.Callable(
            emulator_ssh_settings,
            emulator,
            settings.provided.controller.volume_path,
            settings.provided.rds.call_timeout,
        ),
        metrics=metrics,
        snapshot_method=snapshot_method,
    )
    # Singletons: the password is read (or, on the emulator, made) once, not per provider use.
    rds_rest = providers.Container(
        RdsRest,
        settings=providers.Singleton(rds_rest_settings, settings),
        metrics=metrics,
        snapshot_method=snapshot_method,
    )
    emulator_rest = providers.Container(
        RdsRest,
        settings=providers.Singleton(
            emulator_rest_settings, emulator, settings.provided.controller.volume_path
        ),
        metrics=metrics,
        snapshot_method=snapshot_method,
    )
    fake_backend = providers.Singleton(fake_rds, settings.provided.controller.fake_rds_latency)
    raw_backend = providers.Selector(
        backend_kind,
        fake=fake_backend,
        ssh=providers.Resource(closing, rds_ssh.backend),
        emulator=providers.Resource(closing, emulator_ssh.backend),
        rest=providers.Resource(closing_rest, rds_rest.backend),
        **{"emulator-rest": providers.Resource(closing_rest, emulator_rest.backend)},
    )
    # Every use case sees the RDS through the circuit breaker (fails fast while it is down).
    backend = providers.Singleton(
        BreakingBackend,
        raw_backend,
        providers.Factory(
            BreakerSettings,
            failures=settings.provided.controller.breaker_failures,
            reset_timeout=settings.provided.controller.breaker_reset_timeout,
        ),
        metrics=metrics,
    )

    # Snapshots share the volumes' connection (and their retries), not the circuit breaker.
    snapshot_copies = providers.Resource(running_copies)
    snapshots = providers.Container(
        SnapshotWiring,
        backend_kind=backend_kind,
        fake_rds=fake_backend,
        ssh=rds_ssh.snapshots,
        emulator=emulator_ssh.snapshots,
        rest=rds_rest.snapshots,
        emulator_rest=emulator_rest.snapshots,
        volumes=backend,
        locks=controller_locks,
        metrics=metrics,
        copies=snapshot_copies,
    )

    # --- the cluster ----------------------------------------------------------------------
    clock = providers.Singleton(SystemClock)
    cluster = providers.Container(KubeWiring, settings=settings, mode=mode)
    kubernetes_kind = cluster.kind
    kubernetes = cluster.kubernetes
    events = providers.Singleton(EventRecorder, kubernetes, clock)
    # Not ready until rebuilt from VolumeAttachments: no publish is answered from nothing.
    attachments = providers.Singleton(AttachmentState, clock, ready=False)

    # --- controller -----------------------------------------------------------------------
    volume_defaults = providers.Singleton(volume_defaults, settings)
    attachment_sync = providers.Singleton(
        AttachmentSync,
        kubernetes,
        attachments,
        default_timeout=volume_defaults.provided.migration_timeout,
        resync_seconds=settings.provided.controller.attachment_resync,
        metrics=metrics,
        # An in-memory cluster with no file has no attacher writing VolumeAttachments.
        enabled=providers.Callable(
            lambda kind, state_file: kind != "fake" or bool(state_file),
            kubernetes_kind,
            settings.provided.controller.kubernetes_state_file,
        ),
    )
    stale_attachments = providers.Singleton(
        StaleAttachments,
        kubernetes,
        attachments,
        clock,
        grace=settings.provided.controller.stale_node_grace,
        interval=settings.provided.controller.stale_attachment_interval,
        events=events,
        metrics=metrics,
        identity=providers.Callable(replica_identity),
    )
    controller_use_cases = providers.Singleton(
        ControllerUseCases,
        create=providers.Factory(
            CreateVolumeInTopology,
            create=providers.Factory(
                CreateVolume,
                backend=backend,
                locks=controller_locks,
                defaults=volume_defaults,
                populate=snapshots.populate,
            ),
            topology=topology,
        ),
        delete=providers.Factory(
            DeleteVolume, backend=backend, locks=controller_locks, attachments=attachments
        ),
        validate=providers.Factory(
            ValidateVolumeCapabilities, backend=backend, defaults=volume_defaults
        ),
        list=providers.Factory(ListVolumes, backend=backend),
        capacity=providers.Factory(GetCapacity, backend=backend, defaults=volume_defaults),
        expand=providers.Factory(ExpandVolume, backend=backend, locks=controller_locks),
        get=providers.Factory(GetVolume, backend=backend),
        topology=topology,
        snapshots=snapshots.use_cases,
        publish=providers.Factory(
            PublishVolume,
            backend=backend,
            state=attachments,
            locks=controller_locks,
            clock=clock,
            defaults=volume_defaults,
            kubernetes=kubernetes,
            events=events,
            metrics=metrics,
            own_node=settings.provided.node.node_id,
        ),
        unpublish=providers.Factory(
            UnpublishVolume,
            state=attachments,
            locks=controller_locks,
            clock=clock,
            kubernetes=kubernetes,
            events=events,
            metrics=metrics,
        ),
        attachments=attachments,
    )

    # --- node -----------------------------------------------------------------------------
    node = providers.Container(
        NodeWiring,
        settings=settings,
        mode=mode,
        backend_kind=backend_kind,
        backend=backend,
        emulator=emulator.provider,
        metrics=metrics,
    )
    initiator_kind = node.initiator_kind
    initiator = node.initiator
    mounter = node.mounter
    filesystem = node.filesystem
    node_use_cases = node.use_cases

    orphans = providers.Container(
        OrphanWiring,
        settings=settings,
        mode=mode,
        backend=backend,
        kubernetes=kubernetes,
        initiator=initiator,
        mounter=mounter,
        filesystem=filesystem,
        clock=clock,
        events=events,
        metrics=metrics,
        kubernetes_kind=kubernetes_kind,
        locks=controller_locks,
    )

    # --- the CSI services, by mode --------------------------------------------------------
    # Started and stopped by serve(); Probe answers from it without waiting on the RDS.
    health_monitor = providers.Singleton(
        HealthMonitor,
        check=providers.Singleton(
            CheckHealth,
            backend=providers.Selector(
                mode_name, controller=backend, all=backend, node=providers.Object(None)
            ),
        ),
        interval=settings.provided.controller.health_interval,
        clock=clock,
    )
    identity_service = providers.Singleton(
        IdentityService,
        driver_name=settings.provided.driver_name,
        version=__version__,
        health=health_monitor,
        controller=providers.Callable(lambda mode: mode is not Mode.NODE, mode),
        topology=topology.provided.enabled,
    )
    controller_service = providers.Singleton(
        ControllerService,
        use_cases=providers.Selector(
            mode_name,
            controller=controller_use_cases,
            all=controller_use_cases,
            node=providers.Object(None),
        ),
    )
    node_service = providers.Singleton(
        NodeService,
        use_cases=providers.Selector(
            mode_name,
            node=node_use_cases,
            all=node_use_cases,
            controller=providers.Object(None),
        ),
        events=providers.Selector(
            mode_name,
            node=providers.Singleton(node_events, kubernetes.provider, clock),
            all=events,
            controller=providers.Object(None),
        ),
    )
    # The pool's capacity metrics, refreshed in the background by the controller only.
    controller_capacity_refresher = providers.Singleton(
        CapacityRefresher,
        backend=backend,
        metrics=metrics,
        rds=settings.provided.rds.address,
        interval=settings.provided.controller.capacity_interval,
        count_snapshots=snapshots.counter,
    )
    capacity_refresher = providers.Selector(
        mode_name,
        controller=controller_capacity_refresher,
        all=controller_capacity_refresher,
        node=providers.Object(None),
    )
    rpc_interceptor = providers.Singleton(RpcInterceptor, metrics=metrics)
    grpc_server = providers.Factory(
        build_server,
        identity=identity_service,
        controller=controller_service,
        node=node_service,
        # the deadline scope inside the log line: the line times the whole call
        interceptors=providers.List(rpc_interceptor, providers.Singleton(DeadlineInterceptor)),
        identity_workers=settings.provided.identity_workers,
    )


def backend_kinds() -> list[str]:
    """The ``backend`` values the container knows (the CLI's choices)."""
    return [AUTO, *sorted(Container.raw_backend.providers)]


def initiator_kinds() -> list[str]:
    return [AUTO, *sorted(NodeWiring.initiator.providers)]
