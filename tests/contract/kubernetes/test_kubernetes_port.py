"""The Kubernetes port's contract, held against every implementation (see conftest.py)."""

from __future__ import annotations

import threading
import time

import pytest

from rds_csi.application.kubernetes import (
    EventType,
    ObjectRef,
    WatchEvent,
    WatchExpired,
)
from rds_csi.domain import BackendError, BackendUnavailable
from tests.contract.kubernetes.conftest import OTHER_DRIVER, Cluster


HANDLE = "pvc-0b6b3a52-9c5e-5a8c-9f1d-2d6a3c1e4f00"


def test_lists_only_our_volume_attachments(cluster: Cluster) -> None:
    p = cluster.prefix
    cluster.add_va(f"{p}ours", f"{p}pv", f"{p}node-a", attached=True)
    cluster.add_va(f"{p}theirs", f"{p}pv2", f"{p}node-a", attached=True, driver=OTHER_DRIVER)
    cluster.add_va(f"{p}pending", f"{p}pv", f"{p}node-b", attached=False)
    listing = cluster.port.list_volume_attachments()
    mine = {va.name: va for va in listing.items if va.name.startswith(p)}
    assert set(mine) == {f"{p}ours", f"{p}pending"}
    assert mine[f"{p}ours"].pv_name == f"{p}pv"
    assert mine[f"{p}ours"].node_name == f"{p}node-a"
    assert mine[f"{p}ours"].attached
    assert not mine[f"{p}pending"].attached
    assert mine[f"{p}ours"].created_at > 0
    assert listing.resource_version


def test_watch_follows_changes_after_the_listed_version(cluster: Cluster) -> None:
    p = cluster.prefix
    version = cluster.port.list_volume_attachments().resource_version
    seen: list[WatchEvent] = []

    def follow() -> None:
        for event in cluster.port.watch_volume_attachments(version, 3):
            if event.attachment.name.startswith(p):
                seen.append(event)
            if len(seen) == 3:
                return

    watcher = threading.Thread(target=follow)
    watcher.start()
    time.sleep(0.3)
    cluster.add_va(f"{p}w", f"{p}pv", f"{p}node-a", attached=False)
    cluster.add_va(f"{p}theirs", f"{p}pv", f"{p}node-a", attached=True, driver=OTHER_DRIVER)
    cluster.add_va(f"{p}w", f"{p}pv", f"{p}node-a", attached=True)
    cluster.delete_va(f"{p}w")
    watcher.join(10)
    assert [(e.type, e.attachment.attached) for e in seen] == [
        (EventType.ADDED, False),
        (EventType.MODIFIED, True),
        (EventType.DELETED, True),
    ]
    assert all(e.resource_version for e in seen)


def test_watch_ends_by_itself_when_nothing_happens(cluster: Cluster) -> None:
    version = cluster.port.list_volume_attachments().resource_version
    started = time.monotonic()
    assert [
        e
        for e in cluster.port.watch_volume_attachments(version, 1)
        if e.attachment.name.startswith(cluster.prefix)
    ] == []
    assert time.monotonic() - started < 10


def test_watch_from_a_compacted_version_expires(cluster: Cluster) -> None:
    version = cluster.port.list_volume_attachments().resource_version
    cluster.add_va(f"{cluster.prefix}x", "pv", "node", attached=True)
    if not cluster.compact():
        pytest.skip("cannot compact this cluster's history on demand")
    with pytest.raises(WatchExpired):
        list(cluster.port.watch_volume_attachments(version, 1))


def test_a_node_exists_when_its_csinode_lists_our_driver(cluster: Cluster) -> None:
    p = cluster.prefix
    cluster.add_node(f"{p}with", csi_node_id=f"{p}with")
    cluster.add_node(f"{p}renamed", csi_node_id=f"{p}csi-id-of-renamed")
    cluster.add_node(f"{p}without")
    found = cluster.port.csi_node(f"{p}with")
    assert found is not None
    assert found.node_id == f"{p}with"
    assert found.max_volumes == 0
    renamed = cluster.port.csi_node(f"{p}csi-id-of-renamed")
    assert renamed is not None
    assert renamed.node_id == f"{p}csi-id-of-renamed"
    assert cluster.port.csi_node(f"{p}without") is None
    assert cluster.port.csi_node(f"{p}nowhere") is None


def test_a_csinode_tells_the_attach_limit(cluster: Cluster) -> None:
    cluster.add_node(f"{cluster.prefix}small", csi_node_id=f"{cluster.prefix}small", max_volumes=3)
    found = cluster.port.csi_node(f"{cluster.prefix}small")
    assert found is not None
    assert found.max_volumes == 3


def test_node_status(cluster: Cluster) -> None:
    p = cluster.prefix
    cluster.add_node(f"{p}up", ready=True, csi_node_id=f"{p}up")
    cluster.add_node(f"{p}down", ready=False, csi_node_id=f"{p}down")
    up, down = cluster.port.node_status(f"{p}up"), cluster.port.node_status(f"{p}down")
    assert up is not None
    assert up.ready
    assert down is not None
    assert not down.ready
    assert cluster.port.node_status(f"{p}gone") is None


def test_lists_only_our_persistent_volumes(cluster: Cluster) -> None:
    p = cluster.prefix
    cluster.add_pv(
        f"{p}block",
        HANDLE,
        modes=("ReadWriteMany",),
        block=True,
        attributes={"migrationTimeoutSeconds": "30"},
        claim=("vms", "disk"),
    )
    cluster.add_pv(f"{p}theirs", "vol-1", driver=OTHER_DRIVER)
    mine = {pv.name: pv for pv in cluster.port.list_persistent_volumes() if pv.name.startswith(p)}
    assert set(mine) == {f"{p}block"}
    pv = mine[f"{p}block"]
    assert (pv.volume_handle, pv.access_modes, pv.block) == (HANDLE, ("ReadWriteMany",), True)
    assert dict(pv.attributes) == {"migrationTimeoutSeconds": "30"}
    assert (pv.claim_namespace, pv.claim_name) == ("vms", "disk")


def test_events_land_on_the_object(cluster: Cluster) -> None:
    name = f"{cluster.prefix}claim"
    cluster.port.create_event(
        ObjectRef("PersistentVolumeClaim", name, "default"),
        warning=True,
        reason="AttachRefused",
        message="volume is attached to node 'a'",
    )
    assert ("PersistentVolumeClaim", "default", name, "AttachRefused", "Warning") in (
        cluster.events()
    )


def test_an_unreachable_api_server_is_unavailable(cluster: Cluster) -> None:
    if not cluster.fail(503):
        pytest.skip("cannot make this API server fail on demand")
    try:
        with pytest.raises(BackendUnavailable):
            cluster.port.list_volume_attachments()
        with pytest.raises(BackendUnavailable):
            cluster.port.csi_node("a")
    finally:
        cluster.fail(0)


def test_a_refusal_is_a_backend_error_with_the_reason(cluster: Cluster) -> None:
    if not cluster.fail(403):
        pytest.skip("this cluster cannot refuse on demand (the fake has no RBAC)")
    try:
        with pytest.raises(BackendError, match="403"):
            cluster.port.list_persistent_volumes()
        with pytest.raises(BackendError, match="403"):
            cluster.port.create_event(
                ObjectRef("Pod", "p", "default"), warning=False, reason="R", message="m"
            )
    finally:
        cluster.fail(0)


def test_one_lease_holder_at_a_time(cluster: Cluster) -> None:
    name = f"{cluster.prefix}lease"
    port = cluster.port
    assert port.acquire_lease(name, "replica-1", 2)
    assert port.acquire_lease(name, "replica-1", 2)  # renewing
    assert not port.acquire_lease(name, "replica-2", 2)
    time.sleep(3.2)  # the holder stopped renewing: its lease runs out
    assert port.acquire_lease(name, "replica-2", 60)
    assert not port.acquire_lease(name, "replica-1", 60)
