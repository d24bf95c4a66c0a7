"""
The controller process against an RDS emulator process over SSH: a hung RDS (SIGSTOP) answers
within the caller's deadline, and a key the driver cannot use stops it at start, named.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import attrs
import grpc
import paramiko
import pytest

from rds_csi.emulator.server import public_key_line
from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e.conftest import GIB, MOUNT, DriverProcess, start_driver, unique_name


DEADLINE = 5.0
# generous: this asserts that the answer comes by the deadline, not how fast it comes
ANSWERED_BY = DEADLINE + 3.0
GAVE_UP = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


@attrs.frozen
class EmulatorProcess:
    proc: subprocess.Popen[str]
    port: int
    key_file: pathlib.Path
    known_hosts: pathlib.Path

    def driver_args(self) -> tuple[str, ...]:
        return (
            "--backend",
            "ssh",
            "--rds-address",
            "127.0.0.1",
            "--rds-port",
            str(self.port),
            "--rds-user",
            "admin",
            "--rds-ssh-key",
            str(self.key_file),
            "--rds-known-hosts",
            str(self.known_hosts),
        )


def _start_emulator(root: pathlib.Path) -> EmulatorProcess:
    root.mkdir(parents=True, exist_ok=True)
    key = paramiko.ECDSAKey.generate()
    key_file = root / "id_ecdsa"
    key.write_private_key_file(str(key_file))
    key_file.chmod(0o600)
    public = root / "id_ecdsa.pub"
    public.write_text(public_key_line(key) + "\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rds_csi.emulator",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(root / "rds"),
            "--authorized-key",
            str(public),
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    address = proc.stdout.readline()  # "RDS emulator listening on 127.0.0.1:PORT"
    known = proc.stdout.readline().removeprefix("known_hosts: ")
    port = int(address.strip().rpartition(":")[2])
    known_hosts = root / "known_hosts"
    known_hosts.write_text(known)
    return EmulatorProcess(proc, port, key_file, known_hosts)


@pytest.fixture
def rds(tmp_path: pathlib.Path) -> Iterator[EmulatorProcess]:
    emulator = _start_emulator(tmp_path / "emulator")
    try:
        yield emulator
    finally:
        emulator.proc.send_signal(signal.SIGCONT)
        emulator.proc.terminate()
        emulator.proc.wait(10)
        if emulator.proc.stdout is not None:
            emulator.proc.stdout.close()


@pytest.fixture
def controller(rds: EmulatorProcess, tmp_path: pathlib.Path) -> Iterator[DriverProcess]:
    driver = start_driver(tmp_path / "driver", *rds.driver_args(), mode="controller")
    try:
        yield driver
    finally:
        driver.stop()


def _gives_up_in_time(call: Callable[[], object]) -> tuple[grpc.StatusCode, float]:
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), time.monotonic() - started


def _answered_by_the_server(driver: DriverProcess, method: str) -> None:
    """
    The driver itself finished the call (a client-side DEADLINE_EXCEEDED alone would also
    come in time while the server went on waiting on the RDS for minutes).
    """
    driver.wait_for(
        lambda: (
            driver.sample("rds_csi_rpc_requests_total", method=method, code="UNAVAILABLE")
            + driver.sample("rds_csi_rpc_requests_total", method=method, code="DEADLINE_EXCEEDED")
            >= 1
        ),
        f"the driver to finish {method}",
        timeout=1.0,
    )


def test_a_stopped_rds_answers_within_the_callers_deadline(
    rds: EmulatorProcess, controller: DriverProcess
) -> None:
    made = controller.create()  # a warm connection, and a volume to delete
    os.kill(rds.proc.pid, signal.SIGSTOP)
    try:
        code, took = _gives_up_in_time(
            lambda: controller.controller.CreateVolume(
                csi_pb2.CreateVolumeRequest(
                    name=unique_name(),
                    capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
                    volume_capabilities=[MOUNT],
                ),
                timeout=DEADLINE,
            )
        )
        assert code in GAVE_UP
        assert took < ANSWERED_BY, took
        _answered_by_the_server(controller, "CreateVolume")
        # the connection the create gave up on is gone: this one waits on a new handshake
        code, took = _gives_up_in_time(
            lambda: controller.controller.DeleteVolume(
                csi_pb2.DeleteVolumeRequest(volume_id=made.volume_id), timeout=DEADLINE
            )
        )
        assert code in GAVE_UP
        assert took < ANSWERED_BY, took
        _answered_by_the_server(controller, "DeleteVolume")
    finally:
        os.kill(rds.proc.pid, signal.SIGCONT)


def test_an_encrypted_key_stops_the_start_with_exit_code_2_naming_the_fix(
    rds: EmulatorProcess, tmp_path: pathlib.Path
) -> None:
    key = paramiko.PKey.from_path(rds.key_file)
    assert isinstance(key, paramiko.ECDSAKey)
    encrypted = tmp_path / "encrypted_key"
    key.write_private_key_file(str(encrypted), password="secret")
    encrypted.chmod(0o600)
    args = list(rds.driver_args())
    args[args.index("--rds-ssh-key") + 1] = str(encrypted)
    argv = [
        sys.executable,
        "-m",
        "rds_csi",
        "controller",
        "--endpoint",
        f"unix://{tmp_path}/c.sock",
    ]
    result = subprocess.run(
        [*argv, "--metrics-address", "", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert str(encrypted) in result.stderr
    assert "ssh-keygen -p" in result.stderr
    assert "Traceback" not in result.stderr
