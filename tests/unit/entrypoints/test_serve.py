"""Endpoint parsing and socket hygiene (the process-level behaviour is in tests/e2e)."""

from __future__ import annotations

import pathlib
import socket

import pytest

from rds_csi.entrypoints.serve import EndpointError, parse_endpoint, prepare_socket


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("unix:///csi/csi.sock", "unix:///csi/csi.sock"),
        ("unix:/csi/csi.sock", "unix:///csi/csi.sock"),
        ("/var/lib/kubelet/plugins/rds.csi.srvlab.io/csi.sock", None),
        ("tcp://127.0.0.1:10000", "127.0.0.1:10000"),
        ("tcp://:10000", "127.0.0.1:10000"),
    ],
)
def test_endpoints(text: str, target: str | None) -> None:
    endpoint = parse_endpoint(text)
    assert endpoint.grpc_target == (target or f"unix://{text}")


@pytest.mark.parametrize("text", ["csi.sock", "unix://relative.sock", "tcp://host", "http://x:1"])
def test_bad_endpoints(text: str) -> None:
    with pytest.raises(EndpointError):
        parse_endpoint(text)


def test_stale_socket_is_removed_and_directory_made(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "csi.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # the file stays after close: a crashed driver's socket
    prepare_socket(path)
    assert not path.exists()
    deeper = tmp_path / "a" / "b" / "csi.sock"
    prepare_socket(deeper)
    assert deeper.parent.is_dir()


def test_a_path_that_is_not_a_socket_is_never_removed(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "csi.sock"
    path.write_text("precious")
    with pytest.raises(EndpointError, match="not a socket"):
        prepare_socket(path)
    assert path.read_text() == "precious"


def test_a_socket_someone_serves_on_is_not_stolen(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "csi.sock"
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen()
        with pytest.raises(EndpointError, match="in use"):
            prepare_socket(path)
    assert path.exists()
