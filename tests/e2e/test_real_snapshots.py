"""
Snapshots, restores and clones on real loop devices and mounts: ``rds-csi all --backend ssh
--initiator loop`` against the RouterOS emulator, whose ``/file copy`` copies the images for
real; driven over gRPC as the sidecars and kubelet would.

A file written before the snapshot is in the restored volume, one written after is not; a
clone holds the source's current files; a raw block volume's restore matches byte for byte.
XFS, grown online at stage when restored larger; the copies are mounted with ``nouuid``, as
a copy carries its source's filesystem UUID and XFS refuses a second mount of one UUID on a
node (docs/snapshots.md). (ext4 would need CAP_SYS_RESOURCE to grow online, which this test
container lacks.)

Root only; skipped with the reason elsewhere. Paths live under the driver's work directory
(its --kubelet-dir), and the janitor undoes what a failing test leaves.
"""

from __future__ import annotations

import os
import pathlib

import pytest

from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e import test_real_node as real
from tests.e2e.conftest import GIB, block_capability, mount_capability, unique_name
from tests.e2e.test_real_node import EmulatorPlane, RealNode


pytestmark = pytest.mark.root
# the real-node fixtures (one driver on the emulator per module), found here by pytest
real_node = real.real_node
node = real.node

MIB = 1 << 20
XFS = mount_capability(fs_type="xfs")
COPY = csi_pb2.VolumeCapability(
    access_mode=XFS.access_mode,
    mount=csi_pb2.VolumeCapability.MountVolume(fs_type="xfs", mount_flags=["nouuid"]),
)
BLOCK = block_capability()
Src = csi_pb2.VolumeContentSource


def _need_emulator(node: RealNode) -> None:
    if not isinstance(node.plane, EmulatorPlane):
        pytest.skip("needs the emulator's data plane (the in-memory RDS copies no data)")


def _snapshot(node: RealNode, volume: csi_pb2.Volume) -> csi_pb2.Snapshot:
    made = node.driver.controller.CreateSnapshot(
        csi_pb2.CreateSnapshotRequest(name=unique_name(), source_volume_id=volume.volume_id),
        timeout=120,
    ).snapshot
    assert made.ready_to_use
    return made


def _create_from(
    node: RealNode, source: Src, capability: csi_pb2.VolumeCapability, size: int = GIB
) -> csi_pb2.Volume:
    volume = node.driver.controller.CreateVolume(
        csi_pb2.CreateVolumeRequest(
            name=unique_name(),
            capacity_range=csi_pb2.CapacityRange(required_bytes=size),
            volume_capabilities=[capability],
            volume_content_source=source,
        ),
        timeout=120,
    ).volume
    node.plane.created(volume)
    return volume


def _staged(
    node: RealNode, volume: csi_pb2.Volume, capability: csi_pb2.VolumeCapability = XFS
) -> pathlib.Path:
    staging = node.driver.staging_dir(volume.volume_id)
    node.stage(volume, capability, staging)
    return pathlib.Path(staging)


def _write(path: pathlib.Path, text: str) -> None:
    path.write_text(text)
    os.sync()  # through the filesystem and the loop device into the image the RDS copies


def _teardown(node: RealNode, volumes: list[tuple[csi_pb2.Volume, str]]) -> None:
    for volume, staging in volumes:
        node.unstage(volume, staging)
        node.delete(volume)


def test_restore_holds_the_files_at_the_snapshot_and_a_clone_the_current_ones(
    node: RealNode,
) -> None:
    _need_emulator(node)
    origin = node.create(XFS, GIB)
    staging = _staged(node, origin)
    _write(staging / "data.txt", "first")
    snap = _snapshot(node, origin)
    _write(staging / "data.txt", "second")
    _write(staging / "later.txt", "after the snapshot")

    restored = _create_from(
        node, Src(snapshot=Src.SnapshotSource(snapshot_id=snap.snapshot_id)), XFS, 2 * GIB
    )
    assert restored.capacity_bytes == 2 * GIB
    restored_at = _staged(node, restored, COPY)  # grown to 2 GiB on the way
    assert (restored_at / "data.txt").read_text() == "first"
    assert not (restored_at / "later.txt").exists()
    assert os.statvfs(restored_at).f_blocks * os.statvfs(restored_at).f_frsize > 1.5 * GIB

    clone = _create_from(node, Src(volume=Src.VolumeSource(volume_id=origin.volume_id)), XFS)
    clone_at = _staged(node, clone, COPY)
    assert (clone_at / "data.txt").read_text() == "second"
    assert (clone_at / "later.txt").read_text() == "after the snapshot"

    _write(clone_at / "data.txt", "the clone's own")
    assert (staging / "data.txt").read_text() == "second"  # copies are independent

    _teardown(
        node,
        [(origin, str(staging)), (restored, str(restored_at)), (clone, str(clone_at))],
    )
    node.driver.controller.DeleteSnapshot(
        csi_pb2.DeleteSnapshotRequest(snapshot_id=snap.snapshot_id), timeout=60
    )
    assert node.leftovers() == []


def test_a_block_volume_restores_byte_for_byte(node: RealNode) -> None:
    _need_emulator(node)
    origin = node.create(BLOCK, GIB)
    staging = node.driver.staging_dir(origin.volume_id)
    target = node.driver.target_path(origin.volume_id, "block-writer")
    node.stage(origin, BLOCK, staging)
    node.publish(origin, BLOCK, staging, target)
    before = os.urandom(8 * MIB)
    fd = os.open(target, os.O_WRONLY)
    try:
        os.pwrite(fd, before, 100 * MIB)
        os.fsync(fd)
    finally:
        os.close(fd)
    snap = _snapshot(node, origin)
    fd = os.open(target, os.O_WRONLY)
    try:
        os.pwrite(fd, b"\xff" * MIB, 100 * MIB)
        os.fsync(fd)
    finally:
        os.close(fd)

    restored = _create_from(
        node, Src(snapshot=Src.SnapshotSource(snapshot_id=snap.snapshot_id)), BLOCK
    )
    r_staging = node.driver.staging_dir(restored.volume_id)
    r_target = node.driver.target_path(restored.volume_id, "block-reader")
    node.stage(restored, BLOCK, r_staging)
    node.publish(restored, BLOCK, r_staging, r_target)
    fd = os.open(r_target, os.O_RDONLY)
    try:
        assert os.pread(fd, len(before), 100 * MIB) == before
        assert os.pread(fd, MIB, 0) == b"\0" * MIB  # never written: still zero
    finally:
        os.close(fd)

    for volume, stage_path, pub in (
        (origin, staging, target),
        (restored, r_staging, r_target),
    ):
        node.unpublish(volume, pub)
        node.unstage(volume, stage_path)
        node.delete(volume)
    node.driver.controller.DeleteSnapshot(
        csi_pb2.DeleteSnapshotRequest(snapshot_id=snap.snapshot_id), timeout=60
    )
    assert node.leftovers() == []
