"""
The Metrics port in Prometheus series, registered in a registry the caller owns.

Never the process-global ``REGISTRY``: each container (and each test) gets its own, so two
drivers in one process, or two tests, never share counters.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import attrs
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from rds_csi.application.ports import AttachmentMetrics, CapacityMetrics, Metrics
from rds_csi.domain import BackendUnavailable, CapacityReport


__all__ = ["METRICS_PATH", "MetricsServer", "PrometheusMetrics", "serve_metrics"]

# From a cached Probe (~0.2 ms) to an RDS command that waits out its retries (~30 s).
_RPC_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)
_MIGRATION_BUCKETS: Final = (1, 5, 10, 15, 30, 60, 120, 300, 600, 1800)
_CIRCUIT_STATES: Final = ("closed", "open", "half_open")
_BACKEND_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# a reflink is instant; a full copy of a large image takes minutes
_COPY_BUCKETS: Final = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class PrometheusMetrics(Metrics, AttachmentMetrics, CapacityMetrics):
    """
    Series (all prefixed ``rds_csi_``):

    * ``rpc_requests_total{method,code}``: every CSI call, by its final gRPC status code.
    * ``rpc_errors_total{method,code}``: the calls that did not end OK.
    * ``rpc_duration_seconds{method}``: latency histogram.
    * ``rpc_in_flight{method}``: calls being served now.
    * ``backend_command_duration_seconds{operation,outcome}``: RDS command latency.
    * ``nvme_connect_total{outcome}``, ``mount_recovery_total{outcome}``.
    * ``backend_circuit_state{state}``: 1 for the breaker's current state (``closed``,
      ``open``, ``half_open``), 0 for the others.
    * ``attachments{access_mode}``, ``migrations_total{outcome}``,
      ``migration_duration_seconds{outcome}``, ``attach_refused_total{reason}``,
      ``stale_attachments``: the controller's attachments (``docs/attachments.md``).
    * ``orphans{kind}``: the orphan reconciler's last pass (``docs/orphans.md``).
    * ``image_copy_duration_seconds{kind,outcome}``, ``image_copies_in_progress{kind}``:
      snapshots, restores and clones (full image copies on the RDS).
    * ``pool_size_bytes{rds}``, ``pool_free_bytes{rds}``, ``pool_used_bytes{rds}``,
      ``volumes{rds}``, ``snapshots{rds}``, ``backend_up{rds}``: the controller's last
      capacity refresh (``application/capacity.py``).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._requests = Counter(
            "rds_csi_rpc_requests",
            "CSI calls served, by method and final gRPC status code.",
            ["method", "code"],
            registry=registry,
        )
        self._errors = Counter(
            "rds_csi_rpc_errors",
            "CSI calls that did not end OK, by method and gRPC status code.",
            ["method", "code"],
            registry=registry,
        )
        self._latency = Histogram(
            "rds_csi_rpc_duration_seconds",
            "Time to serve a CSI call.",
            ["method"],
            buckets=_RPC_BUCKETS,
            registry=registry,
        )
        self._in_flight = Gauge(
            "rds_csi_rpc_in_flight",
            "CSI calls being served now.",
            ["method"],
            registry=registry,
        )
        self._backend = Histogram(
            "rds_csi_backend_command_duration_seconds",
            "Time an RDS command took, by operation and outcome.",
            ["operation", "outcome"],
            buckets=_BACKEND_BUCKETS,
            registry=registry,
        )
        self._connects = Counter(
            "rds_csi_nvme_connect",
            "NVMe/TCP connect attempts on this node, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self._recoveries = Counter(
            "rds_csi_mount_recovery",
            "Stale mount recoveries on this node, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self._circuit = Gauge(
            "rds_csi_backend_circuit_state",
            "The RDS circuit breaker: 1 for its current state, 0 for the others.",
            ["state"],
            registry=registry,
        )

        self._attachments = Gauge(
            "rds_csi_attachments",
            "Volumes attached to at least one node, by the access mode they were published with.",
            ["access_mode"],
            registry=registry,
        )
        self._migrations = Counter(
            "rds_csi_migrations",
            "Live migrations (two nodes attached) that ended, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self._migration_seconds = Histogram(
            "rds_csi_migration_duration_seconds",
            "How long a live migration kept two nodes attached, by outcome.",
            ["outcome"],
            buckets=_MIGRATION_BUCKETS,
            registry=registry,
        )
        self._refused = Counter(
            "rds_csi_attach_refused",
            "ControllerPublishVolume calls fenced off, by reason.",
            ["reason"],
            registry=registry,
        )
        self._stale = Gauge(
            "rds_csi_stale_attachments",
            "Attachments the reconciler found stale at its last pass.",
            registry=registry,
        )
        self._copies = Histogram(
            "rds_csi_image_copy_duration_seconds",
            "Time an image copy on the RDS took (snapshot, restore, clone), by outcome.",
            ["kind", "outcome"],
            buckets=_COPY_BUCKETS,
            registry=registry,
        )
        self._copying = Gauge(
            "rds_csi_image_copies_in_progress",
            "Image copies on the RDS running now (snapshot, restore, clone).",
            ["kind"],
            registry=registry,
        )
        self._pool_size = Gauge(
            "rds_csi_pool_size_bytes",
            "The RDS storage pool's size, at the last capacity refresh.",
            ["rds"],
            registry=registry,
        )
        self._pool_free = Gauge(
            "rds_csi_pool_free_bytes",
            "Free space in the RDS storage pool, at the last capacity refresh.",
            ["rds"],
            registry=registry,
        )
        self._pool_used = Gauge(
            "rds_csi_pool_used_bytes",
            "Used space in the RDS storage pool (size - free), at the last capacity refresh.",
            ["rds"],
            registry=registry,
        )
        self._volumes = Gauge(
            "rds_csi_volumes",
            "Volumes of this driver on the RDS, at the last capacity refresh.",
            ["rds"],
            registry=registry,
        )
        self._snapshots = Gauge(
            "rds_csi_snapshots",
            "Snapshots of this driver on the RDS, at the last capacity refresh.",
            ["rds"],
            registry=registry,
        )
        self._up = Gauge(
            "rds_csi_backend_up",
            "1 if the last capacity refresh reached the RDS, 0 if it did not.",
            ["rds"],
            registry=registry,
        )
        self._orphans = Gauge(
            "rds_csi_orphans",
            "Orphan disks (no PersistentVolume) and sessions found at the last pass, by kind.",
            ["kind"],
            registry=registry,
        )

    def orphans(self, kind: str, count: int) -> None:
        self._orphans.labels(kind).set(count)

    def attachments(self, by_mode: Mapping[str, int]) -> None:
        for mode, count in by_mode.items():
            self._attachments.labels(mode).set(count)

    def migration(self, outcome: str, seconds: float) -> None:
        self._migrations.labels(outcome).inc()
        self._migration_seconds.labels(outcome).observe(seconds)

    def attach_refused(self, reason: str) -> None:
        self._refused.labels(reason).inc()

    def stale_attachments(self, count: int) -> None:
        self._stale.set(count)

    def copy_started(self, kind: str) -> None:
        self._copying.labels(kind).inc()

    def copy_finished(self, kind: str, seconds: float, outcome: str) -> None:
        self._copying.labels(kind).dec()
        self._copies.labels(kind, outcome).observe(seconds)

    def pool_capacity(self, rds: str, report: CapacityReport) -> None:
        self._pool_size.labels(rds).set(report.total.bytes)
        self._pool_free.labels(rds).set(report.free.bytes)
        self._pool_used.labels(rds).set(report.used.bytes)

    def volume_count(self, rds: str, count: int) -> None:
        self._volumes.labels(rds).set(count)

    def snapshot_count(self, rds: str, count: int) -> None:
        self._snapshots.labels(rds).set(count)

    def backend_up(self, rds: str, *, up: bool) -> None:
        self._up.labels(rds).set(1 if up else 0)

    def circuit_state(self, state: str) -> None:
        for known in _CIRCUIT_STATES:
            self._circuit.labels(known).set(1 if known == state else 0)

    def rpc_started(self, method: str) -> None:
        self._in_flight.labels(method).inc()

    def rpc_finished(self, method: str, code: str, seconds: float) -> None:
        self._in_flight.labels(method).dec()
        self._requests.labels(method, code).inc()
        if code != "OK":
            self._errors.labels(method, code).inc()
        self._latency.labels(method).observe(seconds)

    def backend_command(self, operation: str, seconds: float, outcome: str) -> None:
        self._backend.labels(operation, outcome).observe(seconds)

    def nvme_connect(self, outcome: str) -> None:
        self._connects.labels(outcome).inc()

    def mount_recovery(self, outcome: str) -> None:
        self._recoveries.labels(outcome).inc()


METRICS_PATH: Final = "/metrics"

_StartResponse = Callable[..., Any]
_App = Callable[[dict[str, Any], _StartResponse], Iterable[bytes]]


def _only_metrics(app: _App) -> _App:
    """Answer ``/metrics`` and nothing else: any other path is 404, any other method 405."""

    def guarded(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != METRICS_PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found: metrics are served at /metrics only\n"]
        if environ.get("REQUEST_METHOD") not in {"GET", "HEAD"}:
            start_response(
                "405 Method Not Allowed",
                [("Content-Type", "text/plain; charset=utf-8"), ("Allow", "GET, HEAD")],
            )
            return [b"method not allowed\n"]
        return app(environ, start_response)

    return guarded


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    # A slow scraper must not hold up the next one, nor keep the process from exiting.
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # every scrape would log a line; the driver's own logs stay about the driver


@attrs.define
class MetricsServer:
    """The running ``/metrics`` HTTP endpoint; ``close()`` stops it."""

    host: str
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """
    Serve ``registry`` over HTTP at ``host:port``, path ``/metrics`` only (port 0 picks a free
    one; see ``.port``). An empty host means every interface, as the Go driver's ``:9809``.

    Raises:
        BackendUnavailable: the address cannot be bound.
    """
    bind = host or "0.0.0.0"  # noqa: S104 - ":9809" means every interface, as the Go driver
    try:
        family = socket.getaddrinfo(bind, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
            0
        ][0]

        class Server(_Server):
            address_family = family

        server = make_server(
            bind,
            port,
            _only_metrics(make_wsgi_app(registry)),
            server_class=Server,
            handler_class=_QuietHandler,
        )
    except OSError as exc:
        raise BackendUnavailable(f"metrics address {host}:{port} cannot be bound: {exc}") from exc
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return MetricsServer(host, int(server.server_address[1]), server, thread)
