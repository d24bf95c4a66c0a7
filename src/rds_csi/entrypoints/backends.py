"""
The RDS backends the container can build: a real RDS over SSH, or the embedded emulator.

Both are generator resources (dependency-injector ``providers.Resource``): the container opens
them on first use and ``shutdown_resources`` closes the SSH connection and stops the emulator.
"""

from __future__ import annotations

import logging
import pathlib
import shutil
import tempfile
from collections.abc import Callable, Iterator

from rds_csi.adapters.routeros_ssh import RouterOsSshBackend
from rds_csi.adapters.routeros_ssh.settings import SshSettings, open_ssh_backend
from rds_csi.application.ports import Metrics
from rds_csi.domain import InvalidArgument, Size
from rds_csi.emulator import Emulator, EmulatorConfig
from rds_csi.emulator.dataplane import EXPORTS_FILE


__all__ = [
    "AUTO",
    "emulator_data_address",
    "loop_exports_path",
    "open_emulator",
    "open_rds",
    "resolve_backend",
    "resolve_initiator",
    "ssh_over_emulator",
]

log = logging.getLogger(__name__)

AUTO = "auto"


def resolve_backend(backend: str, mode: str) -> str:
    """
    ``auto`` picks what a new user expects: ``all`` (a single-node trial) runs on the
    embedded emulator; ``controller`` talks to a real RDS over SSH.
    """
    if backend and backend != AUTO:
        return backend
    return "emulator" if mode == "all" else "ssh"


def resolve_initiator(initiator: str, backend: str, mode: str) -> str:
    """
    ``auto``: a single-node trial on the emulator attaches its images as loop devices (this
    host has no NVMe/TCP target to talk to); on the in-memory RDS it uses the in-memory node
    stack; a real node uses nvme-cli.
    """
    if initiator and initiator != AUTO:
        return initiator
    if mode == "all":
        kind = resolve_backend(backend, mode)
        if kind == "emulator":
            return "loop"
        if kind == "fake":
            return "fake"
    return "nvme"


def loop_exports_path(explicit: str, backend: str, emulator: Callable[[], Emulator]) -> str:
    """The loop initiator's exports file: as given, or the embedded emulator's own."""
    if explicit or backend != "emulator":
        return explicit
    return str(emulator().config.data_dir / EXPORTS_FILE)


def open_rds(
    *,
    address: str,
    port: int,
    user: str,
    key_file: str,
    known_hosts_file: str,
    insecure_ignore_host_key: bool,
    base_path: str,
    metrics: Metrics,
) -> Iterator[RouterOsSshBackend]:
    """A real RDS over one persistent SSH connection."""
    if not key_file:
        raise InvalidArgument(
            "rds_ssh_key", "is required with --backend ssh (the private key file from a Secret)"
        )
    settings = SshSettings(
        address=address,
        port=port,
        user=user,
        key_file=pathlib.Path(key_file),
        known_hosts_file=pathlib.Path(known_hosts_file) if known_hosts_file else None,
        insecure_ignore_host_key=insecure_ignore_host_key,
        base_path=base_path,
    )
    if insecure_ignore_host_key:
        log.warning("RDS host key verification is OFF (--rds-insecure-ignore-host-key)")
    backend = open_ssh_backend(settings, metrics=metrics)
    try:
        yield backend
    finally:
        backend.close()


def emulator_data_address(explicit: str, nvme_address: str, rds_address: str) -> str:
    """Where the embedded emulator's kernel target listens: where nodes are told to connect."""
    return explicit or nvme_address or rds_address or "127.0.0.1"


def open_emulator(
    *, data_dir: str, pool_size: str, data_plane: str = "json", data_address: str = "127.0.0.1"
) -> Iterator[Emulator]:
    """
    The RouterOS emulator on loopback (a free port). Without ``data_dir`` its disks live in a
    temporary directory that goes away with the process. ``data_plane`` ``nvmet`` (or ``auto``
    on a kernel with nvmet) also serves its exports over NVMe/TCP on ``data_address``; they
    are withdrawn when the emulator stops.
    """
    temporary = not data_dir
    directory = pathlib.Path(data_dir or tempfile.mkdtemp(prefix="rds-csi-emulator-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        emulator = Emulator(
            EmulatorConfig(
                data_dir=directory,
                pool_size=Size.parse(pool_size, field="pool size"),
                data_plane=data_plane,
                data_address=data_address,
            )
        )
    except ValueError as exc:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
        raise InvalidArgument("emulator_data_plane", str(exc)) from None
    host, port = emulator.start()
    log.info("embedded RDS emulator on %s:%d, disks in %s", host, port, directory)
    try:
        yield emulator
    finally:
        emulator.close()
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)


def ssh_over_emulator(
    *, emulator: Emulator, base_path: str, metrics: Metrics
) -> Iterator[RouterOsSshBackend]:
    """The SSH adapter logged in to the embedded emulator: the real code path, no hardware."""
    client = emulator.provision_client(emulator.config.data_dir / "client")
    backend = open_ssh_backend(
        SshSettings.for_emulator(
            host=client.host,
            port=client.port,
            user=client.user,
            key_file=client.key_file,
            known_hosts_file=client.known_hosts_file,
            base_path=base_path,
        ),
        metrics=metrics,
    )
    try:
        yield backend
    finally:
        backend.close()
