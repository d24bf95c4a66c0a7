"""
The metrics endpoint as a scraper and a stranger see it: where it binds by default, and that
it answers ``/metrics`` and nothing else.
"""

from __future__ import annotations

import pathlib
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from rds_csi.adapters.metrics import MetricsServer, serve_metrics
from rds_csi.entrypoints.settings import METRICS_PORT, MetricsSettings, Mode
from tests.e2e.conftest import start_driver


ROOT = pathlib.Path(__file__).resolve().parents[2]


def _get(url: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)  # noqa: S310 - a loopback URL
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status), str(response.read().decode())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def endpoint() -> Iterator[MetricsServer]:
    registry = CollectorRegistry()
    Counter("rds_csi_probe_seen", "A series to find.", registry=registry).inc()
    server = serve_metrics(registry, "127.0.0.1", 0)
    try:
        yield server
    finally:
        server.close()


def test_metrics_answer_at_slash_metrics(endpoint: MetricsServer) -> None:
    status, body = _get(f"http://127.0.0.1:{endpoint.port}/metrics")
    assert status == 200
    assert "rds_csi_probe_seen_total 1.0" in body
    status, _ = _get(f"http://127.0.0.1:{endpoint.port}/metrics?name[]=rds_csi_probe_seen_total")
    assert status == 200


@pytest.mark.parametrize(
    "path", ["/", "/metricsX", "/metrics/", "/debug", "/favicon.ico", "/x/metrics"]
)
def test_every_other_path_is_not_found(endpoint: MetricsServer, path: str) -> None:
    status, body = _get(f"http://127.0.0.1:{endpoint.port}{path}")
    assert status == 404
    assert "rds_csi_" not in body


def test_only_reading_methods_are_allowed(endpoint: MetricsServer) -> None:
    status, _ = _get(f"http://127.0.0.1:{endpoint.port}/metrics", method="POST")
    assert status == 405


def test_the_default_address_is_loopback_for_all_and_every_interface_for_a_pod() -> None:
    default = MetricsSettings()
    assert default.resolved(Mode.ALL) == f"127.0.0.1:{METRICS_PORT}"
    assert default.resolved(Mode.CONTROLLER) == f":{METRICS_PORT}"
    assert default.resolved(Mode.NODE) == f":{METRICS_PORT}"
    assert MetricsSettings(address="10.0.0.1:1").resolved(Mode.ALL) == "10.0.0.1:1"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "template",
    [
        "deploy/kubernetes/controller.yaml",
        "deploy/kubernetes/node.yaml",
        "deploy/helm/rds-csi/templates/controller.yaml",
        "deploy/helm/rds-csi/templates/node.yaml",
    ],
)
def test_the_manifests_keep_the_pod_address_explicit(template: str) -> None:
    # A pod's endpoint must be reachable by Prometheus: every interface, said in so many words,
    # never left to a default that may change.
    text = (ROOT / template).read_text()
    assert re.search(r"- --metrics-address=:(9809|\{\{ \.Values\.metrics\.port \}\})\n", text)


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_rds_csi_all_serves_metrics_on_loopback_by_default(tmp_path: pathlib.Path) -> None:
    if not _port_is_free(METRICS_PORT):
        pytest.skip(f"port {METRICS_PORT} is taken on this machine")
    driver = start_driver(tmp_path, metrics_port=METRICS_PORT)
    try:
        assert f"metrics=127.0.0.1:{METRICS_PORT}" in driver.log()
        status, body = _get(f"http://127.0.0.1:{METRICS_PORT}/metrics")
        assert status == 200
        assert "rds_csi_rpc_requests_total" in body
        assert _get(f"http://127.0.0.1:{METRICS_PORT}/")[0] == 404
    finally:
        assert driver.stop() == 0
