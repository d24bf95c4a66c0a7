"""
A KubeVirt-style live migration between two "nodes" on real loop devices (root).

Node A is ``rds-csi all`` (the controller and A's node plugin), node B a second ``rds-csi node``
process; each has its own node ID, its own kubelet directory and its own record of the loop
devices it attached (``--loop-records-dir``), so each attaches its own loop device on the
volume's one disk image, as two hosts each have their own NVMe/TCP connection to one target.
The RDS is the RouterOS emulator over real SSH; the cluster the fake Kubernetes port kept in a
file, in which the test plays the external-attacher (VolumeAttachments) and the provisioner
(the PV).

The migration: a raw block ``ReadWriteMany`` volume published to A, bytes written through A's
published device and synced; ControllerPublish to B (the migration starts), NodeStage and
NodePublish on B, the same bytes read through B's device with O_DIRECT (from the disk, not a
cache); then A unpublished and detached: the migration finished, B still reads.
"""

from __future__ import annotations

import json
import mmap
import os
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import attrs
import grpc
import pytest

from rds_csi.adapters.mount import LinuxMounter
from rds_csi.domain import Size
from rds_csi.emulator import Emulator, EmulatorConfig
from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e.conftest import GIB, Cap, DriverProcess, block_capability, start_driver, unique_name
from tests.support.root import Janitor, require_root


pytestmark = pytest.mark.root

MIB = 1 << 20
MIGRATION = block_capability(Cap.AccessMode.MULTI_NODE_MULTI_WRITER)
A, B = "node-a", "node-b"
MESSAGE = b"written on node A before the migration, read on node B after it"


@attrs.define
class Cluster:
    path: pathlib.Path
    data: dict[str, list[dict[str, Any]]] = attrs.field(
        factory=lambda: {
            "volume_attachments": [],
            "persistent_volumes": [],
            "nodes": [{"name": n, "ready": True, "csi": True} for n in (A, B)],
        }
    )

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        tmp.replace(self.path)

    def attached(self, node: str) -> None:
        self.data["volume_attachments"].append(
            {
                "name": f"csi-{node}",
                "pv_name": "pv-disk",
                "node_name": node,
                "attached": True,
                # the rebuild dates the migration from here: absent, it began in 1970 (timed out)
                "created_at": time.time(),
            }
        )
        self.save()

    def detached(self, node: str) -> None:
        self.data["volume_attachments"] = [
            va for va in self.data["volume_attachments"] if va["node_name"] != node
        ]
        self.save()

    def event_reasons(self) -> list[str]:
        events = pathlib.Path(f"{self.path}.events.jsonl")
        if not events.exists():
            return []
        return [json.loads(line)["reason"] for line in events.read_text().splitlines()]


@attrs.define
class Nodes:
    a: DriverProcess
    b: DriverProcess
    cluster: Cluster
    janitor: Janitor
    rds_host: str


@pytest.fixture
def nodes(tmp_path: pathlib.Path) -> Iterator[Nodes]:
    require_root("losetup", "mount", "umount", "blkid")
    janitor = Janitor(tmp_path)
    root = janitor.root
    cluster = Cluster(root / "cluster.json")
    cluster.save()
    started: list[DriverProcess] = []
    config = EmulatorConfig(data_dir=root / "rds", pool_size=Size(64 * GIB))
    try:
        with Emulator(config) as emulator:
            client = emulator.provision_client(root / "ssh-client")
            exports = str(config.data_dir / "nvme-exports.json")
            loop = ["--initiator", "loop", "--loop-exports-file", exports, "--log-level", "debug"]
            started.append(
                start_driver(
                    root / "a",
                    "--backend",
                    "ssh",
                    "--rds-address",
                    client.host,
                    "--rds-port",
                    str(client.port),
                    "--rds-user",
                    client.user,
                    "--rds-ssh-key",
                    str(client.key_file),
                    "--rds-known-hosts",
                    str(client.known_hosts_file),
                    "--kubernetes",
                    "fake",
                    "--kubernetes-state-file",
                    str(cluster.path),
                    "--node-id",
                    A,
                    "--loop-records-dir",
                    str(root / "a" / "loop-records"),
                    *loop,
                )
            )
            started.append(
                start_driver(
                    root / "b",
                    "--node-id",
                    B,
                    "--loop-records-dir",
                    str(root / "b" / "loop-records"),
                    *loop,
                    mode="node",
                )
            )
            yield Nodes(started[0], started[1], cluster, janitor, client.host)
    finally:
        for driver in started:
            driver.stop()
        cleaned = janitor.cleanup()
        if cleaned:
            print(f"the janitor had to clean up: {cleaned}")  # noqa: T201 - -s output


def _publish(nodes: Nodes, volume: csi_pb2.Volume, node: str) -> dict[str, str]:
    answer = nodes.a.controller.ControllerPublishVolume(
        csi_pb2.ControllerPublishVolumeRequest(
            volume_id=volume.volume_id,
            node_id=node,
            volume_capability=MIGRATION,
            volume_context=volume.volume_context,
        ),
        timeout=30,
    )
    nodes.cluster.attached(node)  # the attacher records what was allowed
    return dict(answer.publish_context)


def _unpublish(nodes: Nodes, volume: csi_pb2.Volume, node: str) -> None:
    nodes.a.controller.ControllerUnpublishVolume(
        csi_pb2.ControllerUnpublishVolumeRequest(volume_id=volume.volume_id, node_id=node),
        timeout=30,
    )
    nodes.cluster.detached(node)


def _stage_and_publish(
    driver: DriverProcess, volume: csi_pb2.Volume, context: dict[str, str], pod: str
) -> str:
    """NodeStage and NodePublish on ``driver`` as kubelet does; the published device path."""
    vid = volume.volume_id
    staging = driver.staging_dir(vid)
    target = driver.target_path(vid, pod)
    driver.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=vid,
            publish_context=context,
            staging_target_path=staging,
            volume_capability=MIGRATION,
            volume_context=volume.volume_context,
        ),
        timeout=60,
    )
    driver.node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=vid,
            publish_context=context,
            staging_target_path=staging,
            target_path=target,
            volume_capability=MIGRATION,
            volume_context=volume.volume_context,
        ),
        timeout=60,
    )
    return target


def _unpublish_and_unstage(driver: DriverProcess, volume: csi_pb2.Volume, target: str) -> None:
    vid = volume.volume_id
    driver.node.NodeUnpublishVolume(
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=vid, target_path=target), timeout=60
    )
    driver.node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(
            volume_id=vid, staging_target_path=driver.staging_dir(vid)
        ),
        timeout=60,
    )


def _deleted(driver: DriverProcess, volume: csi_pb2.Volume) -> bool:
    try:
        driver.controller.DeleteVolume(
            csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id), timeout=30
        )
    except grpc.RpcError as exc:
        if exc.code() is not grpc.StatusCode.FAILED_PRECONDITION:
            raise
        return False
    return True


def _device_of(target: str) -> str:
    info = LinuxMounter().mount_at(target)
    assert info is not None, f"{target} is not published"
    return info.source


def _read_direct(path: str, offset: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        buffer = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT wants
        assert os.preadv(fd, [buffer], offset) == 4096
    finally:
        os.close(fd)
    return bytes(buffer[: len(MESSAGE)])


def test_a_block_volume_live_migrates_between_two_nodes(nodes: Nodes) -> None:
    volume = nodes.a.create(
        unique_name(),
        GIB,
        capabilities=[MIGRATION],
        parameters={"rdsAddress": nodes.rds_host},
    )
    nodes.cluster.data["persistent_volumes"].append(
        {
            "name": "pv-disk",
            "volume_handle": volume.volume_id,
            "access_modes": ["ReadWriteMany"],
            "block": True,
            "attributes": dict(volume.volume_context),
            "claim_namespace": "vms",
            "claim_name": "disk",
        }
    )
    nodes.cluster.save()

    # The VM runs on A and writes.
    on_a = _stage_and_publish(nodes.a, volume, _publish(nodes, volume, A), "virt-launcher-a")
    fd = os.open(on_a, os.O_WRONLY)
    try:
        os.pwrite(fd, MESSAGE, 7 * MIB)
        os.fsync(fd)
    finally:
        os.close(fd)

    # The migration: B is attached too (within the window), stages and publishes.
    on_b = _stage_and_publish(nodes.b, volume, _publish(nodes, volume, B), "virt-launcher-b")
    assert "MigrationStarted" in nodes.cluster.event_reasons()
    device_a, device_b = _device_of(on_a), _device_of(on_b)
    assert device_a != device_b  # each node its own device on the one disk
    assert _read_direct(on_b, 7 * MIB) == MESSAGE

    # The source lets go: the migration finished; B keeps the volume and its bytes.
    _unpublish_and_unstage(nodes.a, volume, on_a)
    _unpublish(nodes, volume, A)
    assert "MigrationFinished" in nodes.cluster.event_reasons()
    assert device_a not in nodes.janitor.loop_devices()
    assert device_b in nodes.janitor.loop_devices()
    assert _read_direct(on_b, 7 * MIB) == MESSAGE
    assert nodes.a.sample("rds_csi_migrations_total", outcome="succeeded") == 1

    _unpublish_and_unstage(nodes.b, volume, on_b)
    _unpublish(nodes, volume, B)
    # As the provisioner does, retry until the controller has seen the VolumeAttachment go.
    nodes.a.wait_for(lambda: _deleted(nodes.a, volume), "DeleteVolume to succeed")
    assert nodes.janitor.mounts() == []
    assert nodes.janitor.loop_devices() == []
