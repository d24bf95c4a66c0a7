"""
The RDS side's wiring: the SSH backend's sub-container and the embedded emulator.

``RdsSsh`` builds one RouterOS SSH backend from an ``SshSettings``; the main container
(``container.py``) uses it twice, for ``--backend ssh`` (settings from the ``--rds-*``
options) and ``--backend emulator`` (settings the emulator provisions).

Importing this module imports neither the SSH adapter (paramiko, fabric, invoke) nor the
emulator: the providers call the small functions below, which import on first use, so a node
(which builds neither) does not pay for them in start time and memory (issue 15).
"""

from __future__ import annotations

import logging
import pathlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rds_csi.application.ports import Metrics
from rds_csi.domain import InvalidArgument
from rds_csi.entrypoints.di import containers, providers
from rds_csi.entrypoints.settings import Settings


if TYPE_CHECKING:
    from rds_csi.adapters.routeros_ssh import RetryPolicy, RouterOsSshBackend, SshSettings
    from rds_csi.adapters.routeros_ssh.connection import SshConnection
    from rds_csi.adapters.routeros_ssh.snapshots import RouterOsSnapshots
    from rds_csi.emulator import Emulator

# Lazy imports below: each function imports what it builds (see the module's docstring).
# ruff: noqa: PLC0415


__all__ = [
    "RdsSsh",
    "closing",
    "emulator_data_address",
    "emulator_ssh_settings",
    "open_emulator",
    "open_ssh_backend",
    "rds_ssh_settings",
]

log = logging.getLogger(__name__)


def rds_ssh_settings(settings: Settings) -> SshSettings:
    """``--backend ssh``: the ``--rds-*`` options."""
    from rds_csi.adapters.routeros_ssh import SshSettings

    rds = settings.rds
    if not rds.ssh_key:
        raise InvalidArgument(
            "rds_ssh_key", "is required with --backend ssh (the private key file from a Secret)"
        )
    if rds.insecure_ignore_host_key:
        log.warning("RDS host key verification is OFF (--rds-insecure-ignore-host-key)")
    else:
        _check_known_hosts(rds.known_hosts)
    return SshSettings(
        address=rds.address,
        port=rds.port,
        user=rds.user,
        key_file=pathlib.Path(rds.ssh_key),
        known_hosts_file=pathlib.Path(rds.known_hosts) if rds.known_hosts else None,
        insecure_ignore_host_key=rds.insecure_ignore_host_key,
        base_path=settings.controller.volume_path,
        call_timeout=rds.call_timeout,
        max_channels=rds.max_channels,
        known_bases=other_volume_paths(settings),
    )


def other_volume_paths(settings: Settings) -> tuple[str, ...]:
    """``--other-volume-paths`` as a tuple of base paths (checked by the converter)."""
    text = settings.controller.other_volume_paths
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _check_known_hosts(given: str) -> None:
    """A missing known_hosts file, named as the operator gave it and with the option to set."""
    path = pathlib.Path(given) if given else pathlib.Path.home() / ".ssh" / "known_hosts"
    try:
        path.open("rb").close()
    except OSError as exc:
        shown = given or "~/.ssh/known_hosts (the default: --rds-known-hosts is not set)"
        raise InvalidArgument(
            "--rds-known-hosts",
            f"{shown}: {exc.strerror or exc}; give the known_hosts file holding the RDS host "
            "key (docs/routeros.md), or --rds-insecure-ignore-host-key for a first trial",
        ) from None


def emulator_ssh_settings(
    emulator: Emulator, base_path: str, call_timeout: float = 12.0
) -> SshSettings:
    """``--backend emulator``: the SSH adapter logged in to it, the real code path."""
    from rds_csi.adapters.routeros_ssh import SshSettings

    client = emulator.provision_client(emulator.config.data_dir / "client")
    return SshSettings.for_emulator(
        host=client.host,
        port=client.port,
        user=client.user,
        key_file=client.key_file,
        known_hosts_file=client.known_hosts_file,
        base_path=base_path,
        call_timeout=call_timeout,
    )


def emulator_data_address(settings: Settings) -> str:
    """Where the embedded emulator's kernel target listens: where nodes are told to connect."""
    return (
        settings.emulator.data_address
        or settings.controller.nvme_address
        or settings.rds.address
        or "127.0.0.1"
    )


def open_emulator(
    settings: Settings, data_address: str, *, rest: bool = False
) -> Iterator[Emulator]:
    """
    The RouterOS emulator on loopback (a free port; with ``rest`` its REST API on another).
    Without a data directory its disks live in a temporary one that goes away with the
    process. Data plane ``nvmet`` (or ``auto`` on a kernel with nvmet) also serves its
    exports over NVMe/TCP on ``data_address``; they are withdrawn when the emulator stops.
    """
    from rds_csi.emulator import Emulator, EmulatorConfig

    options = settings.emulator
    temporary = not options.data_dir
    directory = pathlib.Path(options.data_dir or tempfile.mkdtemp(prefix="rds-csi-emulator-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        emulator = Emulator(
            EmulatorConfig(
                data_dir=directory,
                pool_size=options.pool_size,
                data_plane=options.data_plane,
                data_address=data_address,
                rest_listen=("127.0.0.1", 0) if rest else None,
                copy_throughput=options.copy_throughput,
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


def closing(backend: RouterOsSshBackend) -> Iterator[RouterOsSshBackend]:
    """A built SSH backend as a resource: ``shutdown_resources`` closes its connection."""
    try:
        yield backend
    finally:
        backend.close()


def _connection(settings: SshSettings) -> SshConnection:
    from rds_csi.adapters.routeros_ssh.connection import SshConnection, SshEndpoint
    from rds_csi.adapters.routeros_ssh.keys import load_private_key
    from rds_csi.adapters.routeros_ssh.settings import host_key_policy, login_user

    return SshConnection(
        SshEndpoint(settings.address, settings.port, login_user(settings)),
        load_private_key(settings.key_file, settings.key_passphrase),
        host_key_policy(settings),
        connect_timeout=settings.connect_timeout,
        command_timeout=settings.command_timeout,
        max_channels=settings.max_channels,
        persistent=settings.persistent,
    )


def _retry(settings: SshSettings, sleep: Callable[[float], None]) -> RetryPolicy:
    from rds_csi.adapters.routeros_ssh import RetryPolicy

    return RetryPolicy(
        attempts=settings.retry_attempts,
        first_wait=settings.retry_first_wait,
        max_wait=settings.retry_max_wait,
        sleep=sleep,
    )


def _backend(
    connection: SshConnection, settings: SshSettings, metrics: Metrics | None, retry: RetryPolicy
) -> RouterOsSshBackend:
    from rds_csi.adapters.routeros_ssh import RouterOsSshBackend

    return RouterOsSshBackend(
        connection,
        base_path=settings.base_path,
        pool=settings.effective_pool,
        metrics=metrics,
        call_timeout=settings.call_timeout,
        known_bases=settings.known_bases,
        retry=retry,
    )


def _snapshots(backend: RouterOsSshBackend, method: str) -> RouterOsSnapshots:
    from rds_csi.adapters.routeros_ssh.snapshots import RouterOsSnapshots

    return RouterOsSnapshots(backend, method=method)


class RdsSsh(containers.DeclarativeContainer):
    """
    The RouterOS SSH backend from one ``SshSettings``: key and known_hosts checked when the
    backend is built (a bad Secret fails at start), the connection opened on the first command
    (the driver starts while the RDS is down), retries with backoff.
    """

    # Any SshSettings (not checked by type here: naming the class would import paramiko).
    settings: providers.Dependency[SshSettings] = providers.Dependency()
    metrics: providers.Dependency[Metrics | None] = providers.Dependency(
        default=providers.Object(None)
    )
    sleep: providers.Dependency[Callable[[float], None]] = providers.Dependency(
        default=providers.Object(time.sleep)
    )
    snapshot_method: providers.Dependency[str] = providers.Dependency(
        default=providers.Object("file-copy")  # commands.FILE_COPY (naming it imports paramiko)
    )

    connection = providers.Singleton(_connection, settings)
    backend = providers.Singleton(
        _backend,
        connection,
        settings,
        metrics,
        providers.Factory(_retry, settings, sleep),
    )
    snapshots = providers.Singleton(_snapshots, backend, snapshot_method)


def open_ssh_backend(
    settings: SshSettings,
    *,
    metrics: Metrics | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RouterOsSshBackend:
    """One SSH backend outside a serving process (contract tests, the bench), wired as served."""
    backend: RouterOsSshBackend = RdsSsh(settings=settings, metrics=metrics, sleep=sleep).backend()
    return backend
