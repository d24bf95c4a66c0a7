"""
Running the driver: endpoint, socket hygiene, metrics endpoint, graceful shutdown.

``serve`` builds everything from the container, binds, and blocks until SIGTERM or SIGINT
(or ``stop`` is set); then it stops taking calls, gives in-flight ones ``shutdown_grace``
seconds to finish, and removes its socket.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import pathlib
import signal
import socket
import stat
import threading
from collections.abc import Mapping
from types import FrameType
from typing import Final

import attrs
import grpc

from rds_csi import __version__
from rds_csi.adapters.metrics import MetricsServer, serve_metrics
from rds_csi.domain import DomainError
from rds_csi.entrypoints.container import Container


__all__ = [
    "Endpoint",
    "EndpointError",
    "Mode",
    "parse_endpoint",
    "parse_host_port",
    "prepare_socket",
    "serve",
]

_log = logging.getLogger("rds_csi.serve")

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_CONFIG: Final = 2


class Mode(enum.Enum):
    CONTROLLER = "controller"
    NODE = "node"
    ALL = "all"


class EndpointError(Exception):
    """The endpoint is malformed or its socket path cannot be used."""


@attrs.frozen
class Endpoint:
    """
    Where to serve: a unix socket path, or (for debugging) a TCP host and port.

    Attributes:
        grpc_target: What grpc's ``add_insecure_port`` and ``insecure_channel`` take.
    """

    unix_path: pathlib.Path | None = None
    host: str = ""
    port: int = 0

    @property
    def grpc_target(self) -> str:
        if self.unix_path is not None:
            return f"unix://{self.unix_path}"
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.grpc_target if self.unix_path is not None else f"tcp://{self.grpc_target}"


def parse_host_port(text: str, *, field: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port``."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:  # noqa: PLR2004
        raise EndpointError(f"{field}: {text!r} is not host:port")
    return host.removeprefix("[").removesuffix("]"), int(port_text)


def parse_endpoint(text: str) -> Endpoint:
    """``unix:///abs/path.sock``, ``unix:/abs/path.sock``, ``/abs/path.sock``, ``tcp://h:p``."""
    if text.startswith("tcp://"):
        host, port = parse_host_port(text.removeprefix("tcp://"), field="endpoint")
        return Endpoint(host=host or "127.0.0.1", port=port)
    path = text.removeprefix("unix://") if text.startswith("unix://") else text
    path = path.removeprefix("unix:") if path.startswith("unix:") else path
    if not path.startswith("/"):
        raise EndpointError(
            f"endpoint: {text!r} is neither unix:///absolute/path.sock nor tcp://host:port"
        )
    return Endpoint(unix_path=pathlib.Path(path))


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
    container.identity_service()
    container.topology()
    if mode is not Mode.NODE:
        container.volume_defaults()
        container.controller_use_cases()
    if mode is not Mode.CONTROLLER:
        info = container.node_info()
        if not info.node_id or len(info.node_id.encode()) > 256:  # noqa: PLR2004
            raise EndpointError(f"node_id: {info.node_id!r} must be 1-256 bytes")
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


def _start(container: Container, settings: Mapping[str, object], endpoint: Endpoint) -> _Running:
    metrics = _start_metrics(container, str(settings.get("metrics_address") or ""))
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
    return _Running(server, endpoint, metrics)


def _stop(running: _Running, container: Container, grace: float) -> None:
    _log.info("shutting down", extra={"fields": {"grace_seconds": grace}})
    running.server.stop(grace).wait()
    container.health_monitor().stop()
    if running.endpoint.unix_path is not None:
        with contextlib.suppress(FileNotFoundError):
            running.endpoint.unix_path.unlink()
    if running.metrics is not None:
        running.metrics.close()
    container.shutdown_resources()
    _log.info("stopped")


def serve(
    settings: Mapping[str, object],
    mode: Mode,
    *,
    container: Container | None = None,
    stop: threading.Event | None = None,
) -> int:
    """
    Serve until a signal (or ``stop``); returns the process exit code.

    ``container`` may come pre-overridden (tests); its config is set from ``settings``.
    """
    container = container if container is not None else Container()
    container.config.from_dict({**settings, "mode": mode.value})
    try:
        endpoint = parse_endpoint(str(settings["endpoint"]))
        _check_configuration(container, mode)
        if endpoint.unix_path is not None:
            prepare_socket(endpoint.unix_path)
    except (EndpointError, DomainError) as exc:
        _log.error("cannot start: %s", exc)
        return EXIT_CONFIG
    for kind in ("backend", "initiator"):
        if settings.get(kind) == "fake":
            _log.warning("%s is the in-memory fake: nothing reaches a real RDS or node", kind)
    try:
        running = _start(container, settings, endpoint)
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
    _stop(running, container, float(settings.get("shutdown_grace") or 0.0))  # type: ignore[arg-type]
    return EXIT_OK


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers; an embedding caller uses ``stop``

    def handler(signum: int, _frame: FrameType | None) -> None:
        _log.info("signal received", extra={"fields": {"signal": signal.Signals(signum).name}})
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
