"""
The RDS over REST: the sub-container that builds the REST backend from a ``RestSettings``.

``RdsRest`` is used twice by the main container (``container.py``), as ``RdsSsh`` is: for
``--backend rest`` (settings from the ``--rds-*`` options) and ``--backend emulator-rest``
(settings the embedded emulator provisions: its certificate as the CA, a fresh password).

As ``rds_wiring.py``, importing this module imports neither the REST adapter (httpx) nor the
emulator: the functions below import what they build when first called (issue 15).
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import attrs

from rds_csi.application.ports import Metrics
from rds_csi.domain import InvalidArgument
from rds_csi.entrypoints.di import containers, providers
from rds_csi.entrypoints.settings import Settings


if TYPE_CHECKING:
    from rds_csi.adapters.routeros_rest import (
        RestClient,
        RestSettings,
        RetryPolicy,
        RouterOsRestBackend,
    )
    from rds_csi.adapters.routeros_rest.snapshots import RouterOsRestSnapshots
    from rds_csi.emulator import Emulator

# Lazy imports below: each function imports what it builds (see the module's docstring).
# ruff: noqa: PLC0415


__all__ = [
    "RdsRest",
    "closing_rest",
    "emulator_rest_settings",
    "open_rest_backend",
    "rds_rest_settings",
]

log = logging.getLogger(__name__)


def rds_rest_settings(settings: Settings) -> RestSettings:
    """``--backend rest``: the ``--rds-*`` options; the password from its file (a Secret)."""
    from rds_csi.adapters.routeros_rest import RestSettings, read_password_file

    rds = settings.rds
    if not rds.rest_password_file:
        raise InvalidArgument(
            "rds_rest_password_file",
            "is required with --backend rest (the REST user's password file from a Secret)",
        )
    if rds.insecure_skip_verify:
        log.warning(
            "RDS REST certificate verification is OFF (--rds-insecure-skip-verify): testing only"
        )
    host = f"[{rds.address}]" if ":" in rds.address else rds.address
    return RestSettings(
        url=rds.rest_url or f"https://{host}",
        user=rds.user,
        password=read_password_file(pathlib.Path(rds.rest_password_file)),
        ca_file=pathlib.Path(rds.ca_file) if rds.ca_file else None,
        insecure_skip_verify=rds.insecure_skip_verify,
        base_path=settings.controller.volume_path,
    )


def emulator_rest_settings(
    emulator: Emulator, base_path: str, *, read_timeout: float | None = None
) -> RestSettings:
    """``--backend emulator-rest``: the REST adapter logged in to it, the real code path."""
    from rds_csi.adapters.routeros_rest import RestSettings, read_password_file

    files = emulator.provision_rest_client(emulator.config.data_dir / "rest-client")
    settings = RestSettings(
        url=files.url,
        user=files.user,
        password=read_password_file(files.password_file),
        ca_file=files.ca_file,
        base_path=base_path,
    )
    return settings if read_timeout is None else attrs.evolve(settings, read_timeout=read_timeout)


def closing_rest(backend: RouterOsRestBackend) -> Iterator[RouterOsRestBackend]:
    """A built REST backend as a resource: ``shutdown_resources`` closes its pool."""
    try:
        yield backend
    finally:
        backend.close()


def _client(settings: RestSettings, metrics: Metrics | None) -> RestClient:
    from rds_csi.adapters.routeros_rest import RestClient

    return RestClient(settings, metrics=metrics)


def _retry(settings: RestSettings, sleep: Callable[[float], None]) -> RetryPolicy:
    from rds_csi.adapters.routeros_rest import RetryPolicy

    return RetryPolicy(
        attempts=settings.retry_attempts,
        first_wait=settings.retry_first_wait,
        max_wait=settings.retry_max_wait,
        sleep=sleep,
    )


def _backend(client: RestClient, settings: RestSettings, retry: RetryPolicy) -> RouterOsRestBackend:
    from rds_csi.adapters.routeros_rest import RouterOsRestBackend

    return RouterOsRestBackend(
        client, base_path=settings.base_path, pool=settings.effective_pool, retry=retry
    )


def _snapshots(backend: RouterOsRestBackend, method: str) -> RouterOsRestSnapshots:
    from rds_csi.adapters.routeros_rest.snapshots import RouterOsRestSnapshots

    return RouterOsRestSnapshots(backend, method=method)


class RdsRest(containers.DeclarativeContainer):
    """
    The RouterOS REST backend from one ``RestSettings``: the CA file read when the backend is
    built (a bad Secret fails at start), connections opened on the first request (the driver
    starts while the RDS is down), retries with backoff.
    """

    # Any RestSettings (not checked by type here: naming the class would import httpx).
    settings: providers.Dependency[RestSettings] = providers.Dependency()
    metrics: providers.Dependency[Metrics | None] = providers.Dependency(
        default=providers.Object(None)
    )
    sleep: providers.Dependency[Callable[[float], None]] = providers.Dependency(
        default=providers.Object(time.sleep)
    )
    snapshot_method: providers.Dependency[str] = providers.Dependency(
        default=providers.Object("file-copy")  # snapshots.FILE_COPY (naming it imports httpx)
    )

    client = providers.Singleton(_client, settings, metrics)
    backend = providers.Singleton(
        _backend, client, settings, providers.Factory(_retry, settings, sleep)
    )
    snapshots = providers.Singleton(_snapshots, backend, snapshot_method)


def open_rest_backend(
    settings: RestSettings,
    *,
    metrics: Metrics | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RouterOsRestBackend:
    """One REST backend outside a serving process (contract tests, the bench), wired as served."""
    backend: RouterOsRestBackend = RdsRest(
        settings=settings, metrics=metrics, sleep=sleep
    ).backend()
    return backend
