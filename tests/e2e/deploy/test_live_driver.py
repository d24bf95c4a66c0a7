"""
The running driver agrees with its deployment: the capabilities it advertises are the ones the
manifests were built for (tests/deploy_support.py), its name is the CSIDriver's, and the metrics
it exports are the ones docs/metrics.md lists.

Starts ``rds-csi all`` with the in-memory backend and the fake initiator on a unix socket and a
loopback metrics port; skips, saying why, while the CLI or the metrics adapter does not exist.
"""

from __future__ import annotations

import contextlib
import importlib.util
import pathlib
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import attrs
import grpc
import pytest

from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc
from tests.deploy_support import (
    CONTROLLER_CAPABILITIES,
    NO_CLI,
    NODE_CAPABILITIES,
    PLUGIN_CAPABILITIES,
    VOLUME_EXPANSION,
    cli_importable,
    doc_table,
    driver_env,
    manifest_objects,
    one,
)


STARTUP_BOUND_S = 30.0
NODE_ID = "deploy-test-node"


@attrs.frozen
class LiveDriver:
    channel: grpc.Channel
    metrics_url: str
    process: subprocess.Popen[str]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[str], log: pathlib.Path) -> str:
    """Stop the driver (SIGTERM, then SIGKILL) and return what it logged."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return log.read_text(errors="replace")


@pytest.fixture(scope="module")
def live_driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDriver]:
    if not cli_importable():
        pytest.skip(NO_CLI)
    workdir = pathlib.Path(tmp_path_factory.mktemp("csi"))
    sock, log = workdir / "csi.sock", workdir / "driver.log"
    port = _free_port()
    # The log goes to a file, not a pipe: a pipe nobody reads would stall a chatty driver.
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "rds_csi", "all", "--backend=fake", "--initiator=fake"),
                *(f"--endpoint=unix://{sock}", f"--node-id={NODE_ID}"),
                f"--metrics-address=127.0.0.1:{port}",
            ],
            env=driver_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
    channel = grpc.insecure_channel(f"unix://{sock}")
    try:
        identity = csi_pb2_grpc.IdentityStub(channel)
        deadline = time.monotonic() + STARTUP_BOUND_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"rds-csi all exited with {process.returncode}:\n{_stop(process, log)}")
            try:
                identity.Probe(csi_pb2.ProbeRequest(), timeout=2)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    pytest.fail(f"rds-csi all did not answer Probe:\n{_stop(process, log)}")
                time.sleep(0.2)
        yield LiveDriver(channel, f"http://127.0.0.1:{port}/metrics", process)
    finally:
        channel.close()
        _stop(process, log)


def test_the_driver_advertises_what_the_deployment_was_built_for(live_driver: LiveDriver) -> None:
    identity = csi_pb2_grpc.IdentityStub(live_driver.channel)
    plugin: set[str] = set()
    expansion: set[str] = set()
    for cap in identity.GetPluginCapabilities(
        csi_pb2.GetPluginCapabilitiesRequest(), timeout=10
    ).capabilities:
        if cap.WhichOneof("type") == "service":
            plugin.add(csi_pb2.PluginCapability.Service.Type.Name(cap.service.type))
        elif cap.WhichOneof("type") == "volume_expansion":
            expansion.add(
                csi_pb2.PluginCapability.VolumeExpansion.Type.Name(cap.volume_expansion.type)
            )
    controller = {
        csi_pb2.ControllerServiceCapability.RPC.Type.Name(cap.rpc.type)
        for cap in csi_pb2_grpc.ControllerStub(live_driver.channel)
        .ControllerGetCapabilities(csi_pb2.ControllerGetCapabilitiesRequest(), timeout=10)
        .capabilities
    }
    node = {
        csi_pb2.NodeServiceCapability.RPC.Type.Name(cap.rpc.type)
        for cap in csi_pb2_grpc.NodeStub(live_driver.channel)
        .NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest(), timeout=10)
        .capabilities
    }
    # A difference here means deploy/ (sidecars, CSIDriver) must follow: update the sets in
    # tests/deploy_support.py and let tests/deploy/test_capabilities.py say what to change.
    assert plugin == PLUGIN_CAPABILITIES
    assert expansion == {VOLUME_EXPANSION}
    assert controller == CONTROLLER_CAPABILITIES
    assert node == NODE_CAPABILITIES


def test_the_driver_name_is_the_csidriver_objects(live_driver: LiveDriver) -> None:
    info = csi_pb2_grpc.IdentityStub(live_driver.channel).GetPluginInfo(
        csi_pb2.GetPluginInfoRequest(), timeout=10
    )
    assert info.name == one(manifest_objects(), "CSIDriver")["metadata"]["name"]
    node = csi_pb2_grpc.NodeStub(live_driver.channel).NodeGetInfo(
        csi_pb2.NodeGetInfoRequest(), timeout=10
    )
    assert node.node_id == NODE_ID


def exported_metrics(text: str) -> dict[str, str]:
    """``# TYPE`` lines of the rds_csi_ series -> type; counters' ``_created`` twins dropped."""
    types = dict(re.findall(r"^# TYPE (rds_csi_\w+) (\w+)$", text, re.MULTILINE))
    return {
        name: kind
        for name, kind in types.items()
        if not (name.endswith("_created") and kind == "gauge")
    }


def test_the_exported_metrics_are_the_documented_ones(request: pytest.FixtureRequest) -> None:
    if importlib.util.find_spec("rds_csi.adapters.metrics") is None:
        pytest.skip(
            "the metrics adapter (rds_csi.adapters.metrics) is not importable yet: nothing "
            "exports the series docs/metrics.md lists"
        )
    live_driver: LiveDriver = request.getfixturevalue("live_driver")
    url = live_driver.metrics_url  # http://127.0.0.1:<port>/metrics, built above
    with contextlib.closing(urllib.request.urlopen(url, timeout=10)) as response:  # noqa: S310
        text = response.read().decode()
    documented = {row["metric"]: row["type"] for row in doc_table("metrics.md", "metrics")}
    assert exported_metrics(text) == documented


def test_the_metrics_comparison_reads_prometheus_text() -> None:
    # Guards the guard without a driver: counters keep _total, _created twins are dropped.
    text = (
        "# HELP rds_csi_x_total x\n# TYPE rds_csi_x_total counter\nrds_csi_x_total 1.0\n"
        "# HELP rds_csi_x_created x\n# TYPE rds_csi_x_created gauge\nrds_csi_x_created 1.7e9\n"
        "# HELP rds_csi_y_seconds y\n# TYPE rds_csi_y_seconds histogram\n"
        "# HELP python_gc_objects_collected_total z\n"
        "# TYPE python_gc_objects_collected_total counter\n"
    )
    assert exported_metrics(text) == {
        "rds_csi_x_total": "counter",
        "rds_csi_y_seconds": "histogram",
    }
