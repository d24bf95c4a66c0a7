"""
Memory of a long-running ``rds-csi all``: RSS after each full volume lifecycle.

Starts ``python -m rds_csi all`` with the embedded emulator behind the controller (over SSH)
and the fake initiator, runs a few warm-up cycles, then N cycles of CreateVolume,
NodeStageVolume, NodePublishVolume, NodeUnpublishVolume, NodeUnstageVolume, DeleteVolume, and
prints the process's RSS (``/proc/<pid>/status`` VmRSS) after each. A leak shows as steady
growth; flat means within about 1 MB over the run (issue 11: the emulator once kept every SSH
channel ever opened). Prints figures; asserts nothing.

    PYTHONPATH=src python bench/rss_cycles.py [--cycles 20] [--warmup 5]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import grpc

from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc


Cap = csi_pb2.VolumeCapability
MOUNT = Cap(
    access_mode=Cap.AccessMode(mode=Cap.AccessMode.SINGLE_NODE_WRITER), mount=Cap.MountVolume()
)
GIB = 1 << 30


def _start(workdir: pathlib.Path) -> tuple[subprocess.Popen[bytes], str]:
    sock = workdir / "csi.sock"
    command = [sys.executable, "-m", "rds_csi", "all", "--endpoint", f"unix://{sock}"]
    command += ["--metrics-address", "", "--log-level", "warning", "--backend", "emulator"]
    command += ["--initiator", "fake", "--emulator-pool-size", "64Ti"]
    command += ["--kubelet-dir", str(workdir.resolve())]  # the staging dirs are below it
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy()
    )
    target = f"unix://{sock}"
    deadline = time.monotonic() + 30
    with grpc.insecure_channel(target) as channel:
        identity = csi_pb2_grpc.IdentityStub(channel)
        while True:
            try:
                identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=1)
            except grpc.RpcError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    raise SystemExit("the driver did not start") from None
                time.sleep(0.05)
            else:
                return proc, target


def _rss_kib(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit("no VmRSS in /proc")


def _cycle(channel: grpc.Channel, workdir: pathlib.Path, i: int) -> None:
    controller = csi_pb2_grpc.ControllerStub(channel)
    node = csi_pb2_grpc.NodeStub(channel)
    volume = controller.CreateVolume(
        csi_pb2.CreateVolumeRequest(
            name=f"rss-{i}",
            capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
            volume_capabilities=[MOUNT],
        )
    ).volume
    staging = workdir / "staging" / str(i)
    staging.mkdir(parents=True, exist_ok=True)
    target = str(workdir / "pods" / str(i))
    node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=volume.volume_id,
            staging_target_path=str(staging),
            volume_capability=MOUNT,
            volume_context=volume.volume_context,
        )
    )
    node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=volume.volume_id,
            staging_target_path=str(staging),
            target_path=target,
            volume_capability=MOUNT,
        )
    )
    node.NodeUnpublishVolume(
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume.volume_id, target_path=target)
    )
    node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(
            volume_id=volume.volume_id, staging_target_path=str(staging)
        )
    )
    controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rds-csi-rss-") as tmp:
        workdir = pathlib.Path(tmp)
        proc, target = _start(workdir)
        samples: list[int] = []
        try:
            with grpc.insecure_channel(target) as channel:
                for i in range(args.warmup):
                    _cycle(channel, workdir, -1 - i)
                samples.append(_rss_kib(proc.pid))
                for i in range(args.cycles):
                    _cycle(channel, workdir, i)
                    samples.append(_rss_kib(proc.pid))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    print(f"rds-csi all (emulator over SSH, fake initiator): RSS after each of {args.cycles}")
    print(f"create/stage/publish/unpublish/unstage/delete cycles, after {args.warmup} warm-up")
    print(f"{'cycle':>6}{'RSS KiB':>10}{'delta':>8}")
    for n, kib in enumerate(samples):
        print(f"{n:>6}{kib:>10}{kib - samples[0]:>+8}")
    growth = samples[-1] - samples[0]
    per_cycle = growth / args.cycles
    print(
        f"growth over {args.cycles} cycles: {growth / 1024:+.2f} MiB ({per_cycle:+.1f} KiB/cycle)"
    )


if __name__ == "__main__":
    main()
