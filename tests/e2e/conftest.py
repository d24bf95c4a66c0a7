"""
The real driver process: ``python -m rds_csi all`` on a unix socket, driven by our stubs.

``driver`` is one process for the whole e2e package (in-memory RDS, fake node ports, debug
logs into a file the tests read); ``start_driver`` starts others for process-level tests.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence

import attrs
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc


STARTUP_TIMEOUT = 20.0
Cap = csi_pb2.VolumeCapability
GIB = 1 << 30


def mount_capability(
    mode: int = Cap.AccessMode.SINGLE_NODE_WRITER, fs_type: str = ""
) -> csi_pb2.VolumeCapability:
    return Cap(
        access_mode=Cap.AccessMode(mode=mode),  # type: ignore[arg-type]
        mount=Cap.MountVolume(fs_type=fs_type),
    )


def block_capability(mode: int = Cap.AccessMode.SINGLE_NODE_WRITER) -> csi_pb2.VolumeCapability:
    return Cap(access_mode=Cap.AccessMode(mode=mode), block=Cap.BlockVolume())  # type: ignore[arg-type]


MOUNT = mount_capability()
BLOCK = block_capability()


def unique_name() -> str:
    """A CreateVolume name no other test uses (the package shares one driver)."""
    return f"pvc-{uuid.uuid4()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.define
class DriverProcess:
    proc: subprocess.Popen[bytes]
    socket_path: pathlib.Path
    metrics_port: int
    log_path: pathlib.Path
    workdir: pathlib.Path
    channel: grpc.Channel
    identity: csi_pb2_grpc.IdentityStub
    controller: csi_pb2_grpc.ControllerStub
    node: csi_pb2_grpc.NodeStub

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket_path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics_text(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def sample(self, name: str, **labels: str) -> float:
        """A sample's value from the /metrics endpoint, 0 when absent."""
        for family in text_string_to_metric_families(self.metrics_text()):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return float(s.value)
        return 0.0

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}\n{self.log()}")
            time.sleep(0.01)

    def create(self, name: str = "", size: int = GIB, **kw: object) -> csi_pb2.Volume:
        response = self.controller.CreateVolume(
            csi_pb2.CreateVolumeRequest(
                name=name or unique_name(),
                capacity_range=csi_pb2.CapacityRange(required_bytes=size),
                volume_capabilities=kw.pop("capabilities", [MOUNT]),  # type: ignore[arg-type]
                **kw,  # type: ignore[arg-type]
            ),
            timeout=10,
        )
        return response.volume

    def staging_dir(self, volume_id: str) -> str:
        path = self.workdir / "staging" / volume_id
        path.mkdir(parents=True, exist_ok=True)  # kubelet makes the staging directory
        return str(path)

    def target_path(self, volume_id: str, pod: str = "pod") -> str:
        parent = self.workdir / "pods" / pod
        parent.mkdir(parents=True, exist_ok=True)  # kubelet makes the parent, we the target
        return str(parent / volume_id)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def start_driver(
    workdir: pathlib.Path,
    *args: str,
    mode: str = "all",
    env: Mapping[str, str] | None = None,
    endpoint_flag: bool = True,
    metrics_port: int | None = None,
    wait: bool = True,
    wrapper: Sequence[str] = (),
) -> DriverProcess:
    """
    Start ``python -m rds_csi <mode>`` with the parent's environment (PYTHONPATH too);
    ``wrapper`` goes before it (``unshare --mount``: a private mount namespace, which must
    exec, not fork, so ``proc.pid`` is the driver's).

    Without ``metrics_port`` the metrics endpoint goes to a free loopback port; with it, no
    ``--metrics-address`` is passed and the port is where the driver's default binds.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    socket_path = workdir / "csi" / "csi.sock"
    log_path = workdir / "driver.log"
    argv = [*wrapper, sys.executable, "-m", "rds_csi", mode]
    if endpoint_flag:
        argv += ["--endpoint", f"unix://{socket_path}"]
    if metrics_port is None:  # else the caller knows where the driver's own default binds
        metrics_port = free_port()
        argv += ["--metrics-address", f"127.0.0.1:{metrics_port}"]
    argv += ["--node-id", "e2e-node"]
    # These tiers exercise the servicers on the in-memory stack unless a test picks another.
    if "--backend" not in args:
        argv += ["--backend", "fake"]
    if "--initiator" not in args:
        argv += ["--initiator", "fake"]
    if "--kubernetes" not in args:
        argv += ["--kubernetes", "fake"]  # hermetic even where KUBECONFIG is set
    # staging_dir() and target_path() are below the workdir: it is this driver's kubelet dir.
    if "--kubelet-dir" not in args:
        argv += ["--kubelet-dir", str(workdir.resolve())]
    argv += args
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    channel = grpc.insecure_channel(f"unix://{socket_path}")
    driver = DriverProcess(
        proc,
        socket_path,
        metrics_port,
        log_path,
        workdir,
        channel,
        csi_pb2_grpc.IdentityStub(channel),
        csi_pb2_grpc.ControllerStub(channel),
        csi_pb2_grpc.NodeStub(channel),
    )
    if wait:
        _wait_until_serving(driver)
    return driver


def _wait_until_serving(driver: DriverProcess) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if driver.proc.poll() is not None:
            pytest.fail(f"the driver exited with {driver.proc.returncode}:\n{driver.log()}")
        if driver.socket_path.exists():
            with contextlib.suppress(grpc.RpcError):
                driver.identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=2)
                return
        if time.monotonic() > deadline:
            driver.stop(signal.SIGKILL)
            pytest.fail(f"the driver did not serve within {STARTUP_TIMEOUT}s:\n{driver.log()}")
        time.sleep(0.05)


@pytest.fixture(scope="package")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DriverProcess]:
    proc = start_driver(tmp_path_factory.mktemp("driver"), "--log-level", "debug")
    try:
        yield proc
    finally:
        proc.stop()
