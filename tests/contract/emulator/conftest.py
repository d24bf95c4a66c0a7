"""Fixtures for the emulator's own tests: a running emulator and SSH clients of it."""

from __future__ import annotations

import pathlib
import socket
from collections.abc import Callable, Iterator

import paramiko
import pytest

from rds_csi.domain import Size
from rds_csi.emulator import Emulator, EmulatorConfig, EmulatorUser, public_key_line
from rds_csi.emulator.console import Console
from rds_csi.emulator.dataplane import JsonExportsDataPlane
from rds_csi.emulator.state import PoolState


PASSWORD = "s3cret pass"
VID = "pvc-11111111-2222-3333-4444-555555555555"
IMAGE = f"storage-pool/vols/{VID}.img"


@pytest.fixture(scope="session")
def client_key() -> paramiko.PKey:
    return paramiko.ECDSAKey.generate()


@pytest.fixture
def emulator(tmp_path: pathlib.Path, client_key: paramiko.PKey) -> Iterator[Emulator]:
    config = EmulatorConfig(
        data_dir=tmp_path / "rds",
        pool_size=Size.from_quantity("100Gi"),
        users=(EmulatorUser("admin", PASSWORD, [public_key_line(client_key)]),),
    )
    with Emulator(config) as emu:
        yield emu


Connect = Callable[..., paramiko.SSHClient]


@pytest.fixture
def connect(emulator: Emulator) -> Iterator[Connect]:
    clients: list[paramiko.SSHClient] = []

    def make(
        user: str = "admin", password: str | None = PASSWORD, key: paramiko.PKey | None = None
    ) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        host, port = emulator.address
        client.get_host_keys().add(
            f"[{host}]:{port}", emulator.host_key.get_name(), emulator.host_key
        )
        clients.append(client)
        client.connect(
            host,
            port,
            username=user,
            password=None if key is not None else password,
            pkey=key,
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )
        transport = client.get_transport()
        assert transport is not None
        # without it every exec waits out Nagle's delay against the client's delayed ACK
        transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
        return client

    yield make
    for client in clients:
        client.close()


def run(client: paramiko.SSHClient, command: str) -> str:
    _stdin, stdout, _stderr = client.exec_command(command, timeout=10)
    text = stdout.read().decode()
    stdout.channel.recv_exit_status()
    return text


@pytest.fixture
def console(tmp_path: pathlib.Path) -> Console:
    data = tmp_path / "console"
    data.mkdir()
    state = PoolState(
        data,
        pool_name="storage-pool",
        pool_size=Size.from_quantity("100Gi"),
        data_plane=JsonExportsDataPlane(data / "nvme-exports.json"),
    )
    return Console(state)


def add_line(size: str = "10G", slot: str = VID, path: str = IMAGE) -> str:
    return (
        f'/disk add type=file file-path="{path}" file-size={size} slot="{slot}" '
        f"nvme-tcp-export=yes nvme-tcp-server-port=4420 "
        f'nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:{slot}"'
    )
