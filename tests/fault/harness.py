"""
The fault suite's moving parts: the emulator and the controller as real processes, a batch of
volume operations that retries as the external-provisioner does, and a Probe loop.

Every process is started by this module and ended by its own handle (pid), never by name.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from typing import Final, Self

import attrs
import grpc
import paramiko

from rds_csi.domain.identity import VolumeId
from rds_csi.emulator import public_key_line
from rds_csi.emulator.state import DISK_TABLE
from rds_csi.emulator.table import read_rows
from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc
from rds_csi.entrypoints.options import options


DEADLINE: Final = 8.0  # each controller call's gRPC deadline, as a sidecar's --timeout
NODE_DEADLINE: Final = 30.0  # a node call may format a filesystem on a loaded machine
PROBE_EVERY: Final = 0.1
PROBE_DEADLINE: Final = 5.0  # generous: the suite measures, the assertion is on the figure
STARTUP: Final = 30.0
GIB: Final = 1 << 30
POOL: Final = "storage-pool"
VOLUME_DIR: Final = "metal-csi"
# Answers that say the request itself is wrong: after a fault, the driver must never give them
# for a request that was right. Any other failure (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED,
# RESOURCE_EXHAUSTED, INTERNAL for a garbled answer) is retried, as the CSI sidecars retry.
WRONG: Final = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
_CHANNEL_OPTIONS: Final = [
    # Reconnect at once when the driver comes back, not after grpc's default backoff (up to 2 min).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]
Cap = csi_pb2.VolumeCapability
MOUNT = Cap(
    access_mode=Cap.AccessMode(mode=Cap.AccessMode.SINGLE_NODE_WRITER), mount=Cap.MountVolume()
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate: Callable[[], bool], what: str, timeout: float = STARTUP) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Process:
    """One child process with its output in a file; ended by its own pid."""

    def __init__(self, argv: Sequence[str], log: pathlib.Path) -> None:
        self.argv = list(argv)
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()
            )
        self.starts += 1

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (continued first, in case it was stopped), then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class EmulatorProcess(Process):
    """``rds-csi emulator`` on a fixed loopback port and data directory, so a restart is the
    same RDS: same address, same host key, same disks."""

    def __init__(self, workdir: pathlib.Path, *extra: str) -> None:
        self.data_dir = workdir / "rds"
        self.port = free_port()
        key = paramiko.ECDSAKey.generate()
        self.key_file = workdir / "id_ecdsa"
        self.key_file.touch(mode=0o600)
        key.write_private_key_file(str(self.key_file))
        public = workdir / "id_ecdsa.pub"
        public.write_text(public_key_line(key) + "\n")
        self.known_hosts = workdir / "known_hosts"
        super().__init__(
            [sys.executable, "-m", "rds_csi.emulator", "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", str(self.data_dir), "--pool-size", "200G",
             "--authorized-key", str(public), "--log-level", "INFO", *extra],
            workdir / "emulator.log",
        )  # fmt: skip

    def start(self) -> None:
        seen = self.log().count("known_hosts: ") if self.log_path.exists() else 0
        super().start()
        _wait(lambda: self.log().count("known_hosts: ") > seen, "the emulator to listen")
        line = [x for x in self.log().splitlines() if x.startswith("known_hosts: ")][-1]
        self.known_hosts.write_text(line.removeprefix("known_hosts: ") + "\n")

    def faults_injected(self) -> int:
        return self.log().count("fault injected: ")

    # --- what the RDS holds, read from its files (the emulator may be stopped) ---------------

    def disks(self) -> list[dict[str, object]]:
        found = read_rows(self.data_dir / DISK_TABLE)  # the snapshot and its journal
        return [] if found is None else list(found[1].values())

    def images(self) -> set[str]:
        """Every file in the pool, as RouterOS names it (``/storage-pool/...``)."""
        pool = self.data_dir / POOL
        return {"/" + str(p.relative_to(self.data_dir)) for p in pool.rglob("*") if p.is_file()}


def _node_arguments(workdir: pathlib.Path, emulator: EmulatorProcess) -> list[str]:
    """``rds-csi all`` attaching the emulator's images as loop devices, kubelet's paths under
    ``workdir`` (where the driver confines node paths, it is told so)."""
    argv = ["--initiator", "loop", "--node-id", "fault-node",
            "--loop-exports-file", str(emulator.data_dir / "nvme-exports.json")]  # fmt: skip
    if "kubelet_dir" in {o.name for o in options()}:
        argv += ["--kubelet-dir", str(workdir / "kubelet")]
    return argv


class DriverProcess(Process):
    """
    ``rds-csi controller`` against the emulator, over SSH with the host key verified; with
    ``node``, ``rds-csi all`` with the loop initiator (root).
    """

    def __init__(
        self, workdir: pathlib.Path, emulator: EmulatorProcess, *, node: bool = False
    ) -> None:
        self.socket_path = workdir / "csi" / "csi.sock"
        self.kubelet_dir = workdir / "kubelet"
        mode = ["all", *_node_arguments(workdir, emulator)] if node else ["controller"]
        super().__init__(
            [sys.executable, "-m", "rds_csi", *mode,
             "--endpoint", f"unix://{self.socket_path}", "--metrics-address", "",
             "--backend", "ssh", "--rds-address", "127.0.0.1",
             "--rds-port", str(emulator.port), "--rds-ssh-key", str(emulator.key_file),
             "--rds-known-hosts", str(emulator.known_hosts),
             # Short enough that an RDS back from the dead is tried again within the batch.
             "--breaker-reset-timeout", "1", "--health-interval", "1",
             # No cluster here: the in-memory one (the node ID is its only node).
             "--kubernetes", "fake"],
            workdir / "driver.log",
        )  # fmt: skip

    def start(self) -> None:
        super().start()
        with grpc.insecure_channel(f"unix://{self.socket_path}") as channel:
            identity = csi_pb2_grpc.IdentityStub(channel)

            def serving() -> bool:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the driver exited:\n{self.log()}")
                try:
                    identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=1)
                except grpc.RpcError:
                    return False
                return True

            _wait(serving, "the driver to serve")

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(f"unix://{self.socket_path}", options=_CHANNEL_OPTIONS)


@attrs.define
class Call:
    method: str
    code: grpc.StatusCode
    seconds: float
    deadline: float


@attrs.define
class Figures:
    """What one phase measured."""

    phase: str
    operations: int = 0  # CSI calls made, retries included
    failed: int = 0
    faults: int = 0
    orphans: int = 0
    duplicates: int = 0
    missing: int = 0
    leftovers: int = 0  # loop devices and mounts left under the phase's directory
    probes: int = 0
    probe_errors: int = 0
    slowest_probe: float = 0.0
    slowest_failed: float = 0.0
    unexpected: list[str] = attrs.field(factory=list)

    def line(self) -> str:
        return (
            f"{self.phase}: operations={self.operations} failed={self.failed} "
            f"faults_injected={self.faults} orphans={self.orphans} "
            f"duplicates={self.duplicates} missing={self.missing} leftovers={self.leftovers} "
            f"probes={self.probes} "
            f"slowest_probe={self.slowest_probe:.3f}s slowest_failed_rpc={self.slowest_failed:.3f}s"
        )


class Prober:
    """Probe every ``PROBE_EVERY`` seconds on its own channel; ``paused`` while the driver is
    known to be dead (nothing can answer then)."""

    def __init__(self, driver: DriverProcess) -> None:
        self._channel = driver.channel()
        self._identity = csi_pb2_grpc.IdentityStub(self._channel)
        self.paused = threading.Event()
        self._stop = threading.Event()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="prober", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(PROBE_DEADLINE + 5)
        self._channel.close()

    def _loop(self) -> None:
        while not self._stop.wait(PROBE_EVERY):
            if self.paused.is_set():
                continue
            started = time.monotonic()
            error = ""
            try:
                self._identity.Probe(csi_pb2.ProbeRequest(), timeout=PROBE_DEADLINE)
            except grpc.RpcError as exc:
                error = f"{exc.code()}: {exc.details()}"
            took = time.monotonic() - started
            if self.paused.is_set():
                continue  # the driver was killed under this probe
            self.latencies.append(took)
            if error:
                self.errors.append(error)


class Batch:
    """
    ``names`` volumes created (with ``node``, each also staged and unstaged), then every other
    one deleted, ``workers`` at a time, each call retried on a failure until it succeeds (as the
    external-provisioner and kubelet do). ``done`` counts the steps done, so a fault can be
    timed to land mid-batch.
    """

    def __init__(
        self, driver: DriverProcess, names: Sequence[str], *, node: bool = False, workers: int = 4
    ) -> None:
        self.names = list(names)
        self.node = node
        self._kubelet_dir = driver.kubelet_dir
        self._channel = driver.channel()
        self._controller = csi_pb2_grpc.ControllerStub(self._channel)
        self._node = csi_pb2_grpc.NodeStub(self._channel)
        self._workers = workers
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.done = 0
        self.deleted: set[str] = set()
        self.kept: set[str] = set()

    @property
    def steps(self) -> int:
        return len(self.names) * (3 if self.node else 1) + len(self.names[::2])

    def _call(
        self,
        method: str,
        invoke: Callable[[float], object],
        give_up_at: float,
        deadline: float = DEADLINE,
    ) -> None:
        while True:
            started = time.monotonic()
            try:
                invoke(deadline)
            except grpc.RpcError as exc:
                code = exc.code()
                took = time.monotonic() - started
                with self._lock:
                    self.calls.append(Call(method, code, took, deadline))
                if code in WRONG:
                    raise AssertionError(f"{method}: {code}: {exc.details()}") from None
                if time.monotonic() > give_up_at:
                    raise AssertionError(
                        f"{method} still failing: {code}: {exc.details()}"
                    ) from None
                time.sleep(0.2)
                continue
            with self._lock:
                took = time.monotonic() - started
                self.calls.append(Call(method, grpc.StatusCode.OK, took, deadline))
                self.done += 1
            return

    def _one(self, index: int, name: str, give_up_at: float) -> None:
        created: list[csi_pb2.Volume] = []

        def create(deadline: float) -> None:
            response = self._controller.CreateVolume(
                csi_pb2.CreateVolumeRequest(
                    name=name,
                    capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
                    volume_capabilities=[MOUNT],
                ),
                timeout=deadline,
            )
            created.append(response.volume)

        self._call("CreateVolume", create, give_up_at)
        volume = created[-1]
        assert volume.volume_id == VolumeId.from_name(name).value
        if self.node:
            self._stage_and_unstage(volume, give_up_at)
        if index % 2:
            with self._lock:
                self.kept.add(name)
            return
        self._call(
            "DeleteVolume",
            lambda deadline: self._controller.DeleteVolume(
                csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id), timeout=deadline
            ),
            give_up_at,
        )
        with self._lock:
            self.deleted.add(name)

    def _stage_and_unstage(self, volume: csi_pb2.Volume, give_up_at: float) -> None:
        staging = self._kubelet_dir / "plugins" / "staging" / volume.volume_id
        staging.mkdir(parents=True, exist_ok=True)  # kubelet makes the staging directory
        self._call(
            "NodeStageVolume",
            lambda deadline: self._node.NodeStageVolume(
                csi_pb2.NodeStageVolumeRequest(
                    volume_id=volume.volume_id,
                    staging_target_path=str(staging),
                    volume_capability=MOUNT,
                    volume_context=volume.volume_context,
                ),
                timeout=deadline,
            ),
            give_up_at,
            NODE_DEADLINE,
        )
        self._call(
            "NodeUnstageVolume",
            lambda deadline: self._node.NodeUnstageVolume(
                csi_pb2.NodeUnstageVolumeRequest(
                    volume_id=volume.volume_id, staging_target_path=str(staging)
                ),
                timeout=deadline,
            ),
            give_up_at,
            NODE_DEADLINE,
        )

    def run(self, budget: float = 120.0) -> None:
        give_up_at = time.monotonic() + budget
        try:
            with futures.ThreadPoolExecutor(self._workers, thread_name_prefix="batch") as pool:
                for outcome in [
                    pool.submit(self._one, i, n, give_up_at) for i, n in enumerate(self.names)
                ]:
                    outcome.result()
        finally:
            self._channel.close()


@contextlib.contextmanager
def mid_batch(batch: Batch, fault: Callable[[], None]) -> Iterator[threading.Thread]:
    """Run ``fault`` once a third of the batch's steps are done (or it has ended)."""
    finished = threading.Event()

    def later() -> None:
        while batch.done < batch.steps // 3 and not finished.is_set():
            time.sleep(0.005)
        fault()

    thread = threading.Thread(target=later, name="fault", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        finished.set()
        thread.join(60)
