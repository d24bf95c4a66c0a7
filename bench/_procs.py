"""
Helpers the benches share: start a driver or emulator process, wait for it, read its RSS.

Imported by the bench scripts beside it (``python bench/x.py`` puts ``bench/`` on the path).
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import statistics
import subprocess
import sys
import time

import grpc

from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc


Cap = csi_pb2.VolumeCapability
MOUNT = Cap(
    access_mode=Cap.AccessMode(mode=Cap.AccessMode.SINGLE_NODE_WRITER), mount=Cap.MountVolume()
)
GIB = 1 << 30

# A gRPC server with nothing registered, started as the driver starts its own: a thread pool
# of 16 workers on a unix socket. The floor the driver's RSS is compared with.
BARE_SERVER = """
import sys, threading
from concurrent import futures
import grpc
server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
server.add_insecure_port("unix://" + sys.argv[1])
server.start()
threading.Event().wait()
"""


def rss_kib(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise SystemExit("no VmRSS in /proc")


def median(values: list[float]) -> float:
    return statistics.median(values)


def driver(*argv: str) -> list[str]:
    return [sys.executable, "-m", "rds_csi", *argv]


def spawn(command: list[str], log: pathlib.Path | None = None) -> subprocess.Popen[bytes]:
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())


def wait_probe(proc: subprocess.Popen[bytes], target: str, timeout: float = 30) -> None:
    """Until Probe answers ready (a driver) or the channel connects (a bare server)."""
    deadline = time.monotonic() + timeout
    # A channel that finds no socket backs off for a second before trying again: wait for
    # the socket file first, so the figure is the process's and not gRPC's reconnect backoff.
    path = pathlib.Path(target.removeprefix("unix://"))
    while not path.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit(f"{proc.args!r} did not bind {path}")
        time.sleep(0.002)
    with grpc.insecure_channel(target) as channel:
        identity = csi_pb2_grpc.IdentityStub(channel)
        while True:
            try:
                answer = identity.Probe(csi_pb2.ProbeRequest(), timeout=1, wait_for_ready=True)
            except grpc.RpcError as exc:
                if exc.code() is grpc.StatusCode.UNIMPLEMENTED:
                    return  # the bare server: it serves, it just has no Identity
                answer = None
            if answer is not None and (not answer.HasField("ready") or answer.ready.value):
                return
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit(f"{proc.args!r} did not become ready")
            time.sleep(0.005)


def start_timed(
    command: list[str], sock: pathlib.Path, log: pathlib.Path | None = None
) -> tuple[subprocess.Popen[bytes], float]:
    """Start ``command`` serving on ``sock``; the seconds from spawn to Probe ready."""
    started = time.perf_counter()
    proc = spawn(command, log)
    wait_probe(proc, f"unix://{sock}")
    return proc, time.perf_counter() - started


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
