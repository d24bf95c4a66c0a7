"""
Issue 12, items 4, 5 and 11, against the real process: what the node plugin may touch.

The first part drives the shared driver (in-memory node stack; its mount points are real
directories under the driver's workdir, which is its ``--kubelet-dir``). The second runs a
driver on real loop devices and mounts, as root, inside a private mount namespace of its own
(``unshare --mount``): whatever it mounts or unmounts, even over ``/etc`` or ``/proc`` on a
driver without these checks, happens in that namespace only and ends with it. The test reads
the driver's view through ``/proc/<pid>/mountinfo`` and ``/proc/<pid>/root``.
"""

from __future__ import annotations

import functools
import json
import pathlib
import subprocess
import uuid
from collections.abc import Callable, Iterator

import attrs
import grpc
import pytest

from rds_csi.adapters.loop import LoopInitiator
from rds_csi.adapters.mount.parse import parse_mountinfo
from rds_csi.domain import Nqn, NvmeTarget, VolumeId
from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.doubles.exports import ExportsDir
from tests.e2e.conftest import MOUNT, DriverProcess, mount_capability, start_driver
from tests.support.root import Janitor, require_root


C = grpc.StatusCode
EXT4 = mount_capability(fs_type="ext4")


def _random_id() -> str:
    return str(VolumeId.from_name(f"nobody-staged-this-{uuid.uuid4()}"))


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    error: grpc.Call = info.value  # type: ignore[assignment]
    return error.code()


def _stage(d: DriverProcess, volume: csi_pb2.Volume, staging: str, cap: object = MOUNT) -> None:
    d.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=volume.volume_id,
            staging_target_path=staging,
            volume_capability=cap,  # type: ignore[arg-type]
            volume_context=volume.volume_context,
        ),
        timeout=60,
    )


# --- paths outside the kubelet directory (item 4), on the shared driver -----------------------


def _outside(driver: DriverProcess, kind: str) -> str:
    if kind == "symlink":
        link = driver.workdir / "staging" / f"link-to-etc-{uuid.uuid4()}"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/etc")
        return str(link)
    return {"etc": "/etc", "proc-root": "/proc/self/root/etc"}[kind]


@pytest.mark.parametrize("kind", ["etc", "symlink", "proc-root"])
def test_stage_outside_the_kubelet_dir_is_invalid(driver: DriverProcess, kind: str) -> None:
    volume = driver.create()
    path = _outside(driver, kind)
    assert _code(lambda: _stage(driver, volume, path)) == C.INVALID_ARGUMENT


@pytest.mark.parametrize("kind", ["etc", "symlink", "proc-root"])
def test_publish_outside_the_kubelet_dir_is_invalid(driver: DriverProcess, kind: str) -> None:
    volume = driver.create()
    staging = driver.staging_dir(volume.volume_id)
    _stage(driver, volume, staging)
    call = lambda: driver.node.NodePublishVolume(  # noqa: E731
        csi_pb2.NodePublishVolumeRequest(
            volume_id=volume.volume_id,
            staging_target_path=staging,
            target_path=_outside(driver, kind),
            volume_capability=MOUNT,
        )
    )
    assert _code(call) == C.INVALID_ARGUMENT


@pytest.mark.parametrize("path", ["/etc", "/proc"])
def test_unpublish_and_unstage_outside_the_kubelet_dir_are_invalid(
    driver: DriverProcess, path: str
) -> None:
    vid = _random_id()
    unpublish = lambda: driver.node.NodeUnpublishVolume(  # noqa: E731
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=vid, target_path=path)
    )
    unstage = lambda: driver.node.NodeUnstageVolume(  # noqa: E731
        csi_pb2.NodeUnstageVolumeRequest(volume_id=vid, staging_target_path=path)
    )
    assert _code(unpublish) == C.INVALID_ARGUMENT
    assert _code(unstage) == C.INVALID_ARGUMENT
    assert pathlib.Path(path).is_dir()


@pytest.mark.parametrize("kind", ["etc", "symlink", "proc-root"])
def test_expand_outside_the_kubelet_dir_is_invalid(driver: DriverProcess, kind: str) -> None:
    # NodeExpandVolume grows whatever filesystem is mounted at volume_path: / included
    volume = driver.create()
    call = lambda: driver.node.NodeExpandVolume(  # noqa: E731
        csi_pb2.NodeExpandVolumeRequest(
            volume_id=volume.volume_id,
            volume_path=_outside(driver, kind),
            capacity_range=csi_pb2.CapacityRange(required_bytes=2 << 30),
        )
    )
    assert _code(call) == C.INVALID_ARGUMENT


def test_unpublish_with_a_random_id_deletes_no_file_or_dir_it_did_not_make(
    driver: DriverProcess,
) -> None:
    pod = driver.workdir / "pods" / f"someone-{uuid.uuid4()}"
    directory = pod / "empty-dir"
    directory.mkdir(parents=True)
    empty = pod / "empty-file"
    empty.touch()
    for path in (directory, empty):
        driver.node.NodeUnpublishVolume(
            csi_pb2.NodeUnpublishVolumeRequest(volume_id=_random_id(), target_path=str(path))
        )
    assert directory.is_dir()
    assert empty.is_file()


# --- real mounts in a private mount namespace (items 4 and 5) ----------------------------------


@attrs.define
class Namespaced:
    """A driver on loop devices in its own mount namespace, and the disks it reaches."""

    driver: DriverProcess
    exports: ExportsDir
    janitor: Janitor

    @property
    def pid(self) -> int:
        return self.driver.proc.pid

    def mounts(self) -> dict[str, str]:
        """The driver's mount table: target -> fs type."""
        text = pathlib.Path(f"/proc/{self.pid}/mountinfo").read_text()
        return {m.target: m.fs_type for m in parse_mountinfo(text)}

    def seen(self, path: str) -> pathlib.Path:
        """``path`` as the driver sees it."""
        return pathlib.Path(f"/proc/{self.pid}/root{path}")

    def nsenter(self, *argv: str) -> None:
        done = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "--", *argv],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    def create(self) -> csi_pb2.Volume:
        volume = self.driver.create(size=64 << 20, capabilities=[EXT4])
        self.exports.export(VolumeId.parse(volume.volume_id), volume.capacity_bytes)
        return volume

    def loop_attached(self) -> list[str]:
        """Loop devices on our images that are attached and not merely waiting to detach."""
        done = subprocess.run(
            ["losetup", "--list", "--json", "--output", "NAME,BACK-FILE,AUTOCLEAR"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        listed = json.loads(done.stdout or '{"loopdevices": []}')["loopdevices"]
        root = str(self.janitor.root)
        return [
            d["name"]
            for d in listed
            if str(d.get("back-file", "")).startswith(root) and d.get("autoclear") in (False, "0")
        ]


@pytest.fixture(scope="module")
def namespaced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Namespaced]:
    require_root("losetup", "mount", "umount", "blkid", "mkfs.ext4", "unshare", "nsenter")
    janitor = Janitor(tmp_path_factory.mktemp("confined"))
    exports = ExportsDir(janitor.root / "rds")
    driver: DriverProcess | None = None
    try:
        driver = start_driver(
            janitor.root / "driver",
            "--initiator",
            "loop",
            "--loop-exports-file",
            str(exports.file),
            wrapper=["unshare", "--mount", "--propagation", "private", "--"],
        )
        yield Namespaced(driver, exports, janitor)
    finally:
        if driver is not None:
            driver.stop()  # its namespace, and every mount in it, goes with it
        janitor.cleanup()


@pytest.mark.root
def test_stage_to_etc_mounts_nothing_over_it(namespaced: Namespaced) -> None:
    volume = namespaced.create()
    link = namespaced.driver.workdir / "staging" / "to-etc"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to("/etc")
    for path in ("/etc", str(link), "/proc/self/root/etc"):
        code = _code(functools.partial(_stage, namespaced.driver, volume, path, EXT4))
        assert code == C.INVALID_ARGUMENT
    assert namespaced.mounts().get("/etc") != "ext4"  # never our volume over it
    assert namespaced.loop_attached() == []


@pytest.mark.root
def test_unpublish_with_a_random_id_leaves_a_foreign_tmpfs_and_its_data(
    namespaced: Namespaced,
) -> None:
    target = namespaced.driver.target_path("foreign", "someone")
    pathlib.Path(target).mkdir()
    namespaced.nsenter("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", target)
    namespaced.seen(target).joinpath("data").write_text("not yours")
    code = _code(
        lambda: namespaced.driver.node.NodeUnpublishVolume(
            csi_pb2.NodeUnpublishVolumeRequest(volume_id=_random_id(), target_path=target)
        )
    )
    assert code == C.FAILED_PRECONDITION
    assert namespaced.mounts().get(target) == "tmpfs"
    assert namespaced.seen(target).joinpath("data").read_text() == "not yours"
    namespaced.nsenter("umount", target)


@pytest.mark.root
def test_unstage_pointed_at_proc_leaves_proc_and_the_driver_working(
    namespaced: Namespaced,
) -> None:
    code = _code(
        lambda: namespaced.driver.node.NodeUnstageVolume(
            csi_pb2.NodeUnstageVolumeRequest(volume_id=_random_id(), staging_target_path="/proc")
        )
    )
    assert code == C.INVALID_ARGUMENT
    assert namespaced.mounts().get("/proc") == "proc"
    volume = namespaced.create()  # and the next calls still work
    staging = namespaced.driver.staging_dir(volume.volume_id)
    _stage(namespaced.driver, volume, staging, EXT4)
    namespaced.driver.node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=volume.volume_id, staging_target_path=staging)
    )
    assert namespaced.loop_attached() == []


@pytest.mark.root
def test_a_failed_stage_under_another_nqn_prefix_keeps_the_live_device(
    namespaced: Namespaced,
) -> None:
    volume = namespaced.create()
    staging = namespaced.driver.staging_dir(volume.volume_id)
    _stage(namespaced.driver, volume, staging, EXT4)
    nqn = Nqn(volume.volume_context["nqn"])
    device = LoopInitiator(namespaced.exports.file).device_for(nqn)
    assert device is not None
    namespaced.seen(staging).joinpath("data").write_text("live")
    other = dict(volume.volume_context)
    other["nqn"] = f"nqn.2000-02.com.example:{volume.volume_id}"
    code = _code(
        lambda: namespaced.driver.node.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(
                volume_id=volume.volume_id,
                staging_target_path=namespaced.driver.staging_dir(f"{volume.volume_id}-other"),
                volume_capability=EXT4,
                volume_context=other,
            )
        )
    )
    assert code == C.NOT_FOUND
    assert LoopInitiator(namespaced.exports.file).device_for(nqn) == device
    assert device in namespaced.loop_attached()
    assert namespaced.seen(staging).joinpath("data").read_text() == "live"
    namespaced.driver.node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=volume.volume_id, staging_target_path=staging)
    )
    assert namespaced.loop_attached() == []


@pytest.mark.root
def test_unstage_after_the_disk_was_deleted_detaches_its_loop_device(
    namespaced: Namespaced,
) -> None:
    volume = namespaced.create()
    staging = namespaced.driver.staging_dir(volume.volume_id)
    _stage(namespaced.driver, volume, staging, EXT4)
    assert len(namespaced.loop_attached()) == 1
    namespaced.driver.controller.DeleteVolume(
        csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id), timeout=30
    )
    target = NvmeTarget(address="127.0.0.1", port=4420, nqn=Nqn(volume.volume_context["nqn"]))
    namespaced.exports.unexport(target, delete_image=True)
    namespaced.driver.node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=volume.volume_id, staging_target_path=staging)
    )
    assert staging not in namespaced.mounts()
    assert namespaced.loop_attached() == []


@pytest.mark.root
def test_a_volume_whose_loop_device_was_let_go_while_busy_is_still_unmounted(
    namespaced: Namespaced,
) -> None:
    # Its device lingers (detached on last close): the mounts on it are the volume's still.
    volume = namespaced.create()
    staging = namespaced.driver.staging_dir(volume.volume_id)
    target = namespaced.driver.target_path(volume.volume_id)
    _stage(namespaced.driver, volume, staging, EXT4)
    namespaced.driver.node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=volume.volume_id,
            staging_target_path=staging,
            target_path=target,
            volume_capability=EXT4,
        )
    )
    [device] = namespaced.loop_attached()
    subprocess.run(["losetup", "--detach", device], check=True, timeout=30)
    namespaced.driver.node.NodeUnpublishVolume(
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume.volume_id, target_path=target)
    )
    assert target not in namespaced.mounts()
    assert not pathlib.Path(target).exists()  # publish made it, so unpublish removed it
    namespaced.driver.node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=volume.volume_id, staging_target_path=staging)
    )
    assert staging not in namespaced.mounts()
    assert pathlib.Path(staging).is_dir()  # kubelet made it: it stays
