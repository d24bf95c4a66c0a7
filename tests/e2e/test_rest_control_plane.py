"""
``rds-csi all --backend emulator-rest``: the driver process with the REST control plane, end
to end over gRPC (create, stage, publish, expand, unpublish, unstage, delete), and snapshots
through ``rds-csi call`` (create a volume, snapshot it, restore the snapshot into a new one).

The embedded emulator serves its REST API over HTTPS on loopback and the controller reaches it
through the REST adapter, verifying the emulator's self-signed certificate; only the backend
setting differs from an SSH run. The node side runs twice: on the in-memory node stack (any
host), and as root on real loop devices and mounts (the emulator's images; skipped elsewhere).
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator

import grpc
import pytest

from rds_csi.emulator.state import DISK_TABLE
from rds_csi.emulator.table import read_rows
from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e.conftest import GIB, MOUNT, DriverProcess, start_driver, unique_name
from tests.e2e.test_lifecycle import call
from tests.support.root import Janitor, require_root


def _slots(data_dir: pathlib.Path) -> set[str]:
    found = read_rows(data_dir / DISK_TABLE)  # the snapshot and its journal (table.py)
    return set() if found is None else {row["slot"] for row in found[1].values()}


def _lifecycle(driver: DriverProcess, data_dir: pathlib.Path) -> None:
    volume = driver.create(size=GIB)
    vid = volume.volume_id
    assert vid in _slots(data_dir)  # the emulator holds the disk the REST adapter made
    image = data_dir / "storage-pool" / "metal-csi" / f"{vid}.img"
    assert image.stat().st_size == GIB
    staging = driver.staging_dir(vid)
    target = driver.target_path(vid)

    driver.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=vid,
            staging_target_path=staging,
            volume_capability=MOUNT,
            volume_context=volume.volume_context,
        ),
        timeout=60,
    )
    driver.node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=vid,
            staging_target_path=staging,
            target_path=target,
            volume_capability=MOUNT,
            volume_context=volume.volume_context,
        ),
        timeout=30,
    )
    assert pathlib.Path(target).is_dir()

    grown = driver.controller.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(
            volume_id=vid,
            capacity_range=csi_pb2.CapacityRange(required_bytes=2 * GIB),
            volume_capability=MOUNT,
        ),
        timeout=30,
    )
    assert grown.capacity_bytes == 2 * GIB
    assert image.stat().st_size == 2 * GIB

    driver.node.NodeUnpublishVolume(
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=vid, target_path=target), timeout=30
    )
    driver.node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=vid, staging_target_path=staging), timeout=60
    )
    driver.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vid), timeout=30)
    assert vid not in _slots(data_dir)
    assert not image.exists()  # the REST delete removed the image file too
    with pytest.raises(grpc.RpcError) as info:
        driver.controller.ControllerGetVolume(
            csi_pb2.ControllerGetVolumeRequest(volume_id=vid), timeout=10
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def _start(workdir: pathlib.Path, *args: str) -> DriverProcess:
    return start_driver(
        workdir / "driver",
        "--backend",
        "emulator-rest",
        "--emulator-data-dir",
        str(workdir / "rds"),
        "--log-level",
        "debug",
        *args,
    )


@pytest.fixture
def rest_driver(tmp_path: pathlib.Path) -> Iterator[DriverProcess]:
    driver = _start(tmp_path)
    try:
        yield driver
    finally:
        driver.stop()


def test_the_rest_control_plane_serves_a_volume_end_to_end(
    rest_driver: DriverProcess, tmp_path: pathlib.Path
) -> None:
    _lifecycle(rest_driver, tmp_path / "rds")
    log = rest_driver.log()
    assert "REST API on https://127.0.0.1:" in log
    assert "SHA256:" in log  # the certificate's fingerprint, as the SSH host key is shown
    password = (tmp_path / "rds" / "rest-client" / "rest-password").read_text().strip()
    assert password not in log


def test_the_rest_control_plane_snapshots_and_restores(
    rest_driver: DriverProcess, tmp_path: pathlib.Path
) -> None:
    images = tmp_path / "rds" / "storage-pool" / "metal-csi"
    made = call(rest_driver, "--json", "create", unique_name(), "--size", "1Gi")
    assert made.returncode == 0, made.stderr
    source = json.loads(made.stdout)["volume"]["volume_id"]
    with (images / f"{source}.img").open("r+b") as f:
        f.write(b"before the snapshot")

    snap = call(
        rest_driver, "--json", "snapshot", "create", "--name", "n1", "--source-volume", source
    )
    assert snap.returncode == 0, snap.stderr
    snapshot = json.loads(snap.stdout)["snapshot"]
    assert snapshot["ready_to_use"] is True
    assert snapshot["snapshot_id"] in _slots(tmp_path / "rds")  # a disk made over REST
    with (images / f"{source}.img").open("r+b") as f:
        f.write(b"after  the snapshot")

    restored = call(
        rest_driver, "--json", "create", unique_name(), "--size", "2Gi",
        "--from-snapshot", snapshot["snapshot_id"],
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    volume = json.loads(restored.stdout)["volume"]
    assert volume["content_source"]["snapshot"]["snapshot_id"] == snapshot["snapshot_id"]
    assert volume["capacity_bytes"] == str(2 * GIB)
    image = images / f"{volume['volume_id']}.img"
    assert image.stat().st_size == 2 * GIB
    with image.open("rb") as f:
        assert f.read(19) == b"before the snapshot"


@pytest.mark.root
def test_the_rest_control_plane_with_real_loop_devices_and_mounts(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    require_root("losetup", "mkfs.ext4")
    janitor = Janitor(tmp_path_factory.mktemp("rest-real-node"))
    driver = _start(janitor.root, "--initiator", "loop")
    try:
        _lifecycle(driver, janitor.root / "rds")
        assert janitor.mounts() == []
        assert janitor.loop_devices() == []
    finally:
        driver.stop()
        janitor.cleanup()
