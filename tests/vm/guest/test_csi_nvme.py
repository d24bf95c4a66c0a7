"""
The driver over real NVMe/TCP, inside the guest: ``rds-csi all`` with the embedded RouterOS
emulator serving its disks through the kernel target (``--emulator-data-plane nvmet`` on
127.0.0.1) and the node plugin's nvme-cli initiator, driven over gRPC as kubelet would.

One driver process for the module (Python starts slowly under TCG). Each test leaves nothing
behind; a janitor unmounts and disconnects whatever a failing one left. Stage timings go to the
job directory's ``timings.jsonl``; the host test prints them.

Real-kernel behaviour these tests rely on (Linux 6.1, nvme-cli 2.3), found by running it:
the target's ``revalidate_size`` reaches a connected host by itself (an AEN) within a second;
when the port goes away the controller goes ``connecting`` and comes back ``live`` on its own
once the port returns within ctrl-loss-tmo; past it the controller and its block device are
removed, and while a mount still holds the old device the subsystem stays in sysfs, empty; a
new connect then reuses it, and the namespace comes back under a new name (``nvme0n2``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import attrs
import grpc
import pytest

from rds_csi.adapters.mount import LinuxMounter
from rds_csi.application.ports import MountInfo
from rds_csi.emulator.nvmet import NvmetConfigfs
from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e.conftest import DriverProcess, block_capability, mount_capability, start_driver
from tests.support.root import Janitor
from tests.vm.guest.conftest import StageTimer


pytestmark = pytest.mark.e2e_nvme

T = TypeVar("T")
MIB, GIB = 1 << 20, 1 << 30
ADDRESS, PORT = "127.0.0.1", 4420
NQN_PREFIX = "nqn.2000-02.com.mikrotik"
EXT4 = mount_capability(fs_type="ext4")
XFS = mount_capability(fs_type="xfs")
BLOCK = block_capability()
STARTUP = 300.0  # the driver's imports alone take a minute or more under TCG
RPC = 180.0
WAIT = 60.0
_HEAD = re.compile(r"nvme[0-9]+n[0-9]+")  # not nvme0c0n1 (a hidden path) nor ng0n1 (char)


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)


# --- what the kernel says, read here independently of the driver's own adapter -------------


def _subsystems(nqn: str) -> list[Path]:
    found = []
    for sub in Path("/sys/class/nvme-subsystem").glob("nvme-subsys*"):
        try:
            if (sub / "subsysnqn").read_text().strip() == nqn:
                found.append(sub)
        except OSError:
            continue
    return found


def controllers(nqn: str) -> list[Path]:
    return [
        c
        for sub in _subsystems(nqn)
        for c in sub.iterdir()
        if c.name.startswith("nvme") and c.name[4:].isdigit()
    ]


def controller_attr(nqn: str, attr: str) -> str | None:
    for ctrl in controllers(nqn):
        try:
            return (ctrl / attr).read_text().strip()
        except OSError:
            continue
    return None


def device(nqn: str) -> Path | None:
    """The namespace's block device: ``nvme<S>n<N>`` in the subsystem's sysfs directory."""
    for sub in _subsystems(nqn):
        for entry in sub.iterdir():
            if _HEAD.fullmatch(entry.name) and Path("/dev", entry.name).is_block_device():
                return Path("/dev", entry.name)
    return None


def number(dev: Path) -> str:
    rdev = dev.stat().st_rdev
    return f"{os.major(rdev)}:{os.minor(rdev)}"


def sectors(dev: Path) -> int:
    # Not /sys/block/<name>: the kernel links that only after the device node appears.
    return int(Path("/sys/class/block", dev.name, "size").read_text())


def mount_at(path: str) -> MountInfo | None:
    return LinuxMounter().mount_at(path)


def nqn_of(volume: csi_pb2.Volume) -> str:
    return str(volume.volume_context["nqn"])


# --- the stack ---------------------------------------------------------------------------------


@attrs.define
class Stack:
    driver: DriverProcess
    data_dir: Path
    nvmet: NvmetConfigfs
    janitor: Janitor
    _staging: dict[str, str] = attrs.field(factory=dict)

    def staging(self, volume_id: str) -> str:
        """Made once, as kubelet does: a stale mount there fails even a stat with EIO."""
        if volume_id not in self._staging:
            self._staging[volume_id] = self.driver.staging_dir(volume_id)
        return self._staging[volume_id]

    def create(
        self,
        capability: csi_pb2.VolumeCapability,
        size: int = GIB,
        parameters: dict[str, str] | None = None,
    ) -> csi_pb2.Volume:
        response = self.driver.controller.CreateVolume(
            csi_pb2.CreateVolumeRequest(
                name=f"pvc-{uuid.uuid4()}",
                capacity_range=csi_pb2.CapacityRange(required_bytes=size),
                volume_capabilities=[capability],
                parameters=parameters or {},
            ),
            timeout=RPC,
        )
        return response.volume

    def image_of(self, volume: csi_pb2.Volume) -> Path:
        """The disk image the emulator exports the volume from (its exports file says)."""
        exports = json.loads((self.data_dir / "nvme-exports.json").read_text())["exports"]
        return Path(exports[nqn_of(volume)]["image"])

    def stage(self, volume: csi_pb2.Volume, capability: csi_pb2.VolumeCapability) -> str:
        staging = self.staging(volume.volume_id)
        self.driver.node.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(
                volume_id=volume.volume_id,
                staging_target_path=staging,
                volume_capability=capability,
                volume_context=volume.volume_context,
            ),
            timeout=RPC,
        )
        return staging

    def unstage(self, volume: csi_pb2.Volume) -> None:
        self.driver.node.NodeUnstageVolume(
            csi_pb2.NodeUnstageVolumeRequest(
                volume_id=volume.volume_id,
                staging_target_path=self.staging(volume.volume_id),
            ),
            timeout=RPC,
        )

    def publish(
        self, volume: csi_pb2.Volume, capability: csi_pb2.VolumeCapability, pod: str = "pod"
    ) -> str:
        target = self.driver.target_path(volume.volume_id, pod)
        self.driver.node.NodePublishVolume(
            csi_pb2.NodePublishVolumeRequest(
                volume_id=volume.volume_id,
                staging_target_path=self.staging(volume.volume_id),
                target_path=target,
                volume_capability=capability,
                volume_context=volume.volume_context,
            ),
            timeout=RPC,
        )
        return target

    def unpublish(self, volume: csi_pb2.Volume, pod: str = "pod") -> None:
        self.driver.node.NodeUnpublishVolume(
            csi_pb2.NodeUnpublishVolumeRequest(
                volume_id=volume.volume_id,
                target_path=self.driver.target_path(volume.volume_id, pod),
            ),
            timeout=RPC,
        )

    def stats(self, volume: csi_pb2.Volume, path: str) -> csi_pb2.NodeGetVolumeStatsResponse:
        return self.driver.node.NodeGetVolumeStats(
            csi_pb2.NodeGetVolumeStatsRequest(volume_id=volume.volume_id, volume_path=path),
            timeout=RPC,
        )

    def delete(self, volume: csi_pb2.Volume) -> None:
        image = self.image_of(volume)
        self.driver.controller.DeleteVolume(
            csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id), timeout=RPC
        )
        assert nqn_of(volume) not in self.nvmet.subsystems()  # the emulator withdrew it
        assert not image.exists()

    def port_id(self) -> int:
        found = self.nvmet.find_port(ADDRESS, PORT)
        assert found is not None, f"nothing listens on {ADDRESS}:{PORT}"
        return found

    def port_down(self, port_id: int) -> tuple[str, ...]:
        """The target's port goes away, as a rebooting RDS or a cut link would take it."""
        info = self.nvmet.port(port_id)
        assert info is not None
        self.nvmet.remove_port(port_id)
        return info.subsystems

    def port_up(self, port_id: int, subsystems: tuple[str, ...]) -> None:
        self.nvmet.create_port(port_id, traddr=ADDRESS, trsvcid=PORT)
        for nqn in subsystems:
            self.nvmet.export(port_id, nqn)

    def leftovers(self) -> list[str]:
        connected = [
            sub.name
            for sub in Path("/sys/class/nvme-subsystem").glob("nvme-subsys*")
            if (sub / "subsysnqn").read_text().startswith(NQN_PREFIX)
            and any(c.name[4:].isdigit() for c in sub.glob("nvme*"))
        ]
        return [f"mount {m}" for m in self.janitor.mounts()] + [f"nvme {c}" for c in connected]

    def clean(self) -> list[str]:
        cleaned = self.janitor.cleanup()
        for sub in Path("/sys/class/nvme-subsystem").glob("nvme-subsys*"):
            nqn = (sub / "subsysnqn").read_text().strip()
            if nqn.startswith(NQN_PREFIX) and controllers(nqn):
                subprocess.run(
                    ["nvme", "disconnect", "-n", nqn], capture_output=True, timeout=60, check=False
                )
                cleaned.append(f"nvme {nqn}")
        return cleaned


def _wait_until_serving(driver: DriverProcess) -> None:
    deadline = time.monotonic() + STARTUP
    while True:
        if driver.proc.poll() is not None:
            pytest.fail(f"the driver exited with {driver.proc.returncode}:\n{driver.log()}")
        if driver.socket_path.exists():
            try:
                driver.identity.Probe(csi_pb2.ProbeRequest(), timeout=30)
            except grpc.RpcError:
                pass
            else:
                return
        if time.monotonic() > deadline:
            driver.stop(signal.SIGKILL)
            pytest.fail(f"the driver did not serve within {STARTUP:.0f} s:\n{driver.log()}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    nvmet = NvmetConfigfs()
    if not nvmet.available():
        pytest.fail("inside the guest but nvmet's configfs is missing: the modules did not load")
    root = tmp_path_factory.mktemp("csi")
    data_dir = root / "rds"
    started = time.monotonic()
    driver = start_driver(
        root / "driver",
        "--backend", "emulator",
        "--emulator-data-dir", str(data_dir),
        "--emulator-data-plane", "nvmet",
        "--emulator-data-address", ADDRESS,
        "--nvme-port", str(PORT),
        "--initiator", "nvme",
        "--log-level", "debug",
        wait=False,
    )  # fmt: skip
    stack = Stack(driver, data_dir, nvmet, Janitor(root))
    try:
        _wait_until_serving(driver)
        _record("driver", {"rds-csi all: start until it serves (TCG)": time.monotonic() - started})
        yield stack
    finally:
        cleaned = stack.clean()
        code = driver.stop(timeout=120)
        job = os.environ.get("RDS_CSI_VM_JOB_DIR")
        if job:  # for the host to attach when something failed
            shutil.copyfile(driver.log_path, Path(job, "driver.log"))
        assert not cleaned, f"a test left {cleaned}"
        assert code == 0, f"the driver exited {code}"
        # The emulator withdrew its exports when the driver stopped.
        assert not [n for n in nvmet.subsystems() if n.startswith(NQN_PREFIX)]


def _record(test: str, stages: dict[str, float]) -> None:
    job = os.environ.get("RDS_CSI_VM_JOB_DIR")
    if job:
        rounded = {k: round(v, 3) for k, v in stages.items()}
        with (Path(job) / "timings.jsonl").open("a") as f:
            f.write(json.dumps({"test": test, "stages": rounded}) + "\n")


@pytest.fixture
def node(stack: Stack) -> Iterator[Stack]:
    yield stack
    cleaned = stack.clean()
    assert not cleaned, f"the test left {cleaned}"


# --- the lifecycle -------------------------------------------------------------------------------


def test_filesystem_volume_lifecycle_over_nvme_tcp(node: Stack, stage: StageTimer) -> None:
    volume = node.create(EXT4)
    nqn = nqn_of(volume)
    assert (volume.volume_context["nvmeAddress"], volume.volume_context["nvmePort"]) == (
        ADDRESS,
        str(PORT),
    )
    assert nqn in node.nvmet.subsystems()  # the emulator exported it through the kernel

    with stage("stage: nvme connect + mkfs.ext4 + mount"):
        staging = node.stage(volume, EXT4)
    dev = device(nqn)
    assert dev is not None, f"no block device for {nqn} in sysfs"
    staged = mount_at(staging)
    assert staged is not None
    assert (staged.fs_type, staged.major_minor) == ("ext4", number(dev))
    assert controller_attr(nqn, "transport") == "tcp"
    assert controller_attr(nqn, "state") == "live"
    assert (controller_attr(nqn, "address") or "").startswith(f"traddr={ADDRESS},trsvcid={PORT},")
    assert sectors(dev) * 512 == GIB

    with stage("publish: bind mount"):
        target = node.publish(volume, EXT4)
    payload = os.urandom(4 * MIB)
    Path(target, "data.bin").write_bytes(payload)
    os.sync()
    node.unpublish(volume)

    with stage("unstage: umount + nvme disconnect"):
        node.unstage(volume)
    assert mount_at(staging) is None
    assert controllers(nqn) == []
    assert not dev.exists()

    with stage("stage again: nvme connect + mount (existing ext4, no mkfs)"):
        node.stage(volume, EXT4)
    target = node.publish(volume, EXT4)
    assert Path(target, "data.bin").read_bytes() == payload  # not reformatted

    dev = device(nqn)
    assert dev is not None
    with stage("expand: ControllerExpandVolume 1 -> 2 GiB (the target grows)"):
        grown = node.driver.controller.ControllerExpandVolume(
            csi_pb2.ControllerExpandVolumeRequest(
                volume_id=volume.volume_id,
                capacity_range=csi_pb2.CapacityRange(required_bytes=2 * GIB),
                volume_capability=EXT4,
            ),
            timeout=RPC,
        )
    assert grown.node_expansion_required
    assert node.image_of(volume).stat().st_size == 2 * GIB
    with stage("expand: the initiator sees 2 GiB (the target's event)"):
        wait_for(lambda: sectors(dev) * 512 == 2 * GIB, f"{dev} to show 2 GiB")
    with stage("expand: NodeExpandVolume (ns-rescan + online resize2fs)"):
        expanded = node.driver.node.NodeExpandVolume(
            csi_pb2.NodeExpandVolumeRequest(
                volume_id=volume.volume_id,
                volume_path=target,
                staging_target_path=staging,
                capacity_range=csi_pb2.CapacityRange(required_bytes=2 * GIB),
                volume_capability=EXT4,
            ),
            timeout=RPC,
        )
    assert expanded.capacity_bytes == 2 * GIB
    fs = os.statvfs(target)
    assert fs.f_blocks * fs.f_frsize > 1.8 * GIB  # the mounted filesystem grew online
    assert Path(target, "data.bin").read_bytes() == payload

    node.unpublish(volume)
    node.unstage(volume)
    with stage("delete: /disk remove withdraws the export"):
        node.delete(volume)


def test_raw_block_volume_reaches_the_targets_image(node: Stack, stage: StageTimer) -> None:
    volume = node.create(BLOCK)
    with stage("stage block: nvme connect only"):
        staging = node.stage(volume, BLOCK)
    assert mount_at(staging) is None  # a block stage mounts nothing
    with stage("publish block: bind the device node"):
        target = node.publish(volume, BLOCK)
    published = mount_at(target)
    dev = device(nqn_of(volume))
    assert published is not None
    assert dev is not None
    assert published.major_minor == number(dev)

    marker = b"written through NVMe/TCP by the pod" + os.urandom(16)
    fd = os.open(target, os.O_WRONLY)
    try:
        os.pwrite(fd, marker, 3 * MIB)
        os.fsync(fd)
    finally:
        os.close(fd)
    with node.image_of(volume).open("rb") as image:  # the target's side of the wire
        image.seek(3 * MIB)
        assert image.read(len(marker)) == marker
    blkid = subprocess.run(
        ["blkid", "-p", "--", str(dev)], capture_output=True, timeout=60, check=False
    )
    assert blkid.returncode == 2, "a raw block volume is never formatted"

    node.unpublish(volume)
    node.unstage(volume)
    assert controllers(nqn_of(volume)) == []
    node.delete(volume)


def test_two_volumes_staged_at_once_each_get_their_own_device(
    node: Stack, stage: StageTimer
) -> None:
    volumes = [node.create(BLOCK), node.create(BLOCK)]
    with stage("two stages at once (two nvme connects)"), ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda v: node.stage(v, BLOCK), volumes))
    devices = [device(nqn_of(v)) for v in volumes]
    assert None not in devices
    assert len(set(devices)) == 2
    markers = []
    for volume, dev in zip(volumes, devices, strict=True):
        target = node.publish(volume, BLOCK)
        published = mount_at(target)
        assert published is not None
        assert dev is not None
        assert published.major_minor == number(dev)  # its own NQN's device, not the other's
        marker = f"volume {volume.volume_id}".encode()
        markers.append(marker)
        fd = os.open(target, os.O_WRONLY)
        try:
            os.pwrite(fd, marker, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
    for volume, marker, other in zip(volumes, markers, reversed(markers), strict=True):
        with node.image_of(volume).open("rb") as image:
            head = image.read(64)
        assert head.startswith(marker)
        assert not head.startswith(other)
    for volume in volumes:
        node.unpublish(volume)
        node.unstage(volume)
        node.delete(volume)


def test_an_nqn_the_target_does_not_export_fails_clearly_and_leaves_nothing(
    node: Stack, stage: StageTimer
) -> None:
    exported = node.create(BLOCK)  # the port listens; the NQN below is not on it
    ghost = f"pvc-{uuid.uuid4()}"
    ghost_nqn = f"{NQN_PREFIX}:{ghost}"
    context = dict(exported.volume_context, nqn=ghost_nqn)
    staging = node.staging(ghost)
    before = node.driver.sample("rds_csi_nvme_connect_total", outcome="not_found")
    with stage("stage of an unexported NQN: refused"), pytest.raises(grpc.RpcError) as caught:
        node.driver.node.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(
                volume_id=ghost,
                staging_target_path=staging,
                volume_capability=EXT4,
                volume_context=context,
            ),
            timeout=RPC,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND, caught.value.details()
    assert "does not export it" in (caught.value.details() or "")
    assert ghost_nqn in (caught.value.details() or "")
    assert controllers(ghost_nqn) == []
    assert mount_at(staging) is None
    assert Path(staging).is_dir()  # kubelet's directory stays
    assert node.driver.sample("rds_csi_nvme_connect_total", outcome="not_found") == before + 1
    node.delete(exported)


# --- the target's port goes away and comes back ----------------------------------------------


def _write_synced(path: Path, text: str) -> None:
    with path.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def test_a_port_outage_reconnects_in_time_and_a_longer_one_is_recovered(
    node: Stack, stage: StageTimer
) -> None:
    volume = node.create(XFS, parameters={"ctrlLossTmo": "6", "reconnectDelay": "1"})
    nqn = nqn_of(volume)
    staging = node.stage(volume, XFS)
    target = node.publish(volume, XFS)
    policy = (controller_attr(nqn, "ctrl_loss_tmo"), controller_attr(nqn, "reconnect_delay"))
    assert policy == ("6", "1")  # the StorageClass's, through the volume context to connect
    _write_synced(Path(target, "kept.txt"), "survives the outages")
    old = mount_at(staging)
    assert old is not None
    port_id = node.port_id()

    # Back within ctrl-loss-tmo: the kernel reconnects by itself, the mount never notices.
    with stage("short outage: port down until the host reconnects (same device)"):
        linked = node.port_down(port_id)
        wait_for(lambda: controller_attr(nqn, "state") == "connecting", "the host to notice")
        node.port_up(port_id, linked)
        wait_for(lambda: controller_attr(nqn, "state") == "live", "the host to reconnect")
    dev = device(nqn)
    assert dev is not None
    assert number(dev) == old.major_minor
    assert Path(target, "kept.txt").read_text() == "survives the outages"
    _write_synced(Path(target, "after.txt"), "written after the reconnect")
    assert not node.stats(volume, target).volume_condition.abnormal

    # Gone for longer: the kernel gives the controller up; the mount is stale.
    with stage("long outage: port down until the host drops the controller"):
        linked = node.port_down(port_id)
        wait_for(lambda: controllers(nqn) == [], "the controller to be removed", timeout=120)
    node.port_up(port_id, linked)
    condition = node.stats(volume, target).volume_condition
    assert condition.abnormal
    assert "no NVMe/TCP connection" in condition.message

    with pytest.raises(grpc.RpcError) as caught:
        node.stage(volume, XFS)  # a pod still holds the old device
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert target in (caught.value.details() or "")
    node.unpublish(volume)
    with stage("stage after the long outage: reconnect + remount the stale mount"):
        node.stage(volume, XFS)
    new, dev = mount_at(staging), device(nqn)
    assert new is not None
    assert dev is not None
    assert new.major_minor == number(dev) != old.major_minor
    assert node.driver.sample("rds_csi_mount_recovery_total", outcome="recovered") >= 1
    target = node.publish(volume, XFS)
    assert Path(target, "kept.txt").read_text() == "survives the outages"
    assert Path(target, "after.txt").read_text() == "written after the reconnect"
    assert not node.stats(volume, target).volume_condition.abnormal

    node.unpublish(volume)
    node.unstage(volume)
    node.delete(volume)
