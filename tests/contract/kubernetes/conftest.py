"""
The Kubernetes port's implementations, each with a ``Cluster`` that plays the cluster's other
actors (the attacher, kubelet, the provisioner) through means of its own:

* ``fake``: the in-memory ``FakeKubernetes``;
* ``loopback``: ``ApiKubernetes`` (the official client) against ``tests/support/kube_apiserver``,
  a small HTTP server on 127.0.0.1 serving the API's JSON;
* ``real``: ``ApiKubernetes`` against the cluster ``KUBECONFIG`` names (skipped when unset):
  it creates cluster-scoped objects with a random prefix and deletes them afterwards.
"""

from __future__ import annotations

import os
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

import attrs
import pytest

from rds_csi.adapters.kubernetes import ApiKubernetes, FakeKubernetes, api_client
from rds_csi.application.kubernetes import Kubernetes, PersistentVolumeInfo, VolumeAttachmentInfo
from tests.support import kube_apiserver as k


DRIVER = "rds.csi.srvlab.io"
OTHER_DRIVER = "other.csi.example.com"


class Cluster(Protocol):
    @property
    def port(self) -> Kubernetes: ...

    @property
    def prefix(self) -> str: ...

    def add_pv(
        self,
        name: str,
        handle: str,
        *,
        modes: tuple[str, ...] = ("ReadWriteOnce",),
        block: bool = False,
        attributes: dict[str, str] | None = None,
        claim: tuple[str, str] | None = None,
        driver: str = DRIVER,
    ) -> None: ...

    def add_va(
        self, name: str, pv: str, node: str, *, attached: bool, driver: str = DRIVER
    ) -> None: ...

    def delete_va(self, name: str) -> None: ...

    def add_node(
        self,
        name: str,
        *,
        ready: bool = True,
        csi_node_id: str | None = None,
        max_volumes: int = 0,
    ) -> None:
        """A Node and its CSINode; ``csi_node_id`` None: the CSINode does not list us."""
        ...

    def compact(self) -> bool:
        """Make older resource versions expire; False when the cluster cannot."""
        ...

    def events(self) -> list[tuple[str, str, str, str, str]]:
        """(kind, namespace, name, reason, type) of the Events recorded."""
        ...

    def fail(self, http_status: int) -> bool:
        """Answer every request with this status (0: stop); False when the cluster cannot."""
        ...


@attrs.define
class FakeCluster:
    port: FakeKubernetes
    prefix: str = ""

    def add_pv(self, name: str, handle: str, **kw: Any) -> None:
        if kw.pop("driver", DRIVER) != DRIVER:
            return  # the fake holds only our driver's objects, as the port promises
        claim = kw.pop("claim", None)
        self.port.put_persistent_volume(
            PersistentVolumeInfo(
                name,
                handle,
                kw.get("modes", ("ReadWriteOnce",)),
                kw.get("block", False),
                kw.get("attributes") or {},
                claim[0] if claim else "",
                claim[1] if claim else "",
            )
        )

    def add_va(
        self, name: str, pv: str, node: str, *, attached: bool, driver: str = DRIVER
    ) -> None:
        if driver == DRIVER:
            self.port.put_volume_attachment(VolumeAttachmentInfo(name, pv, node, attached, 1.0))

    def delete_va(self, name: str) -> None:
        self.port.delete_volume_attachment(name)

    def add_node(
        self,
        name: str,
        *,
        ready: bool = True,
        csi_node_id: str | None = None,
        max_volumes: int = 0,
    ) -> None:
        self.port.put_node(name, ready=ready, csi=False)
        if csi_node_id is not None:
            self.port.put_node(csi_node_id, ready=ready, csi=True)
            self.port.max_volumes[csi_node_id] = max_volumes

    def compact(self) -> bool:
        self.port.compact()
        return True

    def events(self) -> list[tuple[str, str, str, str, str]]:
        return [
            (
                e.about.kind,
                e.about.namespace,
                e.about.name,
                e.reason,
                "Warning" if e.warning else "Normal",
            )
            for e in self.port.events
        ]

    def fail(self, http_status: int) -> bool:
        self.port.unavailable = http_status >= 500
        return http_status >= 500 or http_status == 0


@attrs.define
class LoopbackCluster:
    port: ApiKubernetes
    api: k.FakeApiServer
    prefix: str = ""

    def add_pv(self, name: str, handle: str, **kw: Any) -> None:
        driver = kw.pop("driver", DRIVER)
        self.api.put("persistentvolumes", k.persistent_volume(name, driver, handle, **kw))

    def add_va(
        self, name: str, pv: str, node: str, *, attached: bool, driver: str = DRIVER
    ) -> None:
        self.api.put(
            "volumeattachments", k.volume_attachment(name, driver, pv, node, attached=attached)
        )

    def delete_va(self, name: str) -> None:
        self.api.delete("volumeattachments", name)

    def add_node(
        self,
        name: str,
        *,
        ready: bool = True,
        csi_node_id: str | None = None,
        max_volumes: int = 0,
    ) -> None:
        self.api.put("nodes", k.node(name, ready=ready))
        drivers = {OTHER_DRIVER: name}
        if csi_node_id is not None:
            drivers[DRIVER] = csi_node_id
        self.api.put("csinodes", k.csi_node(name, drivers, {DRIVER: max_volumes}))

    def compact(self) -> bool:
        self.api.compact()
        return True

    def events(self) -> list[tuple[str, str, str, str, str]]:
        return [
            (
                e["involvedObject"]["kind"],
                e["metadata"]["namespace"],
                e["involvedObject"]["name"],
                e["reason"],
                e["type"],
            )
            for e in self.api.events
        ]

    def fail(self, http_status: int) -> bool:
        self.api.fail_status = http_status
        return True


@attrs.define
class RealCluster:
    """Objects made through the client itself; deleted by ``cleanup``."""

    port: ApiKubernetes
    client: Any
    prefix: str
    made: list[tuple[str, str]] = attrs.field(factory=list)
    since: float = 0.0

    def _apis(self) -> tuple[Any, Any]:
        from kubernetes import client  # noqa: PLC0415 - only with a real cluster

        return client.StorageV1Api(self.client), client.CoreV1Api(self.client)

    def add_pv(self, name: str, handle: str, **kw: Any) -> None:
        _, core = self._apis()
        driver = kw.pop("driver", DRIVER)
        core.create_persistent_volume(k.persistent_volume(name, driver, handle, **kw))
        self.made.append(("pv", name))

    def add_va(
        self, name: str, pv: str, node: str, *, attached: bool, driver: str = DRIVER
    ) -> None:
        storage, _ = self._apis()
        body = k.volume_attachment(name, driver, pv, node, attached=attached)
        status = body.pop("status")
        storage.create_volume_attachment(body)
        storage.patch_volume_attachment_status(name, {"status": status})
        self.made.append(("va", name))

    def delete_va(self, name: str) -> None:
        storage, _ = self._apis()
        storage.delete_volume_attachment(name)

    def add_node(
        self,
        name: str,
        *,
        ready: bool = True,
        csi_node_id: str | None = None,
        max_volumes: int = 0,
    ) -> None:
        storage, core = self._apis()
        core.create_node(k.node(name, ready=ready))
        self.made.append(("node", name))
        drivers = {OTHER_DRIVER: name}
        if csi_node_id is not None:
            drivers[DRIVER] = csi_node_id
        storage.create_csi_node(k.csi_node(name, drivers, {DRIVER: max_volumes}))
        self.made.append(("csinode", name))

    def compact(self) -> bool:
        return False

    def events(self) -> list[tuple[str, str, str, str, str]]:
        _, core = self._apis()
        found = core.list_event_for_all_namespaces().items
        return [
            (e.involved_object.kind, e.metadata.namespace, e.involved_object.name, e.reason, e.type)
            for e in found
            if e.involved_object.name.startswith(self.prefix)
        ]

    def fail(self, http_status: int) -> bool:  # noqa: ARG002 - a real server fails by itself
        return False

    def cleanup(self) -> None:
        storage, core = self._apis()
        delete = {
            "pv": core.delete_persistent_volume,
            "va": storage.delete_volume_attachment,
            "node": core.delete_node,
            "csinode": storage.delete_csi_node,
        }
        import kubernetes  # noqa: PLC0415 - only with a real cluster

        leases: Any = kubernetes.client.CoordinationV1Api(self.client)
        for lease in leases.list_namespaced_lease("default").items:
            if lease.metadata.name.startswith(self.prefix):
                leases.delete_namespaced_lease(lease.metadata.name, "default")
        for kind, name in reversed(self.made):
            try:
                delete[kind](name)
            except Exception:  # noqa: S112 - gone already
                continue


@pytest.fixture(params=["fake", "loopback", "real"])
def cluster(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Cluster]:
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    if request.param == "fake":
        yield FakeCluster(FakeKubernetes(), prefix)
    elif request.param == "loopback":
        running = k.serve_api()
        config = k.write_kubeconfig(tmp_path / "kubeconfig", running.url)
        port = ApiKubernetes(api_client(str(config)), DRIVER, "rds-csi")
        try:
            yield LoopbackCluster(port, running.api, prefix)
        finally:
            port.close()
            running.close()
    else:
        if not os.environ.get("KUBECONFIG"):
            pytest.skip("KUBECONFIG is not set: no real kube-apiserver to run against")
        api = api_client()
        real = RealCluster(ApiKubernetes(api, DRIVER, "default"), api, prefix)
        try:
            yield real
        finally:
            real.cleanup()
            api.close()
