"""
The process itself: socket hygiene, CSI_ENDPOINT, JSON logs, modes, concurrent calls on one
volume (ABORTED), and a graceful SIGTERM that lets an in-flight call finish.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest

from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e.conftest import MOUNT, DriverProcess, start_driver, unique_name


def test_a_stale_socket_is_removed_at_start(tmp_path: pathlib.Path) -> None:
    stale = tmp_path / "csi" / "csi.sock"
    stale.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(stale))  # left behind, as by a driver killed with SIGKILL
    driver = start_driver(tmp_path)
    try:
        assert driver.identity.Probe(csi_pb2.ProbeRequest()).ready.value
        assert "removed stale socket" in driver.log()
        assert [p.name for p in stale.parent.iterdir()] == ["csi.sock"]  # no other files
    finally:
        assert driver.stop() == 0
    assert not stale.exists()  # and removed again on the way out


def test_a_path_that_is_not_a_socket_is_refused_with_exit_code_2(tmp_path: pathlib.Path) -> None:
    precious = tmp_path / "csi" / "csi.sock"
    precious.parent.mkdir(parents=True)
    precious.write_text("not a socket")
    driver = start_driver(tmp_path, wait=False)
    assert driver.proc.wait(30) == 2
    assert "refusing to remove" in driver.log()
    assert precious.read_text() == "not a socket"


def test_csi_endpoint_json_logs_and_controller_mode(tmp_path: pathlib.Path) -> None:
    socket_path = tmp_path / "csi" / "csi.sock"
    driver = start_driver(
        tmp_path,
        "--log-format",
        "json",
        mode="controller",
        endpoint_flag=False,
        env={"CSI_ENDPOINT": f"unix://{socket_path}"},
    )
    try:
        driver.controller.CreateVolume(
            csi_pb2.CreateVolumeRequest(name=unique_name(), volume_capabilities=[MOUNT])
        )
        with pytest.raises(grpc.RpcError) as info:
            driver.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest())
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        caps = driver.node.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest())
        assert caps.capabilities
    finally:
        assert driver.stop() == 0
    records = [json.loads(line) for line in driver.log().splitlines() if line.startswith("{")]
    # (the GetPluginInfo calls are start_driver's readiness polls)
    rpcs = [r for r in records if r["msg"] == "rpc" and r["method"] != "GetPluginInfo"]
    assert [r["method"] for r in rpcs] == ["CreateVolume", "NodeGetInfo", "NodeGetCapabilities"]
    create = rpcs[0]
    assert create["code"] == "OK"
    assert create["volume_id"].startswith("pvc-")
    assert isinstance(create["duration_ms"], float)
    assert rpcs[1]["code"] == "UNIMPLEMENTED"
    serving = next(r for r in records if r["msg"] == "serving")
    assert serving["mode"] == "controller"
    assert serving["endpoint"] == f"unix://{socket_path}"


def test_bad_configuration_fails_fast_with_exit_code_2(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rds_csi", "all", "--endpoint", f"unix://{tmp_path}/c.sock"],
        env={**os.environ, "RDS_CSI_BACKEND": "carrier-pigeon"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "RDS_CSI_BACKEND: 'carrier-pigeon' is not one of" in result.stderr  # its source


@pytest.fixture(scope="module")
def slow_driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DriverProcess]:
    """Every in-memory RDS call takes a second: calls stay in flight long enough to meet."""
    driver = start_driver(tmp_path_factory.mktemp("slow"), "--fake-rds-latency", "1.0")
    try:
        yield driver
    finally:
        driver.stop()


def _wait_in_flight(driver: DriverProcess, method: str) -> None:
    driver.wait_for(
        lambda: driver.sample("rds_csi_rpc_in_flight", method=method) >= 1,
        f"{method} in flight",
    )


def test_concurrent_create_of_one_volume_is_aborted(slow_driver: DriverProcess) -> None:
    """Checklist §1: another operation in flight for the same volume -> 10 ABORTED."""
    request = csi_pb2.CreateVolumeRequest(name=unique_name(), volume_capabilities=[MOUNT])
    first = slow_driver.controller.CreateVolume.future(request, timeout=30)
    _wait_in_flight(slow_driver, "CreateVolume")
    outcomes: list[grpc.StatusCode] = []
    try:
        slow_driver.controller.CreateVolume(request, timeout=30)
        outcomes.append(grpc.StatusCode.OK)
    except grpc.RpcError as exc:
        outcomes.append(exc.code())
    try:
        first.result()
        outcomes.append(grpc.StatusCode.OK)
    except grpc.RpcError as exc:
        outcomes.append(exc.code())
    # The first holds the volume for a second; whichever lost the race is ABORTED.
    assert sorted(c.name for c in outcomes) == ["ABORTED", "OK"]


def test_sigterm_lets_the_in_flight_call_finish(slow_driver: DriverProcess) -> None:
    request = csi_pb2.CreateVolumeRequest(name=unique_name(), volume_capabilities=[MOUNT])
    in_flight = slow_driver.controller.CreateVolume.future(request, timeout=30)
    _wait_in_flight(slow_driver, "CreateVolume")
    slow_driver.proc.send_signal(signal.SIGTERM)
    assert in_flight.result().volume.volume_id.startswith("pvc-")
    assert slow_driver.proc.wait(30) == 0
    assert not slow_driver.socket_path.exists()
    log = slow_driver.log()
    assert "signal received signal=SIGTERM" in log
    assert "stopped" in log
