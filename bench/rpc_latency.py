"""
Per-RPC latency of the real driver process over a unix socket: p50/p99 over N calls each.

Starts ``python -m rds_csi all`` (in-memory RDS, fake node ports, logs at --log-level to
/dev/null), then times N calls of each RPC from one client, in lifecycle order so every call
does real work: N distinct CreateVolume, N repeats of one (the idempotent path), N stages,
publishes, stats, unpublishes, unstages and deletes. Client-side wall time per call, so it
includes the channel, the interceptor (log line, metrics) and the use case.

    PYTHONPATH=src python bench/rpc_latency.py [--calls 1000] [--log-level info]
    PYTHONPATH=src python bench/rpc_latency.py --backend emulator   # the controller over SSH
    PYTHONPATH=src python bench/rpc_latency.py --concurrent 32 --volumes 100 --rtt 0,0.02

With ``--concurrent``: instead, ``rds-csi controller`` over SSH to an ``rds-csi emulator``
process with each ``--rtt`` (its delay line), and the wall time of ``--concurrent`` callers
creating ``--volumes`` volumes between them (issue 15's 32-way figure).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

import grpc
import paramiko
from _procs import driver, free_port, spawn, start_timed, stop

from rds_csi.emulator import public_key_line
from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc


Cap = csi_pb2.VolumeCapability
MOUNT = Cap(
    access_mode=Cap.AccessMode(mode=Cap.AccessMode.SINGLE_NODE_WRITER), mount=Cap.MountVolume()
)
GIB = 1 << 30
WARMUP = 50


def _start(
    workdir: pathlib.Path, log_level: str, backend: str
) -> tuple[subprocess.Popen[bytes], str]:
    sock = workdir / "csi.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rds_csi",
            "all",
            "--endpoint",
            f"unix://{sock}",
            "--metrics-address",
            "",
            "--log-level",
            log_level,
            "--backend",
            backend,
            "--initiator",
            "fake",
            # room for every volume the run makes (the emulator counts files at full size)
            "--emulator-pool-size",
            "64Ti",
            "--kubelet-dir",  # the staging and target dirs are below it
            str(workdir.resolve()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    target = f"unix://{sock}"
    deadline = time.monotonic() + 20
    with grpc.insecure_channel(target) as channel:
        identity = csi_pb2_grpc.IdentityStub(channel)
        while True:
            try:
                identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=1)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    raise SystemExit("the driver did not start") from None
                time.sleep(0.05)
    return proc, target


def _measure(calls: int, call: Callable[[int], object]) -> list[float]:
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _row(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    mean = statistics.fmean(ordered)
    return f"{name:<28}{len(ordered):>7}{p50:>10.3f}{p99:>10.3f}{mean:>10.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--backend",
        default="fake",
        choices=["fake", "emulator"],
        help="the RDS behind the controller: in memory, or the embedded emulator over SSH",
    )
    parser.add_argument("--concurrent", type=int, default=0, help="callers (0: per-RPC mode)")
    parser.add_argument("--volumes", type=int, default=100)
    parser.add_argument("--rtt", default="0,0.02", help="emulated RTTs, seconds, comma-separated")
    args = parser.parse_args()
    n: int = args.calls
    if args.concurrent:
        for rtt in (float(r) for r in args.rtt.split(",")):
            with tempfile.TemporaryDirectory(prefix="rds-csi-bench-") as tmp:
                wall = concurrent_creates(pathlib.Path(tmp), rtt, args.concurrent, args.volumes)
            print(
                f"{args.concurrent} callers creating {args.volumes} volumes, controller over SSH "
                f"to the emulator at RTT {rtt * 1000:g} ms: {wall:.2f} s"
            )
        return

    with tempfile.TemporaryDirectory(prefix="rds-csi-bench-") as tmp:
        workdir = pathlib.Path(tmp)
        proc, target = _start(workdir, args.log_level, args.backend)
        try:
            with grpc.insecure_channel(target) as channel:
                rows = _run(channel, workdir, n)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    print(f"rds-csi RPC latency over {target.split('//')[0]}// (ms, client wall time)")
    print(f"{'rpc':<28}{'calls':>7}{'p50':>10}{'p99':>10}{'mean':>10}")
    for name, samples in rows:
        print(_row(name, samples))


def concurrent_creates(workdir: pathlib.Path, rtt: float, callers: int, volumes: int) -> float:
    """The wall time of ``callers`` threads sharing ``volumes`` CreateVolume calls."""
    port = free_port()
    key = paramiko.ECDSAKey.generate()
    key_file = workdir / "id_ecdsa"
    key_file.touch(mode=0o600)
    key.write_private_key_file(str(key_file))
    public = workdir / "id_ecdsa.pub"
    public.write_text(public_key_line(key) + "\n")
    emulator = spawn(
        driver(
            "emulator", "--listen", f"127.0.0.1:{port}", "--data-dir", str(workdir / "rds"),
            "--pool-size", "64Ti", "--authorized-key", str(public), "--rtt", str(rtt),
            "--log-level", "warning",
        ),
        workdir / "emulator.log",
    )  # fmt: skip
    sock = workdir / "csi.sock"
    controller = None
    try:
        deadline = time.monotonic() + 30
        while "known_hosts: " not in (workdir / "emulator.log").read_text():
            if time.monotonic() > deadline or emulator.poll() is not None:
                raise SystemExit("the emulator did not start")
            time.sleep(0.05)
        controller, _ = start_timed(
            driver(
                "controller", "--backend", "ssh", "--kubernetes", "fake",
                "--rds-address", "127.0.0.1",
                "--rds-port", str(port), "--rds-ssh-key", str(key_file),
                "--rds-insecure-ignore-host-key", "--endpoint", f"unix://{sock}",
                "--metrics-address", "", "--log-level", "warning",
            ),
            sock,
        )  # fmt: skip
        names = iter(range(volumes))
        lock = threading.Lock()

        def caller() -> None:
            with grpc.insecure_channel(f"unix://{sock}") as channel:
                stub = csi_pb2_grpc.ControllerStub(channel)
                while True:
                    with lock:
                        i = next(names, None)
                    if i is None:
                        return
                    stub.CreateVolume(
                        csi_pb2.CreateVolumeRequest(
                            name=f"burst-{i}",
                            capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
                            volume_capabilities=[MOUNT],
                        ),
                        timeout=60,
                    )

        threads = [threading.Thread(target=caller) for _ in range(callers)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - started
    finally:
        if controller is not None:
            stop(controller)
        stop(emulator)


def _run(channel: grpc.Channel, workdir: pathlib.Path, n: int) -> list[tuple[str, list[float]]]:
    identity = csi_pb2_grpc.IdentityStub(channel)
    controller = csi_pb2_grpc.ControllerStub(channel)
    node = csi_pb2_grpc.NodeStub(channel)
    probe = csi_pb2.ProbeRequest()
    for _ in range(WARMUP):
        identity.Probe(probe)

    volumes: list[csi_pb2.Volume] = []

    def create(i: int) -> None:
        volumes.append(
            controller.CreateVolume(
                csi_pb2.CreateVolumeRequest(
                    name=f"bench-{i}",
                    capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
                    volume_capabilities=[MOUNT],
                )
            ).volume
        )

    def staging(i: int) -> str:
        path = workdir / "staging" / str(i)
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def target(i: int) -> str:
        return str(workdir / "pods" / str(i))

    return [
        ("Probe", _measure(n, lambda _i: identity.Probe(probe))),
        (
            "GetPluginInfo",
            _measure(n, lambda _i: identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest())),
        ),
        (
            "NodeGetCapabilities",
            _measure(n, lambda _i: node.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest())),
        ),
        ("CreateVolume (new)", _measure(n, create)),
        (
            "CreateVolume (repeat)",
            _measure(
                n,
                lambda _i: controller.CreateVolume(
                    csi_pb2.CreateVolumeRequest(
                        name="bench-0",
                        capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
                        volume_capabilities=[MOUNT],
                    )
                ),
            ),
        ),
        (
            "ControllerGetVolume",
            _measure(
                n,
                lambda i: controller.ControllerGetVolume(
                    csi_pb2.ControllerGetVolumeRequest(volume_id=volumes[i].volume_id)
                ),
            ),
        ),
        (
            "ListVolumes (100 of N)",
            _measure(
                n, lambda _i: controller.ListVolumes(csi_pb2.ListVolumesRequest(max_entries=100))
            ),
        ),
        (
            "GetCapacity",
            _measure(n, lambda _i: controller.GetCapacity(csi_pb2.GetCapacityRequest())),
        ),
        (
            "NodeStageVolume",
            _measure(
                n,
                lambda i: node.NodeStageVolume(
                    csi_pb2.NodeStageVolumeRequest(
                        volume_id=volumes[i].volume_id,
                        staging_target_path=staging(i),
                        volume_capability=MOUNT,
                        volume_context=volumes[i].volume_context,
                    )
                ),
            ),
        ),
        (
            "NodePublishVolume",
            _measure(
                n,
                lambda i: node.NodePublishVolume(
                    csi_pb2.NodePublishVolumeRequest(
                        volume_id=volumes[i].volume_id,
                        staging_target_path=staging(i),
                        target_path=target(i),
                        volume_capability=MOUNT,
                    )
                ),
            ),
        ),
        (
            "NodeGetVolumeStats",
            _measure(
                n,
                lambda i: node.NodeGetVolumeStats(
                    csi_pb2.NodeGetVolumeStatsRequest(
                        volume_id=volumes[i].volume_id, volume_path=target(i)
                    )
                ),
            ),
        ),
        (
            "NodeUnpublishVolume",
            _measure(
                n,
                lambda i: node.NodeUnpublishVolume(
                    csi_pb2.NodeUnpublishVolumeRequest(
                        volume_id=volumes[i].volume_id, target_path=target(i)
                    )
                ),
            ),
        ),
        (
            "NodeUnstageVolume",
            _measure(
                n,
                lambda i: node.NodeUnstageVolume(
                    csi_pb2.NodeUnstageVolumeRequest(
                        volume_id=volumes[i].volume_id, staging_target_path=staging(i)
                    )
                ),
            ),
        ),
        (
            "DeleteVolume",
            _measure(
                n,
                lambda i: controller.DeleteVolume(
                    csi_pb2.DeleteVolumeRequest(volume_id=volumes[i].volume_id)
                ),
            ),
        ),
    ]


if __name__ == "__main__":
    main()
