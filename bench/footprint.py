"""
Footprint of the driver, in one run (issue 15): idle RSS against a bare gRPC server, start to
Probe ready, the wall time of ``rds-csi call probe``, and RSS drift over many volume cycles.

* bare: a Python gRPC server with no services on a unix socket, 16 workers (``_procs.py``);
* node: ``rds-csi node --initiator fake`` (its Kubernetes client loaded, as in a cluster, though
  with none to reach), and the same with ``--kubernetes fake`` (no client library);
* controller: ``rds-csi controller --backend fake --kubernetes fake``;
  idle RSS is read (``/proc/<pid>/status`` VmRSS) a second after the first ready Probe;
* start to ready: spawn to the first Probe answering ready, median of ``--starts`` starts;
* call probe: the wall time of ``python -m rds_csi call probe`` against the node, median;
* drift: ``rds-csi all --backend fake --initiator fake``, RSS after the first 10 full cycles
  (create, stage, publish, unpublish, unstage, delete) and after ``--cycles``.

Prints figures and the issue's goals beside them; asserts nothing.

    PYTHONPATH=src python bench/footprint.py [--cycles 1000] [--starts 5]
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile
import time

import grpc
from _procs import (
    BARE_SERVER,
    GIB,
    MOUNT,
    driver,
    median,
    rss_kib,
    start_timed,
    stop,
)

from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc


SETTLE = 1.0  # seconds after ready before reading idle RSS
COMMON = ("--metrics-address", "", "--log-level", "warning")


def _roles(workdir: pathlib.Path) -> dict[str, list[str]]:
    def sock(name: str) -> str:
        return str(workdir / f"{name}.sock")

    return {
        "bare grpc server": [sys.executable, "-c", BARE_SERVER, sock("bare grpc server")],
        "node": driver(
            "node", "--initiator", "fake", "--node-id", "bench",
            "--endpoint", f"unix://{sock('node')}", *COMMON,
        ),
        "node, fake cluster": driver(
            "node", "--initiator", "fake", "--node-id", "bench", "--kubernetes", "fake",
            "--endpoint", f"unix://{sock('node-fake-cluster')}", *COMMON,
        ),
        "controller": driver(
            "controller", "--backend", "fake", "--kubernetes", "fake",
            "--endpoint", f"unix://{sock('controller')}", *COMMON,
        ),
    }  # fmt: skip


def _idle(workdir: pathlib.Path, starts: int) -> dict[str, tuple[int, float]]:
    """Per role: idle RSS (KiB, of the first start) and the median start-to-ready seconds."""
    out: dict[str, tuple[int, float]] = {}
    for name, command in _roles(workdir).items():
        if "--endpoint" in command:
            sock = pathlib.Path(command[command.index("--endpoint") + 1].removeprefix("unix://"))
        else:  # the bare server: its socket is its last argument
            sock = pathlib.Path(command[-1])
        rss = 0
        times: list[float] = []
        for i in range(starts):
            proc, seconds = start_timed(command, sock)
            try:
                if i == 0:
                    time.sleep(SETTLE)
                    rss = rss_kib(proc.pid)
            finally:
                stop(proc)
            sock.unlink(missing_ok=True)
            times.append(seconds)
        out[name] = (rss, median(times))
    return out


def _call_probe(workdir: pathlib.Path, calls: int) -> float:
    sock = workdir / "node.sock"
    proc, _ = start_timed(_roles(workdir)["node"], sock)
    walls: list[float] = []
    try:
        for _ in range(calls):
            started = time.perf_counter()
            subprocess.run(
                driver("call", "--endpoint", f"unix://{sock}", "probe"),
                check=True,
                stdout=subprocess.DEVNULL,
            )
            walls.append(time.perf_counter() - started)
    finally:
        stop(proc)
    return median(walls)


def _cycle(channel: grpc.Channel, kubelet: pathlib.Path, i: int) -> None:
    controller = csi_pb2_grpc.ControllerStub(channel)
    node = csi_pb2_grpc.NodeStub(channel)
    volume = controller.CreateVolume(
        csi_pb2.CreateVolumeRequest(
            name=f"cycle-{i}",
            capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
            volume_capabilities=[MOUNT],
        )
    ).volume
    vid = volume.volume_id
    staging = kubelet / "staging" / str(i)
    staging.mkdir(parents=True, exist_ok=True)
    target = str(kubelet / "pods" / str(i))
    node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=vid,
            staging_target_path=str(staging),
            volume_capability=MOUNT,
            volume_context=volume.volume_context,
        )
    )
    node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=vid,
            staging_target_path=str(staging),
            target_path=target,
            volume_capability=MOUNT,
        )
    )
    node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id=vid, target_path=target))
    node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=vid, staging_target_path=str(staging))
    )
    controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vid))
    staging.rmdir()


def _drift(workdir: pathlib.Path, cycles: int) -> tuple[int, int]:
    sock = workdir / "all.sock"
    kubelet = workdir / "kubelet"
    kubelet.mkdir()
    command = driver(
        "all", "--backend", "fake", "--initiator", "fake", "--node-id", "bench",
        "--kubelet-dir", str(kubelet), "--endpoint", f"unix://{sock}", *COMMON,
    )  # fmt: skip
    proc, _ = start_timed(command, sock)
    try:
        with grpc.insecure_channel(f"unix://{sock}") as channel:
            for i in range(10):
                _cycle(channel, kubelet, i)
            first = rss_kib(proc.pid)
            for i in range(10, cycles):
                _cycle(channel, kubelet, i)
            last = rss_kib(proc.pid)
    finally:
        stop(proc)
    return first, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--probes", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rds-csi-footprint-") as tmp:
        workdir = pathlib.Path(tmp)
        idle = _idle(workdir, args.starts)
        probe = _call_probe(workdir, args.probes)
        first, last = _drift(workdir, args.cycles)
    bare = idle["bare grpc server"][0]
    goals = {"node": "<= 1.3x", "node, fake cluster": "<= 1.3x", "controller": "<= 1.5x"}
    print(f"idle RSS and start to Probe ready (median of {args.starts} starts)")
    print(f"{'process':<20}{'RSS MiB':>9}{'ratio':>7}{'goal':>9}{'ready s':>9}{'goal':>8}")
    for name, (rss, ready) in idle.items():
        goal = goals.get(name, "")
        ready_goal = "<= 0.3" if goal else ""
        print(
            f"{name:<20}{rss / 1024:>9.1f}{rss / bare:>6.2f}x{goal:>9}{ready:>9.3f}{ready_goal:>8}"
        )
    print(f"rds-csi call probe wall (median of {args.probes}): {probe:.3f} s (goal <= 0.3)")
    print(
        f"RSS of rds-csi all (fake): after 10 cycles {first / 1024:.1f} MiB, after "
        f"{args.cycles} {last / 1024:.1f} MiB, drift {(last - first) / 1024:+.2f} MiB "
        "(goal within 2)"
    )


if __name__ == "__main__":
    main()
