"""Where the driver serves CSI and metrics: endpoint and host:port text, parsed once."""

from __future__ import annotations

import pathlib

import attrs


__all__ = ["Endpoint", "EndpointError", "parse_endpoint", "parse_host_port"]


class EndpointError(ValueError):
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
