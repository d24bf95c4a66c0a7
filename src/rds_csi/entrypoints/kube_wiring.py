"""
Wiring of the Kubernetes port for the container: which adapter, and the node's Events.

Beside ``container.py`` and ``rds_wiring.py``, the third place that builds adapters.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from rds_csi.adapters.clock import SystemClock
from rds_csi.adapters.kubernetes import FakeKubernetes
from rds_csi.application.events import EventRecorder
from rds_csi.application.kubernetes import Kubernetes
from rds_csi.domain import DomainError
from rds_csi.entrypoints.di import containers, providers
from rds_csi.entrypoints.settings import AUTO, Mode, Settings


if TYPE_CHECKING:
    from rds_csi.adapters.kubernetes import ApiKubernetes


__all__ = [
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


def node_events(kubernetes: Callable[[], Kubernetes], clock: SystemClock) -> EventRecorder:
    """
    The node's Events (MountFailed on the pod) are a courtesy: a node plugin with no cluster
    to talk to still serves, and says once that it will not tell.
    """
    try:
        cluster: Kubernetes | None = kubernetes()
    except DomainError as exc:
        _log.warning("node events are off: %s", exc)
        cluster = None
    return EventRecorder(cluster, clock)


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
