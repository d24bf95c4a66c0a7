"""
The node plugin on real block devices and real mounts: the driver process (``rds-csi all
--initiator loop``) attaches each volume's disk image as a loop device, makes real filesystems,
mounts and binds them, grows them online; driven over gRPC as kubelet would.

The disks come from the RouterOS emulator when the driver can reach it (``--backend ssh``
against an emulator on loopback, the emulator's ``nvme-exports.json`` read by the loop
initiator). Until the container has an SSH backend, the driver runs with the in-memory RDS and
this module plays the emulator's data plane itself: every volume the controller creates,
grows or deletes gets the same image file and exports entry the emulator would write.

Root only (loop devices, mounts); skipped with the reason elsewhere. Everything lives under one
temporary directory, and a janitor undoes whatever a failing test leaves there (and only
there). Run with ``-s`` to see the node RPC timings.
"""

from __future__ import annotations

import mmap
import os
import pathlib
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import attrs
import grpc
import pytest

from rds_csi.adapters.loop.parse import parse_exports
from rds_csi.adapters.mount import LinuxMounter
from rds_csi.application.ports import MountInfo
from rds_csi.domain import Nqn, NvmeTarget, VolumeId
from rds_csi.entrypoints.container import backend_kinds
from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.doubles.exports import ExportsDir
from tests.e2e.conftest import (
    GIB,
    Cap,
    DriverProcess,
    block_capability,
    mount_capability,
    start_driver,
)
from tests.support.root import Janitor, require_root


pytestmark = pytest.mark.root

T = TypeVar("T")
MIB = 1 << 20
XFS = mount_capability(fs_type="xfs")
MIGRATION = block_capability(Cap.AccessMode.MULTI_NODE_MULTI_WRITER)
TIMINGS: dict[str, list[float]] = {}


def timed(name: str, call: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = call()
    TIMINGS.setdefault(name, []).append(time.perf_counter() - start)
    return result


def _losetup_of(image: pathlib.Path) -> list[str]:
    done = subprocess.run(
        ["losetup", "--associated", str(image), "--noheadings", "--output", "NAME"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.split()


def _mount_at(path: str) -> MountInfo | None:
    return LinuxMounter().mount_at(path)


# --- the data plane: the emulator, or this module standing in for it -------------------------


@attrs.define
class DataPlane:
    """Where the volumes' disk images are, and what the driver is told to reach them."""

    data_dir: pathlib.Path
    driver_args: list[str]
    name: str

    @property
    def exports_file(self) -> pathlib.Path:
        return self.data_dir / "nvme-exports.json"

    def image_of(self, volume: csi_pb2.Volume) -> pathlib.Path:
        exports = parse_exports(self.exports_file.read_text(), source=str(self.exports_file))
        return pathlib.Path(exports[volume.volume_context["nqn"]].image)

    def created(self, volume: csi_pb2.Volume) -> None:
        """The controller made ``volume``; its image and export exist now."""

    def grown(self, volume: csi_pb2.Volume, size: int) -> None:
        """The controller grew ``volume``."""

    def deleted(self, volume: csi_pb2.Volume) -> None:
        """The controller deleted ``volume``."""

    def close(self) -> None: ...


@attrs.define
class MirroredPlane(DataPlane):
    """The in-memory RDS and, beside it, the images and exports file the emulator would keep."""

    exports: ExportsDir = attrs.field(default=None)

    def _target(self, volume: csi_pb2.Volume) -> NvmeTarget:
        return NvmeTarget(address="127.0.0.1", port=4420, nqn=Nqn(volume.volume_context["nqn"]))

    def created(self, volume: csi_pb2.Volume) -> None:
        self.exports.export(VolumeId.parse(volume.volume_id), volume.capacity_bytes)

    def grown(self, volume: csi_pb2.Volume, size: int) -> None:
        self.exports.resize(self._target(volume), size)

    def deleted(self, volume: csi_pb2.Volume) -> None:
        self.exports.unexport(self._target(volume), delete_image=True)


@attrs.define
class EmulatorPlane(DataPlane):
    """A RouterOS emulator on loopback; the driver's SSH backend makes and grows the disks."""

    emulator: object = None

    def close(self) -> None:
        stop = getattr(self.emulator, "stop", None)
        if stop is not None:
            stop()


def _open_plane(data_dir: pathlib.Path) -> DataPlane:
    if "ssh" not in backend_kinds():
        exports = ExportsDir(data_dir)
        return MirroredPlane(
            data_dir,
            ["--backend", "fake"],
            "in-memory RDS + exports written by the test (the container has no ssh backend yet)",
            exports=exports,
        )
    from rds_csi.domain import Size  # noqa: PLC0415 - only with the emulator
    from rds_csi.emulator import Emulator, EmulatorConfig  # noqa: PLC0415

    emulator = Emulator(EmulatorConfig(data_dir=data_dir, pool_size=Size(64 * GIB)))
    host, port = emulator.start()
    client = emulator.provision_client(data_dir.parent / "ssh-client")
    args = [
        "--backend",
        "ssh",
        "--rds-address",
        host,
        "--rds-port",
        str(port),
        "--rds-user",
        client.user,
        "--rds-ssh-key",
        str(client.key_file),
        "--rds-known-hosts",
        str(client.known_hosts_file),
    ]
    return EmulatorPlane(data_dir, args, f"RouterOS emulator on {host}:{port}", emulator=emulator)


@attrs.define
class RealNode:
    driver: DriverProcess
    plane: DataPlane
    janitor: Janitor

    def create(self, capability: csi_pb2.VolumeCapability, size: int = GIB) -> csi_pb2.Volume:
        volume = self.driver.create(size=size, capabilities=[capability])
        self.plane.created(volume)
        return volume

    def delete(self, volume: csi_pb2.Volume) -> None:
        self.driver.controller.DeleteVolume(
            csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id), timeout=30
        )
        self.plane.deleted(volume)

    def stage(
        self,
        volume: csi_pb2.Volume,
        capability: csi_pb2.VolumeCapability,
        staging: str,
        what: str = "",
    ) -> None:
        request = csi_pb2.NodeStageVolumeRequest(
            volume_id=volume.volume_id,
            staging_target_path=staging,
            volume_capability=capability,
            volume_context=volume.volume_context,
        )
        timed(
            f"NodeStageVolume {what}".strip(),
            lambda: self.driver.node.NodeStageVolume(request, timeout=60),
        )

    def unstage(self, volume: csi_pb2.Volume, staging: str) -> None:
        request = csi_pb2.NodeUnstageVolumeRequest(
            volume_id=volume.volume_id, staging_target_path=staging
        )
        timed("NodeUnstageVolume", lambda: self.driver.node.NodeUnstageVolume(request, timeout=60))

    def publish(
        self,
        volume: csi_pb2.Volume,
        capability: csi_pb2.VolumeCapability,
        staging: str,
        target: str,
        what: str = "",
    ) -> None:
        request = csi_pb2.NodePublishVolumeRequest(
            volume_id=volume.volume_id,
            staging_target_path=staging,
            target_path=target,
            volume_capability=capability,
            volume_context=volume.volume_context,
        )
        timed(
            f"NodePublishVolume {what}".strip(),
            lambda: self.driver.node.NodePublishVolume(request, timeout=60),
        )

    def unpublish(self, volume: csi_pb2.Volume, target: str) -> None:
        request = csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume.volume_id, target_path=target)
        timed(
            "NodeUnpublishVolume",
            lambda: self.driver.node.NodeUnpublishVolume(request, timeout=60),
        )

    def stats(self, volume: csi_pb2.Volume, path: str) -> csi_pb2.NodeGetVolumeStatsResponse:
        request = csi_pb2.NodeGetVolumeStatsRequest(volume_id=volume.volume_id, volume_path=path)
        return timed(
            "NodeGetVolumeStats", lambda: self.driver.node.NodeGetVolumeStats(request, timeout=30)
        )

    def leftovers(self) -> list[str]:
        """Mounts and loop devices of ours that are still there."""
        return [f"mount {m}" for m in self.janitor.mounts()] + [
            f"loop {d}" for d in self.janitor.loop_devices()
        ]


@pytest.fixture(scope="module")
def real_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNode]:
    require_root("losetup", "mount", "umount", "blkid", "mkfs.xfs", "xfs_growfs")
    janitor = Janitor(tmp_path_factory.mktemp("real-node"))
    plane: DataPlane | None = None
    driver: DriverProcess | None = None
    try:
        plane = _open_plane(janitor.root / "rds")
        driver = start_driver(
            janitor.root / "driver",
            *plane.driver_args,
            "--initiator",
            "loop",
            "--loop-exports-file",
            str(plane.exports_file),
            "--log-level",
            "debug",
        )
        print(f"\nreal node e2e: disks from the {plane.name}")  # noqa: T201 - -s output
        yield RealNode(driver, plane, janitor)
    finally:
        if driver is not None:
            driver.stop()
        if plane is not None:
            plane.close()
        cleaned = janitor.cleanup()
        _report_timings()
        if cleaned:
            print(f"the janitor had to clean up: {cleaned}")  # noqa: T201 - -s output


@pytest.fixture
def node(real_node: RealNode) -> Iterator[RealNode]:
    """The shared driver; whatever a test leaves mounted or attached goes after it."""
    yield real_node
    cleaned = real_node.janitor.cleanup()
    if cleaned:
        print(f"the janitor had to clean up after the test: {cleaned}")  # noqa: T201


def _report_timings() -> None:
    if not TIMINGS:
        return
    lines = ["node RPC timings (seconds, this run):"]
    for name, values in sorted(TIMINGS.items()):
        lines.append(
            f"  {name:52s} n={len(values):2d}  median={statistics.median(values):.3f}  "
            f"min={min(values):.3f}  max={max(values):.3f}"
        )
    print("\n" + "\n".join(lines))  # noqa: T201 - the measurement, shown with -s


# --- the lifecycle -------------------------------------------------------------------------------


def test_filesystem_volume_on_real_mounts(node: RealNode) -> None:
    volume = node.create(XFS, GIB)
    vid = volume.volume_id
    staging = node.driver.staging_dir(vid)
    target = node.driver.target_path(vid)
    image = node.plane.image_of(volume)

    node.stage(volume, XFS, staging, "(loop attach, mkfs.xfs, mount)")
    staged = _mount_at(staging)
    assert staged is not None
    assert staged.fs_type == "xfs"
    assert _losetup_of(image) == [staged.source]  # the volume's own image, as a loop device
    node.stage(volume, XFS, staging, "(repeat)")  # idempotent

    node.publish(volume, XFS, staging, target, "(bind dir)")
    bound = _mount_at(target)
    assert bound is not None
    assert (bound.source, bound.major_minor) == (staged.source, staged.major_minor)
    payload = os.urandom(1 * MIB)
    pathlib.Path(target, "data.bin").write_bytes(payload)
    os.sync()

    stats = node.stats(volume, target)
    usage = {u.unit: u for u in stats.usage}
    space, inodes = usage[csi_pb2.VolumeUsage.BYTES], usage[csi_pb2.VolumeUsage.INODES]
    assert 0.9 * GIB < space.total <= GIB
    assert space.used >= MIB
    assert inodes.used >= 1
    assert not stats.volume_condition.abnormal

    node.unpublish(volume, target)
    assert not pathlib.Path(target).exists()
    node.unstage(volume, staging)
    assert _mount_at(staging) is None
    assert _losetup_of(image) == []

    # Staged again: the same filesystem, the file still there (no reformat).
    node.stage(volume, XFS, staging, "(loop attach, existing fs, mount)")
    node.publish(volume, XFS, staging, target, "(bind dir)")
    assert pathlib.Path(target, "data.bin").read_bytes() == payload

    # Grown online: the RDS grows the image, the node refreshes the loop device, xfs grows.
    grown = node.driver.controller.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(
            volume_id=vid,
            capacity_range=csi_pb2.CapacityRange(required_bytes=2 * GIB),
            volume_capability=XFS,
        ),
        timeout=30,
    )
    assert grown.node_expansion_required
    node.plane.grown(volume, 2 * GIB)
    expanded = timed(
        "NodeExpandVolume",
        lambda: node.driver.node.NodeExpandVolume(
            csi_pb2.NodeExpandVolumeRequest(
                volume_id=vid,
                volume_path=target,
                staging_target_path=staging,
                capacity_range=csi_pb2.CapacityRange(required_bytes=2 * GIB),
                volume_capability=XFS,
            ),
            timeout=60,
        ),
    )
    assert expanded.capacity_bytes == 2 * GIB
    space = node.stats(volume, target).usage[0]
    assert space.total > 1.9 * GIB
    assert pathlib.Path(target, "data.bin").read_bytes() == payload

    node.unpublish(volume, target)
    node.unstage(volume, staging)
    node.delete(volume)
    assert not image.exists()
    assert node.leftovers() == []


def test_raw_block_volume_published_twice_for_a_live_migration(node: RealNode) -> None:
    volume = node.create(MIGRATION, GIB)
    vid = volume.volume_id
    staging = node.driver.staging_dir(vid)
    source_vm = node.driver.target_path(vid, "virt-launcher-source")
    target_vm = node.driver.target_path(vid, "virt-launcher-target")

    node.stage(volume, MIGRATION, staging, "(loop attach, block)")
    assert _mount_at(staging) is None  # a block stage mounts nothing
    node.publish(volume, MIGRATION, staging, source_vm, "(bind device)")
    node.publish(volume, MIGRATION, staging, target_vm, "(bind device)")
    devices = {_mount_at(p).source for p in (source_vm, target_vm)}  # type: ignore[union-attr]
    assert devices == set(_losetup_of(node.plane.image_of(volume)))

    message = b"written by the source VM, read by the target VM"
    fd = os.open(source_vm, os.O_WRONLY)
    try:
        os.pwrite(fd, message, 5 * MIB)
        os.fsync(fd)
    finally:
        os.close(fd)
    fd = os.open(target_vm, os.O_RDONLY | os.O_DIRECT)
    try:
        buffer = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT wants
        assert os.preadv(fd, [buffer], 5 * MIB) == 4096
    finally:
        os.close(fd)
    assert buffer[: len(message)] == message

    stats = node.stats(volume, target_vm)
    assert [u.total for u in stats.usage] == [GIB]
    assert not stats.volume_condition.abnormal
    blkid = subprocess.run(
        ["blkid", "-p", "--", devices.pop()], capture_output=True, timeout=30, check=False
    )
    assert blkid.returncode == 2, "a raw block volume is never formatted"

    node.unpublish(volume, source_vm)
    node.unpublish(volume, target_vm)
    node.unstage(volume, staging)
    node.delete(volume)
    assert node.leftovers() == []


# --- a stage that fails midway leaves nothing --------------------------------------------------


def _write_dos_partition_table(image: pathlib.Path) -> None:
    """One partition in an MBR: what a disk someone partitioned by hand looks like."""
    mbr = bytearray(512)
    entry = (
        bytes([0x00, 0, 2, 0, 0x83, 0, 0, 0])
        + (2048).to_bytes(4, "little")
        + (4096).to_bytes(4, "little")
    )
    mbr[446 : 446 + 16] = entry
    mbr[510:512] = b"\x55\xaa"
    with image.open("r+b") as handle:
        handle.write(mbr)


@pytest.mark.parametrize(
    ("why", "capability", "prepare", "status"),
    [
        pytest.param(
            "a partition table on the disk",
            XFS,
            _write_dos_partition_table,
            grpc.StatusCode.FAILED_PRECONDITION,
            id="not-blank",
        ),
        pytest.param(
            "a mount option the kernel refuses",
            Cap(
                access_mode=Cap.AccessMode(mode=Cap.AccessMode.SINGLE_NODE_WRITER),
                mount=Cap.MountVolume(fs_type="xfs", mount_flags=["no_such_xfs_option"]),
            ),
            None,
            grpc.StatusCode.INTERNAL,
            id="mount-fails",
        ),
    ],
)
def test_a_stage_failing_midway_leaves_no_mount_and_no_loop_device(
    node: RealNode,
    why: str,
    capability: csi_pb2.VolumeCapability,
    prepare: Callable[[pathlib.Path], None] | None,
    status: grpc.StatusCode,
) -> None:
    volume = node.create(XFS, GIB)
    staging = node.driver.staging_dir(volume.volume_id)
    image = node.plane.image_of(volume)
    if prepare is not None:
        prepare(image)
    with pytest.raises(grpc.RpcError) as caught:
        node.stage(volume, capability, staging, "(failing, cleaned up)")
    assert caught.value.code() == status, f"{why}: {caught.value.details()}"
    assert _mount_at(staging) is None
    assert _losetup_of(image) == []
    assert pathlib.Path(staging).is_dir()  # kubelet's directory stays
    if prepare is not None:
        blkid = subprocess.run(
            ["blkid", "-p", "-o", "export", "--", str(image)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert "PTTYPE=dos" in blkid.stdout  # untouched: never formatted over
    node.delete(volume)
    assert node.leftovers() == []


def test_metrics_count_the_connects(node: RealNode) -> None:
    before = node.driver.sample("rds_csi_nvme_connect_total", outcome="success")
    volume = node.create(MIGRATION, GIB)
    staging = node.driver.staging_dir(volume.volume_id)
    node.stage(volume, MIGRATION, staging, "(loop attach, block)")
    node.stage(volume, MIGRATION, staging, "(repeat)")
    assert node.driver.sample("rds_csi_nvme_connect_total", outcome="success") == before + 1
    assert node.driver.sample("rds_csi_nvme_connect_total", outcome="reused") >= 1
    node.unstage(volume, staging)
    node.delete(volume)
    assert node.leftovers() == []


def test_a_stale_staging_mount_is_recovered_by_remounting(node: RealNode) -> None:
    """
    The loop device under a staged volume is detached (as a lost NVMe/TCP connection takes
    the namespace away): the next connect gives a new device. While a pod still holds the old
    one the stage refuses; once it is gone, the stage remounts the volume on the new device.
    """
    volume = node.create(XFS, GIB)
    vid = volume.volume_id
    staging = node.driver.staging_dir(vid)
    target = node.driver.target_path(vid)
    image = node.plane.image_of(volume)
    node.stage(volume, XFS, staging, "(loop attach, mkfs.xfs, mount)")
    node.publish(volume, XFS, staging, target, "(bind dir)")
    pathlib.Path(target, "kept.txt").write_text("survives the reconnect")
    os.sync()
    old = _mount_at(staging)
    assert old is not None
    # Busy, so the kernel only marks it to go on last close; the initiator no longer counts it.
    subprocess.run(["losetup", "--detach", old.source], check=True, timeout=30)
    stats = node.stats(volume, target)
    assert stats.volume_condition.abnormal
    assert "no NVMe/TCP connection" in stats.volume_condition.message

    with pytest.raises(grpc.RpcError) as caught:
        node.stage(volume, XFS, staging, "(stale, refused)")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert target in (caught.value.details() or "")
    refused = node.driver.sample("rds_csi_mount_recovery_total", outcome="refused")
    assert refused >= 1

    node.unpublish(volume, target)
    node.stage(volume, XFS, staging, "(stale, recovered)")
    new = _mount_at(staging)
    assert new is not None
    assert new.major_minor != old.major_minor
    assert _losetup_of(image) == [new.source]  # the old loop device went with its last mount
    assert node.driver.sample("rds_csi_mount_recovery_total", outcome="recovered") >= 1
    assert pathlib.Path(staging, "kept.txt").read_text() == "survives the reconnect"
    node.publish(volume, XFS, staging, target, "(bind dir)")
    assert not node.stats(volume, target).volume_condition.abnormal

    node.unpublish(volume, target)
    node.unstage(volume, staging)
    node.delete(volume)
    assert node.leftovers() == []
