"""
The Kubernetes port on the official ``kubernetes`` client (its own models, its own watch).

Configured from the pod's service account (in-cluster) or a kubeconfig file. Every failure of
the client is translated here: HTTP 410 on a watch is ``WatchExpired``, an API server that
cannot be reached is ``BackendUnavailable``, any other refusal (RBAC, a bad request) is
``BackendError`` with the server's reason. Nothing above this module sees the client's types.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TypeVar

import kubernetes
import urllib3

from rds_csi.application.kubernetes import (
    CsiNodeInfo,
    EventType,
    Kubernetes,
    NodeStatus,
    ObjectRef,
    PersistentVolumeInfo,
    VolumeAttachmentInfo,
    VolumeAttachmentList,
    WatchEvent,
    WatchExpired,
)
from rds_csi.domain import BackendError, BackendUnavailable


__all__ = ["ApiKubernetes", "api_client"]

_log = logging.getLogger(__name__)
# The client's models are only partly typed; at this boundary they are honestly Any.
client: Final[Any] = kubernetes.client
config: Final[Any] = kubernetes.config
watch: Final[Any] = kubernetes.watch
ApiException: Final[Any] = kubernetes.client.ApiException
_T = TypeVar("_T")
HTTP_NOT_FOUND: Final = 404
HTTP_GONE: Final = 410
HTTP_CONFLICT: Final = 409
CLUSTER_EVENTS_NAMESPACE: Final = "default"
_REQUEST_TIMEOUT: Final = 15.0


def api_client(kubeconfig: str = "") -> Any:
    """
    A client for the cluster: ``kubeconfig`` if given (or ``$KUBECONFIG``), else the pod's
    in-cluster service account.

    Raises:
        BackendUnavailable: neither is usable.
    """
    configuration = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG", "")
    try:
        if path:
            config.load_kube_config(config_file=path, client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)
    except (config.ConfigException, OSError, TypeError, ValueError) as exc:
        where = f"kubeconfig {path}" if path else "the in-cluster service account"
        raise BackendUnavailable(
            f"cannot configure the Kubernetes client from {where}: {exc}"
        ) from exc
    configuration.retries = 1
    return client.ApiClient(configuration)


def _seconds(stamp: dt.datetime | None) -> float:
    return stamp.timestamp() if stamp is not None else 0.0


class ApiKubernetes(Kubernetes):
    """
    Args:
        api: The configured client (``api_client``).
        driver_name: Our CSI driver name: only its VolumeAttachments, PVs and CSINode entries.
        namespace: Where Events about cluster-scoped objects go when there is no better place.
    """

    def __init__(
        self, api: Any, driver_name: str, namespace: str = CLUSTER_EVENTS_NAMESPACE
    ) -> None:
        self._api = api
        self._driver = driver_name
        self._namespace = namespace or CLUSTER_EVENTS_NAMESPACE
        self._storage = client.StorageV1Api(api)
        self._core = client.CoreV1Api(api)
        self._coordination = client.CoordinationV1Api(api)
        self._instance = socket.gethostname()

    def close(self) -> None:
        self._api.close()

    # --- translation ------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            return fn(*args, _request_timeout=_REQUEST_TIMEOUT, **kwargs)
        except ApiException as exc:
            raise self._translate(what, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(f"Kubernetes API: cannot {what}: {exc}") from exc

    @staticmethod
    def _translate(what: str, exc: ApiException) -> Exception:
        status = int(exc.status or 0)
        if status == HTTP_GONE:
            return WatchExpired(f"Kubernetes API: {what}: {exc.reason} (410)")
        if status == 0 or status >= 500:  # noqa: PLR2004
            return BackendUnavailable(f"Kubernetes API: cannot {what}: {exc.reason} ({status})")
        return BackendError(f"Kubernetes API refused to {what}", f"{exc.reason} ({status})")

    def _attachment(self, va: Any) -> VolumeAttachmentInfo | None:
        if va.spec is None or va.spec.attacher != self._driver:
            return None
        meta = va.metadata
        return VolumeAttachmentInfo(
            name=meta.name,
            pv_name=(va.spec.source.persistent_volume_name or "") if va.spec.source else "",
            node_name=va.spec.node_name,
            attached=bool(va.status and va.status.attached),
            created_at=_seconds(meta.creation_timestamp),
            deleting=meta.deletion_timestamp is not None,
        )

    # --- the port ---------------------------------------------------------------------------

    def list_volume_attachments(self) -> VolumeAttachmentList:
        found = self._call("list VolumeAttachments", self._storage.list_volume_attachment)
        items = tuple(a for a in map(self._attachment, found.items) if a is not None)
        return VolumeAttachmentList(items, found.metadata.resource_version or "")

    def watch_volume_attachments(
        self, resource_version: str, timeout_seconds: int
    ) -> Iterator[WatchEvent]:
        stream = watch.Watch().stream(
            self._storage.list_volume_attachment,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            _request_timeout=timeout_seconds + _REQUEST_TIMEOUT,
        )
        while True:
            try:
                event = next(stream)
            except StopIteration:
                return
            except ApiException as exc:
                raise self._translate("watch VolumeAttachments", exc) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise BackendUnavailable(f"Kubernetes API: watch VolumeAttachments: {exc}") from exc
            kind = str(event.get("type", ""))
            if kind not in EventType.__members__:
                continue  # BOOKMARK
            va = event["object"]
            info = self._attachment(va)
            if info is not None:
                yield WatchEvent(EventType(kind), info, va.metadata.resource_version or "")

    def csi_node(self, node_id: str) -> CsiNodeInfo | None:
        try:
            found = self._storage.read_csi_node(node_id, _request_timeout=_REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != HTTP_NOT_FOUND:
                raise self._translate(f"read CSINode {node_id}", exc) from exc
            found = None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(f"Kubernetes API: cannot read CSINode: {exc}") from exc
        entry = self._our_entry(found, node_id) if found is not None else None
        if entry is not None:
            return entry
        # The CSI node ID need not be the Node's name: look at every CSINode's entry for us.
        listed = self._call("list CSINodes", self._storage.list_csi_node)
        return next(
            (e for item in listed.items if (e := self._our_entry(item, node_id)) is not None),
            None,
        )

    def _our_entry(self, csi_node: Any, node_id: str) -> CsiNodeInfo | None:
        drivers = (csi_node.spec.drivers if csi_node.spec else None) or []
        for driver in drivers:
            if driver.name == self._driver and driver.node_id == node_id:
                count = driver.allocatable.count if driver.allocatable else None
                return CsiNodeInfo(csi_node.metadata.name, node_id, int(count or 0))
        return None

    def node_status(self, name: str) -> NodeStatus | None:
        try:
            node = self._core.read_node(name, _request_timeout=_REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == HTTP_NOT_FOUND:
                return None
            raise self._translate(f"read Node {name}", exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(f"Kubernetes API: cannot read Node {name}: {exc}") from exc
        for cond in (node.status.conditions if node.status else None) or []:
            if cond.type == "Ready":
                return NodeStatus(name, cond.status == "True", _seconds(cond.last_transition_time))
        return NodeStatus(name, ready=False)

    def list_persistent_volumes(self) -> Sequence[PersistentVolumeInfo]:
        found = self._call("list PersistentVolumes", self._core.list_persistent_volume)
        out = []
        for pv in found.items:
            csi = pv.spec.csi if pv.spec else None
            if csi is None or csi.driver != self._driver:
                continue
            claim = pv.spec.claim_ref
            out.append(
                PersistentVolumeInfo(
                    name=pv.metadata.name,
                    volume_handle=csi.volume_handle,
                    access_modes=tuple(pv.spec.access_modes or ()),
                    block=pv.spec.volume_mode == "Block",
                    attributes=dict(csi.volume_attributes or {}),
                    claim_namespace=(claim.namespace or "") if claim else "",
                    claim_name=(claim.name or "") if claim else "",
                )
            )
        return out

    def create_event(self, about: ObjectRef, *, warning: bool, reason: str, message: str) -> None:
        namespace = about.namespace or self._namespace
        now = dt.datetime.now(dt.UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{about.name}.", namespace=namespace),
            involved_object=client.V1ObjectReference(
                api_version="v1",
                kind=about.kind,
                name=about.name,
                namespace=about.namespace or None,
                uid=about.uid or None,
            ),
            reason=reason,
            message=message,
            type="Warning" if warning else "Normal",
            source=client.V1EventSource(component=self._driver),
            reporting_component=self._driver,
            reporting_instance=self._instance,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
        )
        self._call(
            f"create an Event in {namespace}", self._core.create_namespaced_event, namespace, body
        )

    def acquire_lease(self, name: str, holder: str, duration_seconds: int) -> bool:
        now = dt.datetime.now(dt.UTC)
        try:
            lease = self._coordination.read_namespaced_lease(
                name, self._namespace, _request_timeout=_REQUEST_TIMEOUT
            )
        except ApiException as exc:
            if exc.status != HTTP_NOT_FOUND:
                raise self._translate(f"read Lease {name}", exc) from exc
            lease = None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(f"Kubernetes API: cannot read Lease {name}: {exc}") from exc
        if lease is None:
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=name, namespace=self._namespace),
                spec=self._lease_spec(holder, duration_seconds, now, now, 0),
            )
            return self._lease_write("create", self._coordination.create_namespaced_lease, body)
        spec = lease.spec or client.V1LeaseSpec()
        renewed = spec.renew_time or spec.acquire_time
        expired = renewed is None or (
            renewed + dt.timedelta(seconds=spec.lease_duration_seconds or 0) < now
        )
        if spec.holder_identity not in {None, "", holder} and not expired:
            return False
        taking = spec.holder_identity != holder
        lease.spec = self._lease_spec(
            holder,
            duration_seconds,
            now if taking else (spec.acquire_time or now),
            now,
            (spec.lease_transitions or 0) + (1 if taking else 0),
        )
        # The read's resourceVersion rides along: a rival's write in between is a 409.
        return self._lease_write(
            "update", self._coordination.replace_namespaced_lease, lease, name=name
        )

    @staticmethod
    def _lease_spec(
        holder: str, seconds: int, acquired: dt.datetime, renewed: dt.datetime, transitions: int
    ) -> Any:
        return client.V1LeaseSpec(
            holder_identity=holder,
            lease_duration_seconds=seconds,
            acquire_time=acquired,
            renew_time=renewed,
            lease_transitions=transitions,
        )

    def _lease_write(self, what: str, fn: Callable[..., Any], body: Any, name: str = "") -> bool:
        args = (name, self._namespace, body) if name else (self._namespace, body)
        try:
            fn(*args, _request_timeout=_REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == HTTP_CONFLICT:
                return False  # another replica wrote first
            raise self._translate(f"{what} a Lease", exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(f"Kubernetes API: cannot {what} a Lease: {exc}") from exc
        return True
