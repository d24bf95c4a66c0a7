"""
Attachments end to end: ``rds-csi all`` on the fake Kubernetes port kept in a file.

The RDS is the embedded emulator with a data directory, so its disks outlive a restart too.
The test plays the cluster's other actors through that file: the provisioner (a PV per
volume), kubelet (CSINodes for three nodes) and the external-attacher (a VolumeAttachment
marked attached after each publish the driver allowed, deleted after each unpublish). The
driver only reads the file, and appends the Events it records beside it; a restarted driver
rebuilds its attachments from the VolumeAttachments found there.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import attrs
import grpc
import pytest

from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e.conftest import (
    GIB,
    MOUNT,
    DriverProcess,
    block_capability,
    start_driver,
    unique_name,
)


Mode = csi_pb2.VolumeCapability.AccessMode
RWX_BLOCK = block_capability(Mode.MULTI_NODE_MULTI_WRITER)
A, B, C = "e2e-node", "node-b", "node-c"


@attrs.define
class Cluster:
    """The cluster file the driver's fake Kubernetes port reads."""

    path: pathlib.Path
    data: dict[str, list[dict[str, Any]]] = attrs.field(
        factory=lambda: {
            "volume_attachments": [],
            "persistent_volumes": [],
            "nodes": [{"name": n, "ready": True, "csi": True} for n in (A, B, C)],
        }
    )

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        tmp.replace(self.path)

    def add_pv(self, volume: csi_pb2.Volume, *, modes: list[str], block: bool) -> None:
        self.data["persistent_volumes"].append(
            {
                "name": f"pv-{volume.volume_id}",
                "volume_handle": volume.volume_id,
                "access_modes": modes,
                "block": block,
                "attributes": dict(volume.volume_context),
                "claim_namespace": "apps",
                "claim_name": f"claim-{volume.volume_id[-6:]}",
            }
        )
        self.save()

    def attached(self, volume_id: str, node: str) -> None:
        """The attacher records a publish the driver allowed."""
        self.data["volume_attachments"].append(
            {
                "name": f"csi-{volume_id}-{node}",
                "pv_name": f"pv-{volume_id}",
                "node_name": node,
                "attached": True,
                "created_at": time.time(),
            }
        )
        self.save()

    def detached(self, volume_id: str, node: str) -> None:
        name = f"csi-{volume_id}-{node}"
        self.data["volume_attachments"] = [
            va for va in self.data["volume_attachments"] if va["name"] != name
        ]
        self.save()

    def event_reasons(self) -> list[str]:
        events = pathlib.Path(f"{self.path}.events.jsonl")
        if not events.exists():
            return []
        return [json.loads(line)["reason"] for line in events.read_text().splitlines()]


@attrs.define
class World:
    cluster: Cluster
    workdir: pathlib.Path
    driver: DriverProcess

    def start(self) -> None:
        self.driver = start_driver(
            self.workdir,
            "--kubernetes",
            "fake",
            "--kubernetes-state-file",
            str(self.cluster.path),
            # The RDS must outlive the controller too: the emulator keeps its disks on disk.
            "--backend",
            "emulator",
            "--emulator-data-dir",
            str(self.workdir.parent / "rds"),
            "--stale-attachment-interval",
            "0.3",
        )

    def restart(self) -> None:
        assert self.driver.stop() == 0
        self.start()

    def volume(self, *, block: bool = False, **params: str) -> csi_pb2.Volume:
        volume = self.driver.create(
            unique_name(),
            GIB,
            capabilities=[RWX_BLOCK if block else MOUNT],
            parameters={"rdsAddress": "127.0.0.1", **params},
        )
        modes = ["ReadWriteMany"] if block else ["ReadWriteOnce"]
        self.cluster.add_pv(volume, modes=modes, block=block)
        return volume

    def publish(
        self, volume: csi_pb2.Volume, node: str, cap: csi_pb2.VolumeCapability = MOUNT
    ) -> csi_pb2.ControllerPublishVolumeResponse:
        answer = self.driver.controller.ControllerPublishVolume(
            csi_pb2.ControllerPublishVolumeRequest(
                volume_id=volume.volume_id,
                node_id=node,
                volume_capability=cap,
                volume_context=volume.volume_context,
            ),
            timeout=10,
        )
        self.cluster.attached(volume.volume_id, node)
        return answer

    def refused(
        self, volume: csi_pb2.Volume, node: str, cap: csi_pb2.VolumeCapability = MOUNT
    ) -> str:
        with pytest.raises(grpc.RpcError) as info:
            self.publish(volume, node, cap)
        error: grpc.Call = info.value  # type: ignore[assignment]
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
        return str(error.details())

    def unpublish(self, volume: csi_pb2.Volume, node: str) -> None:
        self.driver.controller.ControllerUnpublishVolume(
            csi_pb2.ControllerUnpublishVolumeRequest(volume_id=volume.volume_id, node_id=node),
            timeout=10,
        )
        self.cluster.detached(volume.volume_id, node)

    def published(self) -> dict[str, list[str]]:
        listed = self.driver.controller.ListVolumes(csi_pb2.ListVolumesRequest(), timeout=10)
        return {e.volume.volume_id: list(e.status.published_node_ids) for e in listed.entries}


@pytest.fixture
def world(tmp_path: pathlib.Path) -> Iterator[World]:
    cluster = Cluster(tmp_path / "cluster.json")
    cluster.save()
    made = World(cluster, tmp_path / "driver", None)  # type: ignore[arg-type]
    made.start()
    try:
        yield made
    finally:
        made.driver.stop()


def test_fencing_migration_timeout_and_a_restart_that_remembers(world: World) -> None:
    # A single-node volume: A holds it, B is refused with A named, A again is fine.
    rwo = world.volume()
    context = world.publish(rwo, A).publish_context
    assert context["nqn"] == rwo.volume_context["nqn"]
    assert world.publish(rwo, A).publish_context == context
    assert "'e2e-node'" in world.refused(rwo, B)
    assert "AttachRefused" in world.cluster.event_reasons()

    # A KubeVirt disk migrates A -> B within the window; C is never a third node.
    disk = world.volume(block=True)
    world.publish(disk, A, RWX_BLOCK)
    world.publish(disk, B, RWX_BLOCK)
    assert "migration limit" in world.refused(disk, C, RWX_BLOCK)
    world.unpublish(disk, A)
    assert world.driver.sample("rds_csi_migrations_total", outcome="succeeded") == 1
    assert {"MigrationStarted", "MigrationFinished"} <= set(world.cluster.event_reasons())

    # A migration left hanging past a short migrationTimeoutSeconds (StorageClass parameter).
    stuck = world.volume(block=True, migrationTimeoutSeconds="1")
    world.publish(stuck, A, RWX_BLOCK)
    world.publish(stuck, B, RWX_BLOCK)
    time.sleep(1.5)
    message = world.refused(stuck, C, RWX_BLOCK)
    assert "migrationTimeoutSeconds" in message
    assert "detach the source node 'e2e-node'" in message
    assert "MigrationTimedOut" in world.cluster.event_reasons()

    # The controller restarts: the same state comes back from the VolumeAttachments.
    before = world.published()
    assert before[rwo.volume_id] == [A]
    assert before[disk.volume_id] == [B]
    assert before[stuck.volume_id] == [A, B]
    world.restart()
    assert world.published() == before
    assert "'e2e-node'" in world.refused(rwo, B)
    assert "migrationTimeoutSeconds" in world.refused(stuck, C, RWX_BLOCK)
    with pytest.raises(grpc.RpcError) as info:
        world.driver.controller.DeleteVolume(
            csi_pb2.DeleteVolumeRequest(volume_id=rwo.volume_id), timeout=10
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # Detaching the stuck source ends that migration (late); the VM may migrate again.
    world.unpublish(stuck, A)
    assert world.driver.sample("rds_csi_migrations_total", outcome="timed_out") == 1
    world.publish(stuck, C, RWX_BLOCK)
    world.unpublish(rwo, A)
    world.publish(rwo, B)
    assert world.published()[rwo.volume_id] == [B]


def test_a_volume_attachment_removed_behind_the_controllers_back(world: World) -> None:
    """A force-detach (the attach-detach controller after a node died) frees the volume."""
    rwo = world.volume()
    world.publish(rwo, B)
    time.sleep(0.5)  # the watch sees the attacher's record (the fake polls its file at 5 Hz)
    world.cluster.detached(rwo.volume_id, B)  # no ControllerUnpublish reached the driver
    world.driver.wait_for(lambda: world.published()[rwo.volume_id] == [], "the watch to see it")
    world.publish(rwo, C)


def test_a_dead_node_is_reported_stale_and_keeps_the_fence(world: World) -> None:
    rwo = world.volume()
    world.publish(rwo, C)
    for node in world.cluster.data["nodes"]:
        if node["name"] == C:
            node.update(ready=False, since=time.time() - 3600)
    world.cluster.save()
    world.driver.wait_for(
        lambda: world.driver.sample("rds_csi_stale_attachments") == 1, "the stale report"
    )
    assert "StaleAttachment" in world.cluster.event_reasons()
    assert "'node-c'" in world.refused(rwo, B)  # reported, never detached


def test_a_failed_mount_is_told_to_the_pod(world: World) -> None:
    volume = world.volume()
    with pytest.raises(grpc.RpcError):
        world.driver.node.NodePublishVolume(  # never staged: FAILED_PRECONDITION
            csi_pb2.NodePublishVolumeRequest(
                volume_id=volume.volume_id,
                staging_target_path=world.driver.staging_dir(volume.volume_id),
                target_path=world.driver.target_path(volume.volume_id),
                volume_capability=MOUNT,
                volume_context={
                    **volume.volume_context,
                    "csi.storage.k8s.io/pod.name": "web-0",
                    "csi.storage.k8s.io/pod.namespace": "apps",
                },
            ),
            timeout=10,
        )
    events = pathlib.Path(f"{world.cluster.path}.events.jsonl").read_text().splitlines()
    told = [json.loads(line) for line in events]
    assert [(e["about"]["kind"], e["about"]["name"], e["reason"]) for e in told] == [
        ("Pod", "web-0", "MountFailed")
    ]
    assert "could not be mounted" in told[0]["message"]
