"""
Node RPC timings on real loop devices and real mounts (root): stage, publish, unpublish, unstage.

Starts ``python -m rds_csi all --initiator loop`` and drives N cycles over its unix socket:

* filesystem volume: CreateVolume, NodeStageVolume (loop attach, mkfs, mount), NodePublishVolume
  (bind), NodeUnpublishVolume, NodeUnstageVolume (unmount, detach), NodeStageVolume again (the
  filesystem exists: no mkfs), publish, unpublish, unstage, DeleteVolume;
* raw block volume: stage (attach only), two publishes (device node bound onto two files, the
  live-migration shape), two unpublishes, unstage.

The disks come from a RouterOS emulator on loopback when the driver has the SSH backend;
otherwise the driver runs the in-memory RDS and this script writes the disk images and the
emulator's ``nvme-exports.json`` itself (the emulator's own writer, ``JsonExportsDataPlane``).
Client-side wall time per call. Everything is made under one temporary directory and undone
there at the end, also after a failure; nothing else on the host is touched.

    PYTHONPATH=src python bench/node_real_mounts.py [--cycles 20] [--fs-type xfs]
"""

from __future__ import annotations

import argparse
import functools
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from rds_csi.adapters.loop.parse import parse_loop_devices
from rds_csi.adapters.mount.parse import parse_mountinfo
from rds_csi.domain import Size
from rds_csi.emulator import Emulator, EmulatorConfig, ExportedDisk, JsonExportsDataPlane
from rds_csi.entrypoints.container import backend_kinds
from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc


T = TypeVar("T")
Cap = csi_pb2.VolumeCapability
GIB = 1 << 30
TIMINGS: dict[str, list[float]] = {}


def timed(name: str, call: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = call()
    TIMINGS.setdefault(name, []).append(time.perf_counter() - start)
    return result


class Mirror:
    """The emulator's data plane, written by us for a driver on the in-memory RDS."""

    def __init__(self, data_dir: pathlib.Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.plane = JsonExportsDataPlane(data_dir / "nvme-exports.json")

    def _disk(self, volume: csi_pb2.Volume) -> ExportedDisk:
        image = self.data_dir / "disks" / f"{volume.volume_id}.img"
        return ExportedDisk(
            volume.volume_id, volume.volume_context["nqn"], image, 4420, volume.capacity_bytes
        )

    def created(self, volume: csi_pb2.Volume) -> None:
        disk = self._disk(volume)
        disk.image.parent.mkdir(parents=True, exist_ok=True)
        with disk.image.open("wb") as handle:
            handle.truncate(disk.size)
        self.plane.export(disk)

    def deleted(self, volume: csi_pb2.Volume) -> None:
        disk = self._disk(volume)
        self.plane.unexport(disk)
        disk.image.unlink(missing_ok=True)


def _driver_args(data_dir: pathlib.Path, client_dir: pathlib.Path) -> tuple[list[str], object]:
    if "ssh" not in backend_kinds():
        print("disks: in-memory RDS + exports written here (no ssh backend in the container)")
        return ["--backend", "fake"], Mirror(data_dir)
    emulator = Emulator(EmulatorConfig(data_dir=data_dir, pool_size=Size(64 * GIB)))
    host, port = emulator.start()
    client = emulator.provision_client(client_dir)
    print(f"disks: RouterOS emulator on {host}:{port}")
    args = ["--backend", "ssh", "--rds-address", host, "--rds-port", str(port)]
    args += ["--rds-user", client.user, "--rds-ssh-key", str(client.key_file)]
    args += ["--rds-known-hosts", str(client.known_hosts_file)]
    return args, emulator


def _start(
    workdir: pathlib.Path, args: list[str], exports: pathlib.Path
) -> subprocess.Popen[bytes]:
    sock = workdir / "csi.sock"
    argv = [sys.executable, "-m", "rds_csi", "all", "--endpoint", f"unix://{sock}"]
    argv += ["--metrics-address", "", "--log-level", "warning", *args]
    argv += ["--initiator", "loop", "--loop-exports-file", str(exports)]
    argv += ["--kubelet-dir", str(workdir.resolve())]  # the staging dirs are below it
    with (workdir / "driver.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    deadline = time.monotonic() + 20
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"the driver did not start:\n{(workdir / 'driver.log').read_text()}")
        time.sleep(0.05)
    return proc


def _cycle(
    controller: csi_pb2_grpc.ControllerStub,
    node: csi_pb2_grpc.NodeStub,
    workdir: pathlib.Path,
    mirror: Mirror | None,
    *,
    fs_type: str,
    i: int,
) -> None:
    cap = Cap(
        access_mode=Cap.AccessMode(mode=Cap.AccessMode.SINGLE_NODE_WRITER),
        mount=Cap.MountVolume(fs_type=fs_type),
    )
    volume = controller.CreateVolume(
        csi_pb2.CreateVolumeRequest(
            name=f"bench-fs-{i}-{os.getpid()}",
            capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
            volume_capabilities=[cap],
        ),
        timeout=30,
    ).volume
    if mirror:
        mirror.created(volume)
    vid, ctx = volume.volume_id, volume.volume_context
    staging = workdir / "staging" / vid
    staging.mkdir(parents=True)
    target = workdir / "pods" / f"pod-{i}" / vid
    target.parent.mkdir(parents=True)
    stage = csi_pb2.NodeStageVolumeRequest(
        volume_id=vid, staging_target_path=str(staging), volume_capability=cap, volume_context=ctx
    )
    publish = csi_pb2.NodePublishVolumeRequest(
        volume_id=vid,
        staging_target_path=str(staging),
        target_path=str(target),
        volume_capability=cap,
    )
    unpublish = csi_pb2.NodeUnpublishVolumeRequest(volume_id=vid, target_path=str(target))
    unstage = csi_pb2.NodeUnstageVolumeRequest(volume_id=vid, staging_target_path=str(staging))
    for first in (True, False):
        what = f"attach, mkfs.{fs_type}, mount" if first else "attach, existing fs, mount"
        timed(f"NodeStageVolume ({what})", lambda: node.NodeStageVolume(stage, timeout=60))
        timed("NodePublishVolume (bind dir)", lambda: node.NodePublishVolume(publish, timeout=60))
        timed("NodeUnpublishVolume (dir)", lambda: node.NodeUnpublishVolume(unpublish, timeout=60))
        timed("NodeUnstageVolume (unmount, detach)", lambda: node.NodeUnstageVolume(unstage))
    controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vid), timeout=30)
    if mirror:
        mirror.deleted(volume)


def _block_cycle(
    controller: csi_pb2_grpc.ControllerStub,
    node: csi_pb2_grpc.NodeStub,
    workdir: pathlib.Path,
    mirror: Mirror | None,
    i: int,
) -> None:
    cap = Cap(
        access_mode=Cap.AccessMode(mode=Cap.AccessMode.MULTI_NODE_MULTI_WRITER),
        block=Cap.BlockVolume(),
    )
    volume = controller.CreateVolume(
        csi_pb2.CreateVolumeRequest(
            name=f"bench-block-{i}-{os.getpid()}",
            capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
            volume_capabilities=[cap],
        ),
        timeout=30,
    ).volume
    if mirror:
        mirror.created(volume)
    vid = volume.volume_id
    staging = workdir / "staging" / vid
    staging.mkdir(parents=True)
    timed(
        "NodeStageVolume (attach, block)",
        lambda: node.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(
                volume_id=vid,
                staging_target_path=str(staging),
                volume_capability=cap,
                volume_context=volume.volume_context,
            ),
            timeout=60,
        ),
    )
    targets = []
    for vm in ("source", "target"):
        target = workdir / "pods" / f"{vm}-{i}" / vid
        target.parent.mkdir(parents=True)
        targets.append(target)
        request = csi_pb2.NodePublishVolumeRequest(
            volume_id=vid,
            staging_target_path=str(staging),
            target_path=str(target),
            volume_capability=cap,
        )
        timed("NodePublishVolume (bind device)", functools.partial(node.NodePublishVolume, request))
    for target in targets:
        done = csi_pb2.NodeUnpublishVolumeRequest(volume_id=vid, target_path=str(target))
        timed("NodeUnpublishVolume (device)", functools.partial(node.NodeUnpublishVolume, done))
    timed(
        "NodeUnstageVolume (detach, block)",
        lambda: node.NodeUnstageVolume(
            csi_pb2.NodeUnstageVolumeRequest(volume_id=vid, staging_target_path=str(staging))
        ),
    )
    controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vid), timeout=30)
    if mirror:
        mirror.deleted(volume)


def _clean(root: pathlib.Path) -> list[str]:
    """Unmount and detach whatever is left under ``root`` (only there)."""
    prefix = f"{os.path.realpath(root)}/"
    left = []
    table = parse_mountinfo(pathlib.Path("/proc/self/mountinfo").read_text())
    for mount in reversed([m.target for m in table if m.target.startswith(prefix)]):
        subprocess.run(["umount", "--", mount], check=False, timeout=60)
        left.append(mount)
    listed = subprocess.run(
        ["losetup", "--list", "--json", "--output", "NAME,BACK-FILE,AUTOCLEAR"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    for device in parse_loop_devices(listed.stdout):
        if device.back_file.startswith(prefix):
            subprocess.run(["losetup", "--detach", device.name], check=False, timeout=30)
            left.append(device.name)
    return left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--fs-type", default="xfs", choices=["xfs", "ext4", "ext3"])
    args = parser.parse_args()
    if os.geteuid() != 0 or not pathlib.Path("/dev/loop-control").exists():
        sys.exit("needs root and loop devices")
    with tempfile.TemporaryDirectory(prefix="rds-csi-node-bench-") as tmp:
        root = pathlib.Path(os.path.realpath(tmp))
        data_dir = root / "rds"
        driver_args, plane = _driver_args(data_dir, root / "ssh-client")
        mirror = plane if isinstance(plane, Mirror) else None
        proc = _start(root, driver_args, data_dir / "nvme-exports.json")
        try:
            with grpc.insecure_channel(f"unix://{root / 'csi.sock'}") as channel:
                grpc.channel_ready_future(channel).result(timeout=20)
                controller = csi_pb2_grpc.ControllerStub(channel)
                node = csi_pb2_grpc.NodeStub(channel)
                for i in range(args.cycles):
                    _cycle(controller, node, root, mirror, fs_type=args.fs_type, i=i)
                    _block_cycle(controller, node, root, mirror, i)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
            if isinstance(plane, Emulator):
                plane.stop()
            left = _clean(root)
            if left:
                print(f"cleaned up after a failure: {left}")
    print(f"{args.cycles} cycles, 1 GiB sparse images, client-side wall time in ms:")
    print(f"  {'call':48s} {'n':>4s} {'p50':>7s} {'p90':>7s} {'max':>7s}")
    for name, values in TIMINGS.items():
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        print(
            f"  {name:48s} {len(values):4d} {statistics.median(values) * 1000:7.1f} "
            f"{p90 * 1000:7.1f} {max(values) * 1000:7.1f}"
        )


if __name__ == "__main__":
    main()
