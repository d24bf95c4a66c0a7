"""
Node-side contract fixtures: each port's suite runs against every implementation listed here.

Adding an implementation is one ``pytest.param`` in ``INITIATORS`` or ``FILESYSTEMS`` and one
branch in the matching ``_open_*`` function.
Everything a test makes (connections, loop devices, mounts) is undone at teardown, also when the
test fails; root tests touch only devices and mounts under their own temp directory.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pathlib
import subprocess
import uuid
from collections.abc import Callable, Iterator

import attrs
import pytest

from rds_csi.adapters.fake_node import (
    DeviceTable,
    FakeDevice,
    FakeFilesystem,
    FakeMedium,
    FakeMounter,
    FakeNvmeInitiator,
)
from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.adapters.loop import LoopInitiator
from rds_csi.adapters.mount import LinuxFilesystem, LinuxMounter
from rds_csi.application.ports import Filesystem, Mounter, NvmeInitiator
from rds_csi.domain import DiskPath, DomainError, Nqn, NvmeTarget, Size, Volume, VolumeId
from rds_csi.domain.size import MIB
from tests.doubles.exports import ExportsDir
from tests.doubles.nvme_cli import FakeNvme, install_fake_nvme
from tests.support.root import Janitor, require_root


# --- NvmeInitiator -------------------------------------------------------------------------------


class Targets:
    """The far side an initiator connects to: makes exported volumes, grows them."""

    def export(self, volume_id: VolumeId, size: int) -> NvmeTarget:
        raise NotImplementedError

    def resize(self, target: NvmeTarget, size: int) -> None:
        raise NotImplementedError


@attrs.define
class FakeNvmeTargets(Targets):
    fake: FakeNvme

    def export(self, volume_id: VolumeId, size: int) -> NvmeTarget:
        nqn = Nqn.for_volume(volume_id)
        self.fake.export(nqn.value, size)
        return NvmeTarget(address="127.0.0.1", port=4420, nqn=nqn)

    def resize(self, target: NvmeTarget, size: int) -> None:
        self.fake.resize(target.nqn.value, size)


@attrs.define
class EmulatorExportTargets(Targets):
    exports: ExportsDir

    def export(self, volume_id: VolumeId, size: int) -> NvmeTarget:
        return self.exports.export(volume_id, size)

    def resize(self, target: NvmeTarget, size: int) -> None:
        self.exports.resize(target, size)


@attrs.define
class InMemoryRdsTargets(Targets):
    """The in-memory RDS as the far side: exports are its disks, a resize grows one."""

    rds: InMemoryRds

    def export(self, volume_id: VolumeId, size: int) -> NvmeTarget:
        nqn = Nqn.for_volume(volume_id)
        volume = Volume(volume_id, Size(size), DiskPath("/storage-pool/contract", volume_id), nqn)
        self.rds.create_volume(volume)
        return NvmeTarget(address="127.0.0.1", port=4420, nqn=nqn)

    def resize(self, target: NvmeTarget, size: int) -> None:
        volume_id = target.nqn.volume_id
        assert volume_id is not None
        self.rds.resize_volume(volume_id, Size(size))


@attrs.define
class InitiatorHarness:
    """
    One initiator under test and its targets, and how to reach the block devices it gives.

    The device I/O methods open the device node; the fake's devices live in its DeviceTable.

    Attributes:
        made: Targets the test exported; each is disconnected at teardown.
    """

    initiator: NvmeInitiator
    targets: Targets
    # A fresh adapter over the same node, as a restarted node plugin builds it.
    fresh: Callable[[], NvmeInitiator]
    made: list[NvmeTarget] = attrs.field(factory=list)

    def restart(self) -> NvmeInitiator:
        """The node plugin restarts: the initiator under test is a new instance from now on."""
        self.initiator = self.fresh()
        return self.initiator

    def exists(self, device: str) -> bool:
        return pathlib.Path(device).exists()

    def size_of(self, device: str) -> int:
        fd = os.open(device, os.O_RDONLY)
        try:
            return os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)

    def write_at(self, device: str, offset: int, data: bytes) -> None:
        fd = os.open(device, os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_at(self, device: str, offset: int, length: int) -> bytes:
        fd = os.open(device, os.O_RDONLY)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def export(self, size: int = 64 * MIB) -> NvmeTarget:
        target = self.targets.export(VolumeId.from_name(f"contract-{uuid.uuid4()}"), size)
        self.made.append(target)
        return target

    def unexported(self) -> NvmeTarget:
        volume_id = VolumeId.from_name(f"contract-missing-{uuid.uuid4()}")
        return NvmeTarget(address="127.0.0.1", port=4420, nqn=Nqn.for_volume(volume_id))

    def resize(self, target: NvmeTarget, size: int) -> None:
        self.targets.resize(target, size)


@attrs.define
class FakeInitiatorHarness(InitiatorHarness):
    """FakeNvmeInitiator over an in-memory RDS; its devices are entries of one DeviceTable."""

    devices: DeviceTable = attrs.field(factory=DeviceTable)

    def _device(self, device: str) -> FakeDevice:
        found = self.devices.get(device)
        if found is None:
            raise FileNotFoundError(device)
        return found

    def exists(self, device: str) -> bool:
        return self.devices.get(device) is not None

    def size_of(self, device: str) -> int:
        return self._device(device).size

    def write_at(self, device: str, offset: int, data: bytes) -> None:
        self._device(device).write(offset, data)

    def read_at(self, device: str, offset: int, length: int) -> bytes:
        return self._device(device).read(offset, length)


INITIATORS = [
    pytest.param("fake", id="fake"),
    pytest.param("nvme-cli", id="nvme-cli"),
    pytest.param("loop", id="loop", marks=pytest.mark.root),
]


def _open_initiator(kind: str, tmp_path: pathlib.Path) -> Iterator[InitiatorHarness]:
    if kind == "fake":
        devices, rds = DeviceTable(), InMemoryRds()

        def fresh() -> NvmeInitiator:
            return FakeNvmeInitiator(devices, exports=rds)

        yield FakeInitiatorHarness(fresh(), InMemoryRdsTargets(rds), fresh, devices=devices)
        return
    if kind == "nvme-cli":
        # The harder nvme-cli: exit status 1 after a successful `connect -o json`.
        fake = install_fake_nvme(tmp_path / "nvme", json_exit_status=1)
        yield InitiatorHarness(fake.initiator(), FakeNvmeTargets(fake), fake.initiator)
        return
    if kind == "loop":
        require_root("losetup")
        janitor = Janitor(tmp_path)
        try:
            exports = ExportsDir(tmp_path / "emulator")
            yield InitiatorHarness(
                LoopInitiator(exports.file),
                EmulatorExportTargets(exports),
                lambda: LoopInitiator(exports.file),
            )
        finally:
            janitor.cleanup()
        return
    raise AssertionError(kind)  # pragma: no cover


@pytest.fixture(params=INITIATORS)
def initiators(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> Iterator[InitiatorHarness]:
    for harness in _open_initiator(request.param, tmp_path):
        try:
            yield harness
        finally:
            for target in harness.made:
                with contextlib.suppress(DomainError):  # the janitor detaches what is left
                    harness.initiator.disconnect(target.nqn)


# --- Mounter + Filesystem ------------------------------------------------------------------------


@attrs.define
class MountHarness:
    """
    A Mounter and a Filesystem under test, with block devices to try them on.

    Attributes:
        workdir: This test's own directory; every mount point and image lives below it.
        real_data: Files written into a mounted filesystem land on the device and show
            through every other mount of it (the real adapters); the fakes keep only the
            mount table and the devices' raw bytes.
    """

    mounter: Mounter
    filesystem: Filesystem
    workdir: pathlib.Path
    real_data: bool = True

    def device(self, size: int = 64 * MIB) -> str:
        """A fresh blank block device of ``size`` bytes."""
        raise NotImplementedError

    def grow_device(self, device: str, size: int) -> None:
        """Grow the device underneath a mounted filesystem, as an RDS resize + rescan would."""
        raise NotImplementedError

    def path(self, *parts: str) -> str:
        return str(self.workdir.joinpath("mnt", *parts))

    def write_block(self, target: str, offset: int, data: bytes) -> None:
        """Write through a raw block target (a device node, or a file one is bound onto)."""
        fd = os.open(target, os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_block_direct(self, target: str, offset: int) -> bytes:
        """One 4 KiB direct read (page-aligned buffer): from the device, not a page cache."""
        fd = os.open(target, os.O_RDONLY | os.O_DIRECT)
        try:
            buf = mmap.mmap(-1, 4096)
            assert os.preadv(fd, [buf], offset) == 4096
        finally:
            os.close(fd)
        return bytes(buf)

    def mount_point(self, *parts: str, file: bool = False) -> str:
        """A mount point made through the mounter (as the node use cases make them)."""
        path = self.path(*parts)
        assert self.mounter.make_mount_point(path, file=file)
        return path


@attrs.define
class LinuxMountHarness(MountHarness):
    """Loop devices on sparse images, real mounts; the janitor undoes what a test leaves."""

    janitor: Janitor | None = None
    _images: dict[str, pathlib.Path] = attrs.field(factory=dict)

    def device(self, size: int = 64 * MIB) -> str:
        assert self.janitor is not None
        image = self.workdir / "images" / f"{uuid.uuid4()}.img"
        image.parent.mkdir(parents=True, exist_ok=True)
        with image.open("wb") as handle:
            handle.truncate(size)
        device = self.janitor.attach(image)
        self._images[device] = image
        return device

    def grow_device(self, device: str, size: int) -> None:
        with self._images[device].open("ab") as handle:
            handle.truncate(size)
        done = subprocess.run(
            ["losetup", "--set-capacity", device],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr


@attrs.define
class FakeMountHarness(MountHarness):
    """The in-memory mount table and filesystems over one DeviceTable."""

    devices: DeviceTable = attrs.field(factory=DeviceTable)

    def device(self, size: int = 64 * MIB) -> str:
        return self.devices.attach(size, FakeMedium()).path

    def grow_device(self, device: str, size: int) -> None:
        found = self.devices.get(device)
        assert found is not None
        found.size = size

    def _bound_device(self, target: str) -> FakeDevice:
        # What the kernel does for a bound device node: the mount table names the device.
        info = self.mounter.mount_at(target)
        found = self.devices.get(info.source if info is not None else target)
        if found is None:
            raise FileNotFoundError(target)
        return found

    def write_block(self, target: str, offset: int, data: bytes) -> None:
        self._bound_device(target).write(offset, data)

    def read_block_direct(self, target: str, offset: int) -> bytes:
        return self._bound_device(target).read(offset, 4096)


FILESYSTEMS = [
    pytest.param("fake", id="fake"),
    pytest.param("linux", id="linux", marks=pytest.mark.root),
]


def _open_filesystem(kind: str, tmp_path: pathlib.Path) -> Iterator[MountHarness]:
    if kind == "fake":
        devices = DeviceTable()
        mounter = FakeMounter(devices)
        filesystem = FakeFilesystem(devices, mounter)
        yield FakeMountHarness(mounter, filesystem, tmp_path, real_data=False, devices=devices)
        return
    if kind == "linux":
        require_root("losetup", "mount", "umount", "blkid", "mkfs.ext4", "resize2fs")
        janitor = Janitor(tmp_path)
        try:
            yield LinuxMountHarness(
                LinuxMounter(), LinuxFilesystem(), janitor.root, janitor=janitor
            )
        finally:
            janitor.cleanup()
        return
    raise AssertionError(kind)  # pragma: no cover


@pytest.fixture(params=FILESYSTEMS)
def node_fs(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[MountHarness]:
    yield from _open_filesystem(request.param, tmp_path)
