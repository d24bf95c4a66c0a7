"""
Running the driver: endpoint, socket hygiene, metrics endpoint, graceful shutdown.

``serve`` builds everything from the container, binds, and blocks until SIGTERM or SIGINT
(or ``stop`` is set); then it stops taking calls, gives in-flight ones ``shutdown_grace``
seconds to finish, and removes its socket.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import signal
import socket
import stat
import threading
from types import FrameType
from typing import Final

import attrs
import grpc

from rds_csi import __version__
from rds_csi.adapters.metrics import MetricsServer, serve_metrics
from rds_csi.domain import DomainError
from rds_csi.entrypoints.container import Container
from rds_csi.entrypoints.endpoint import Endpoint, EndpointError, parse_endpoint, parse_host_port
from rds_csi.entrypoints.settings import Mode, Settings


__all__ = [
    "Endpoint",
    "EndpointError",
    "Mode",
    "parse_endpoint",
    "parse_host_port",
    "prepare_socket",
    "serve",
]  # Endpoint and Mode are re-exported: callers found them here first

_log = logging.getLogger("rds_csi.serve")

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_CONFIG: Final = 2


def _socket_is_live(path: pathlib.Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def prepare_socket(path: pathlib.Path) -> None:
    """
    Make ``path`` ready to bind: create its directory, remove a stale socket left by a dead
    process. Refuses anything that is not a socket, and a socket someone still serves on.
    """
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None:
        if not stat.S_ISSOCK(mode):
            raise EndpointError(
                f"endpoint: refusing to remove {path}: it exists and is not a socket"
            )
        if _socket_is_live(path):
            raise EndpointError(f"endpoint: {path} is in use by a running server")
        path.unlink()
        _log.info("removed stale socket", extra={"fields": {"path": str(path)}})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EndpointError(f"endpoint: cannot create {path.parent}: {exc.strerror}") from None


def _check_configuration(container: Container, mode: Mode) -> None:
    """Build what the mode needs now, so a bad setting fails at start, not at the first call."""
    container.check_dependencies()
    container.identity_service()
    if mode is not Mode.NODE:
        container.volume_defaults()
        container.controller_use_cases()
        container.attachment_sync()
    if mode is not Mode.CONTROLLER:
        container.node_use_cases()


def _start_metrics(container: Container, address: str) -> MetricsServer | None:
    if not address:
        return None
    host, port = parse_host_port(address, field="metrics_address")
    return serve_metrics(container.metrics_registry(), host, port)


@attrs.frozen
class _Running:
    server: grpc.Server
    endpoint: Endpoint
    metrics: MetricsServer | None


def _start(container: Container, settings: Settings, endpoint: Endpoint, mode: Mode) -> _Running:
    metrics = _start_metrics(container, settings.metrics.resolved(mode))
    server = container.grpc_server()
    try:
        bound = server.add_insecure_port(endpoint.grpc_target)
        server.start()
    except RuntimeError:
        if metrics is not None:
            metrics.close()
        raise
    if endpoint.unix_path is None:
        endpoint = attrs.evolve(endpoint, port=bound)
    container.health_monitor().start()
    refresher = container.capacity_refresher()
    if refresher is not None:
        refresher.start()
    return _Running(server, endpoint, metrics)


def _start_attachment_sync(container: Container, mode: Mode) -> None:
    """Rebuild attachments from the cluster before serving (publishes wait for it)."""
    if mode is not Mode.NODE:
        container.attachment_sync().start()
        if container.settings().controller.stale_attachment_interval > 0:
            container.stale_attachments().start()
        if container.orphans.enabled():
            container.orphans.reconciler().start()


def _stop(running: _Running, container: Container, grace: float) -> None:
    _log.info("shutting down", extra={"fields": {"grace_seconds": grace}})
    running.server.stop(grace).wait()
    container.health_monitor().stop()
    refresher = container.capacity_refresher()
    if refresher is not None:
        refresher.stop()
    if container.mode() is not Mode.NODE:
        container.attachment_sync().stop()
        container.stale_attachments().stop()
        container.orphans.reconciler().stop()
    if running.endpoint.unix_path is not None:
        with contextlib.suppress(FileNotFoundError):
            running.endpoint.unix_path.unlink()
    if running.metrics is not None:
        running.metrics.close()
    container.shutdown_resources()
    _log.info("stopped")


def serve(
    settings: Settings,
    mode: Mode,
    *,
    container: Container | None = None,
    stop: threading.Event | None = None,
) -> int:
    """
    Serve until a signal (or ``stop``); returns the process exit code.

    ``container`` may come with providers overridden (tests); it is given ``settings`` and
    ``mode``.
    """
    container = container if container is not None else Container()
    container.settings.override(settings)
    container.mode.override(mode)
    endpoint = settings.endpoint
    try:
        _check_configuration(container, mode)
        if endpoint.unix_path is not None:
            prepare_socket(endpoint.unix_path)
    except (EndpointError, DomainError) as exc:
        _log.error("cannot start: %s", exc)
        return EXIT_CONFIG
    kinds = {"backend": container.backend_kind(), "initiator": container.initiator_kind()}
    for role, kind in kinds.items():
        if kind == "fake":
            _log.warning("%s is the in-memory fake: nothing reaches a real RDS or node", role)
    try:
        _start_attachment_sync(container, mode)
        running = _start(container, settings, endpoint, mode)
    except (RuntimeError, DomainError, EndpointError) as exc:
        _log.error("cannot start: %s", exc)
        return EXIT_FAILURE
    stop = stop if stop is not None else threading.Event()
    _install_signal_handlers(stop)
    metrics = running.metrics
    _log.info(
        "serving",
        extra={
            "fields": {
                "mode": mode.value,
                "endpoint": str(running.endpoint),
                "metrics": f"{metrics.host}:{metrics.port}" if metrics else "off",
                "version": __version__,
            }
        },
    )
    while not stop.wait(1.0):
        pass
    _stop(running, container, settings.shutdown_grace)
    return EXIT_OK


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers; an embedding caller uses ``stop``

    def handler(signum: int, _frame: FrameType | None) -> None:
        _log.info("signal received", extra={"fields": {"signal": signal.Signals(signum).name}})
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
