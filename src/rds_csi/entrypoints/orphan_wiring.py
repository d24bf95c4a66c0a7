"""
Wiring of the orphan finder for the container: which side looks for what.

The controller's side (``controller``, ``all``) looks for disks through the backend and the
Kubernetes port; the node's side (``node``, ``all``) for sessions through the initiator, the
mount table and kubelet's records. The reconciler runs on the controller's side only.
"""

from __future__ import annotations

from rds_csi.adapters.mount import KubeletRecords
from rds_csi.application.events import EventRecorder
from rds_csi.application.kubernetes import Kubernetes
from rds_csi.application.orphans import (
    CleanOrphans,
    FindOrphans,
    OrphanMetrics,
    OrphanReconciler,
    Sightings,
)
from rds_csi.application.ports import (
    Clock,
    Filesystem,
    Locks,
    Mounter,
    NvmeInitiator,
    StorageBackend,
)
from rds_csi.entrypoints.di import containers, providers
from rds_csi.entrypoints.kube_wiring import replica_identity
from rds_csi.entrypoints.settings import Mode, Settings


__all__ = ["OrphanWiring", "reconciler_enabled"]


def reconciler_enabled(kubernetes_kind: str, state_file: str, interval: float) -> bool:
    """
    An in-memory cluster with no state file has no PersistentVolumes at all: every disk
    would look orphaned, so ``all`` without a cluster does not look.
    """
    return interval > 0 and (kubernetes_kind != "fake" or bool(state_file))


class OrphanWiring(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    mode = providers.Dependency(instance_of=Mode)
    backend: providers.Dependency[StorageBackend] = providers.Dependency()
    kubernetes: providers.Dependency[Kubernetes] = providers.Dependency()
    initiator: providers.Dependency[NvmeInitiator] = providers.Dependency()
    mounter: providers.Dependency[Mounter] = providers.Dependency()
    filesystem: providers.Dependency[Filesystem] = providers.Dependency()
    clock: providers.Dependency[Clock] = providers.Dependency()
    events = providers.Dependency(instance_of=EventRecorder)
    metrics: providers.Dependency[OrphanMetrics] = providers.Dependency()
    locks: providers.Dependency[Locks] = providers.Dependency()
    kubernetes_kind = providers.Dependency(instance_of=str)

    mode_name = mode.provided.value
    none: providers.Object[None] = providers.Object(None)
    kubelet = providers.Singleton(
        KubeletRecords, settings.provided.node.kubelet_dir, settings.provided.driver_name
    )
    controller_backend = providers.Selector(mode_name, controller=backend, all=backend, node=none)
    node_initiator = providers.Selector(mode_name, node=initiator, all=initiator, controller=none)
    find = providers.Singleton(
        FindOrphans,
        nqn_prefix=settings.provided.controller.nqn_prefix,
        volume_path=settings.provided.controller.volume_path,
        backend=controller_backend,
        kubernetes=providers.Selector(mode_name, controller=kubernetes, all=kubernetes, node=none),
        initiator=node_initiator,
        mounter=providers.Selector(mode_name, node=mounter, all=mounter, controller=none),
        filesystem=providers.Selector(mode_name, node=filesystem, all=filesystem, controller=none),
        kubelet=providers.Selector(mode_name, node=kubelet, all=kubelet, controller=none),
    )
    clean = providers.Singleton(
        CleanOrphans, find, backend=controller_backend, initiator=node_initiator, locks=locks
    )
    sightings = providers.Singleton(Sightings, clock, settings.provided.controller.orphan_grace)
    enabled = providers.Callable(
        reconciler_enabled,
        kubernetes_kind,
        settings.provided.controller.kubernetes_state_file,
        settings.provided.controller.orphan_interval,
    )
    reconciler = providers.Singleton(
        OrphanReconciler,
        find,
        sightings,
        interval=settings.provided.controller.orphan_interval,
        clean=clean,
        delete=settings.provided.controller.orphan_delete,
        events=events,
        metrics=metrics,
        kubernetes=kubernetes,
        identity=providers.Callable(replica_identity),
    )
