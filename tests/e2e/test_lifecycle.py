"""
Whole lifecycles against the real process: create -> stage -> publish -> unpublish ->
unstage -> delete, for a filesystem and a raw block volume; Go-driver compatibility; the
metrics endpoint; the `rds-csi call` client; secrets kept out of the log.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import uuid

import grpc
import pytest

from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e.conftest import (
    BLOCK,
    GIB,
    MOUNT,
    DriverProcess,
    mount_capability,
    unique_name,
)


MOUNT_XFS = mount_capability(fs_type="xfs")


def test_identity(driver: DriverProcess) -> None:
    info = driver.identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest())
    assert info.name == "rds.csi.srvlab.io"
    assert info.vendor_version
    assert driver.identity.Probe(csi_pb2.ProbeRequest()).ready.value is True


def test_filesystem_volume_lifecycle(driver: DriverProcess) -> None:
    volume = driver.create(size=GIB)
    vid = volume.volume_id
    staging = driver.staging_dir(vid)
    target = driver.target_path(vid)

    confirmed = driver.controller.ValidateVolumeCapabilities(
        csi_pb2.ValidateVolumeCapabilitiesRequest(
            volume_id=vid, volume_capabilities=[MOUNT], volume_context=volume.volume_context
        )
    )
    assert confirmed.HasField("confirmed")

    driver.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=vid,
            staging_target_path=staging,
            volume_capability=MOUNT,
            volume_context=volume.volume_context,
        )
    )
    driver.node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=vid,
            staging_target_path=staging,
            target_path=target,
            volume_capability=MOUNT,
            volume_context=volume.volume_context,
        )
    )
    assert pathlib.Path(target).is_dir()

    stats = driver.node.NodeGetVolumeStats(
        csi_pb2.NodeGetVolumeStatsRequest(volume_id=vid, volume_path=target)
    )
    units = {u.unit: u for u in stats.usage}
    assert units[csi_pb2.VolumeUsage.BYTES].total == GIB
    assert csi_pb2.VolumeUsage.INODES in units
    assert not stats.volume_condition.abnormal

    grown = driver.controller.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(
            volume_id=vid,
            capacity_range=csi_pb2.CapacityRange(required_bytes=2 * GIB),
            volume_capability=MOUNT,
        )
    )
    assert (grown.capacity_bytes, grown.node_expansion_required) == (2 * GIB, True)
    node_grown = driver.node.NodeExpandVolume(
        csi_pb2.NodeExpandVolumeRequest(
            volume_id=vid,
            volume_path=target,
            staging_target_path=staging,
            capacity_range=csi_pb2.CapacityRange(required_bytes=2 * GIB),
        )
    )
    assert node_grown.capacity_bytes == 2 * GIB
    stats = driver.node.NodeGetVolumeStats(
        csi_pb2.NodeGetVolumeStatsRequest(volume_id=vid, volume_path=target)
    )
    assert stats.usage[0].total == 2 * GIB

    driver.node.NodeUnpublishVolume(
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=vid, target_path=target)
    )
    assert not pathlib.Path(target).exists()
    driver.node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=vid, staging_target_path=staging)
    )
    with pytest.raises(grpc.RpcError) as info:
        driver.node.NodeGetVolumeStats(
            csi_pb2.NodeGetVolumeStatsRequest(volume_id=vid, volume_path=staging)
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND

    driver.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vid))
    with pytest.raises(grpc.RpcError) as info:
        driver.controller.ControllerGetVolume(csi_pb2.ControllerGetVolumeRequest(volume_id=vid))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_block_volume_lifecycle(driver: DriverProcess) -> None:
    volume = driver.create(size=GIB, capabilities=[BLOCK])
    vid = volume.volume_id
    staging = driver.staging_dir(vid)
    target = driver.target_path(vid)
    ctx = volume.volume_context
    driver.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=vid, staging_target_path=staging, volume_capability=BLOCK, volume_context=ctx
        )
    )
    driver.node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=vid,
            staging_target_path=staging,
            target_path=target,
            volume_capability=BLOCK,
            volume_context=ctx,
        )
    )
    assert pathlib.Path(target).is_file()  # the device node is bound onto a file
    stats = driver.node.NodeGetVolumeStats(
        csi_pb2.NodeGetVolumeStatsRequest(volume_id=vid, volume_path=target)
    )
    assert [(u.unit, u.total) for u in stats.usage] == [(csi_pb2.VolumeUsage.BYTES, GIB)]

    grown = driver.controller.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(
            volume_id=vid,
            capacity_range=csi_pb2.CapacityRange(required_bytes=2 * GIB),
            volume_capability=BLOCK,
        )
    )
    assert grown.node_expansion_required is False

    driver.node.NodeUnpublishVolume(
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=vid, target_path=target)
    )
    assert not pathlib.Path(target).exists()
    driver.node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=vid, staging_target_path=staging)
    )
    driver.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vid))


# The Go driver's StorageClass parameters, as an operator has them today.
GO_STORAGECLASS = {
    "rdsAddress": "10.42.0.1",
    "nvmeAddress": "10.43.0.1",
    "nvmePort": "4421",
    "sshPort": "2222",
    "fsType": "xfs",
    "volumePath": "/storage-pool/k8s-volumes",
    "nqnPrefix": "nqn.2000-02.com.mikrotik",
    "ctrlLossTmo": "600",
    "reconnectDelay": "10",
    "keepAliveTmo": "30",
    "migrationTimeoutSeconds": "120",
    # added by external-provisioner --extra-create-metadata
    "csi.storage.k8s.io/pvc/name": "data",
    "csi.storage.k8s.io/pvc/namespace": "default",
    "csi.storage.k8s.io/pv/name": "pvc-0b6a8f4e-2f6c-4c71-9f4b-8f1f5d3a2e11",
}


def test_go_compat_create_volume_context_keys_and_values(driver: DriverProcess) -> None:
    name = "pvc-0b6a8f4e-2f6c-4c71-9f4b-8f1f5d3a2e11"
    vid = "pvc-" + str(uuid.uuid5(uuid.NAMESPACE_DNS, name))  # the Go driver's rule
    volume = driver.create(name, capabilities=[MOUNT_XFS], parameters=GO_STORAGECLASS)
    assert volume.volume_id == vid
    assert dict(volume.volume_context) == {
        "rdsAddress": "10.42.0.1",
        "nvmeAddress": "10.43.0.1",
        "nvmePort": "4421",
        "nqn": f"nqn.2000-02.com.mikrotik:{vid}",
        "volumePath": f"/storage-pool/k8s-volumes/{vid}.img",
        "ctrlLossTmo": "600",
        "reconnectDelay": "10",
        "keepAliveTmo": "30",
        "migrationTimeoutSeconds": "120",
    }
    # ...and our node stages it from exactly that context.
    staging = driver.staging_dir(vid)
    driver.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=vid,
            staging_target_path=staging,
            volume_capability=MOUNT_XFS,
            volume_context=volume.volume_context,
        )
    )
    driver.node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=vid, staging_target_path=staging)
    )
    driver.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vid))


def test_go_compat_defaults_fill_the_context(driver: DriverProcess) -> None:
    volume = driver.create()
    ctx = dict(volume.volume_context)
    assert ctx["rdsAddress"] == ctx["nvmeAddress"] == "127.0.0.1"
    assert (ctx["nvmePort"], ctx["ctrlLossTmo"], ctx["reconnectDelay"]) == ("4420", "-1", "5")
    assert (ctx["keepAliveTmo"], ctx["migrationTimeoutSeconds"]) == ("0", "300")
    assert ctx["volumePath"] == f"/storage-pool/metal-csi/{volume.volume_id}.img"


def test_metrics_count_what_happened(driver: DriverProcess) -> None:
    def probes() -> float:
        return driver.sample("rds_csi_rpc_requests_total", method="Probe", code="OK")

    def not_found() -> float:
        return driver.sample(
            "rds_csi_rpc_errors_total", method="ControllerGetVolume", code="NOT_FOUND"
        )

    def latency_count() -> float:
        return driver.sample("rds_csi_rpc_duration_seconds_count", method="Probe")

    before = (probes(), not_found(), latency_count())
    for _ in range(4):
        driver.identity.Probe(csi_pb2.ProbeRequest())
    for _ in range(2):
        with pytest.raises(grpc.RpcError):
            driver.controller.ControllerGetVolume(
                csi_pb2.ControllerGetVolumeRequest(
                    volume_id="pvc-00000000-0000-0000-0000-000000000000"
                )
            )
    after = (probes(), not_found(), latency_count())
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (4, 2, 4)
    assert 'rds_csi_rpc_duration_seconds_bucket{le="0.001",method="Probe"}' in (
        driver.metrics_text()
    )


def test_secrets_never_reach_the_log(driver: DriverProcess) -> None:
    # The package's driver logs at debug, requests included.
    driver.create(secrets={"password": "e2e-hunter2"})
    driver.controller.DeleteVolume(
        csi_pb2.DeleteVolumeRequest(volume_id="pvc-x", secrets={"token": "e2e-s3cr3t"})
    )
    log = driver.log()
    assert "request CreateVolume" in log
    assert "e2e-hunter2" not in log
    assert "e2e-s3cr3t" not in log


def test_one_log_line_per_rpc(driver: DriverProcess) -> None:
    volume = driver.create()
    lines = [
        line
        for line in driver.log().splitlines()
        if " rpc " in line and f"volume_id={volume.volume_id}" in line
    ]
    assert len(lines) == 1
    assert "method=CreateVolume" in lines[0]
    assert "code=OK" in lines[0]
    assert "duration_ms=" in lines[0]


def call(driver: DriverProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rds_csi", "call", "--endpoint", driver.endpoint, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_call_client_tables_json_and_errors(driver: DriverProcess) -> None:
    probe = call(driver, "probe")
    assert probe.returncode == 0
    assert probe.stdout.split() == ["field", "value", "ready", "true"]

    name = unique_name()
    made = call(driver, "--json", "create", name, "--size", "1G", "--param", "fsType=ext4")
    assert made.returncode == 0, made.stderr
    volume = json.loads(made.stdout)["volume"]
    assert volume["volume_context"]["nqn"].endswith(volume["volume_id"])

    listed = call(driver, "list")
    assert volume["volume_id"] in listed.stdout

    missing = call(driver, "get", "pvc-00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 1
    assert missing.stderr.startswith("NOT_FOUND: ")

    bad = call(driver, "delete", "bad;id")
    assert bad.returncode == 1
    assert bad.stderr.startswith("INVALID_ARGUMENT: volume_id")
