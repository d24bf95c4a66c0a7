"""
Wiring of the Kubernetes port for the container: which adapter, and the node's Events.

Beside ``container.py`` and ``rds_wiring.py``, the third place that builds adapters.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from rds_csi.adapters.clock import SystemClock
from rds_csi.adapters.kubernetes import FakeKubernetes
from rds_csi.application.events import EventRecorder
from rds_csi.application.kubernetes import (
    CsiNodeInfo,
    Kubernetes,
    NodeStatus,
    ObjectRef,
    PersistentVolumeInfo,
    VolumeAttachmentList,
    WatchEvent,
)
from rds_csi.domain import DomainError
from rds_csi.entrypoints.di import containers, providers
from rds_csi.entrypoints.settings import AUTO, Mode, Settings


if TYPE_CHECKING:
    from rds_csi.adapters.kubernetes import ApiKubernetes


__all__ = [
    "BuiltOnFirstUse",
    "KubeWiring",
    "api_kubernetes",
    "fake_kubernetes",
    "node_events",
    "replica_identity",
    "resolve_kubernetes",
]

_log = logging.getLogger(__name__)


def resolve_kubernetes(kind: str, mode: Mode, kubeconfig: str) -> str:
    """
    ``auto``: a single-node trial (``all``) with no cluster in sight (no kubeconfig, not in a
    pod) runs on the in-memory cluster, where its own node is the one node; else the API.
    """
    if kind != AUTO:
        return kind
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    cluster = kubeconfig or os.environ.get("KUBECONFIG") or in_cluster
    return "fake" if mode is Mode.ALL and not cluster else "api"


def replica_identity() -> str:
    """
    This controller replica's name in Leases: the pod's name (its hostname) and the process,
    so two controllers on one host (tests, a trial) are two candidates too.
    """
    return f"{socket.gethostname()}_{os.getpid()}"


def api_kubernetes(kubeconfig: str, driver_name: str, namespace: str) -> ApiKubernetes:
    # Imported when built (adapters/kubernetes/__init__.py): the client library is 24 MB.
    from rds_csi.adapters.kubernetes import ApiKubernetes, api_client  # noqa: PLC0415

    return ApiKubernetes(api_client(kubeconfig), driver_name, namespace)


def fake_kubernetes(node_id: str, state_file: str) -> FakeKubernetes:
    return FakeKubernetes([node_id], state_file=state_file)


class BuiltOnFirstUse(Kubernetes):
    """
    The Kubernetes port, its adapter built on the first call rather than at start.

    A node posts Events (MountFailed, MountRecovered) only now and then, and the official
    client costs a node ~24 MB and ~0.15 s of start (docs/performance.md): the node pays for
    it when it first has something to tell. A node with no cluster to talk to still serves,
    and says once that it will not tell.
    """

    def __init__(self, build: Callable[[], Kubernetes]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._built: Kubernetes | None = None
        self._failed: DomainError | None = None

    def _cluster(self) -> Kubernetes:
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if self._built is None:
                try:
                    self._built = self._build()
                except DomainError as exc:
                    _log.warning("node events are off: %s", exc)
                    self._failed = exc
                    raise
            return self._built

    def list_volume_attachments(self) -> VolumeAttachmentList:
        return self._cluster().list_volume_attachments()

    def watch_volume_attachments(
        self, resource_version: str, timeout_seconds: int
    ) -> Iterator[WatchEvent]:
        return self._cluster().watch_volume_attachments(resource_version, timeout_seconds)

    def csi_node(self, node_id: str) -> CsiNodeInfo | None:
        return self._cluster().csi_node(node_id)

    def node_status(self, name: str) -> NodeStatus | None:
        return self._cluster().node_status(name)

    def list_persistent_volumes(self) -> Sequence[PersistentVolumeInfo]:
        return self._cluster().list_persistent_volumes()

    def create_event(self, about: ObjectRef, *, warning: bool, reason: str, message: str) -> None:
        self._cluster().create_event(about, warning=warning, reason=reason, message=message)

    def acquire_lease(self, name: str, holder: str, duration_seconds: int) -> bool:
        return self._cluster().acquire_lease(name, holder, duration_seconds)


def node_events(kubernetes: Callable[[], Kubernetes], clock: SystemClock) -> EventRecorder:
    """The node's Events, through a cluster client built when the first one is due."""
    return EventRecorder(BuiltOnFirstUse(kubernetes), clock)


class KubeWiring(containers.DeclarativeContainer):
    """The Kubernetes port the container's use cases get: ``kind``, then ``kubernetes``."""

    settings = providers.Dependency(instance_of=Settings)
    mode = providers.Dependency(instance_of=Mode)
    kind = providers.Callable(
        resolve_kubernetes,
        settings.provided.controller.kubernetes,
        mode,
        settings.provided.controller.kubeconfig,
    )
    kubernetes = providers.Selector(
        kind,
        api=providers.Singleton(
            api_kubernetes,
            settings.provided.controller.kubeconfig,
            settings.provided.driver_name,
            settings.provided.controller.namespace,
        ),
        fake=providers.Singleton(
            fake_kubernetes,
            settings.provided.node.node_id,
            settings.provided.controller.kubernetes_state_file,
        ),
    )
