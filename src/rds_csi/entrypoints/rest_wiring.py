"""
The RDS over REST: the sub-container that builds the REST backend from a ``RestSettings``.

``RdsRest`` is used twice by the main container (``container.py``), as ``RdsSsh`` is: for
``--backend rest`` (settings from the ``--rds-*`` options) and ``--backend emulator-rest``
(settings the embedded emulator provisions: its certificate as the CA, a fresh password).
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Callable, Iterator

import attrs
from dependency_injector import containers, providers

from rds_csi.adapters.routeros_rest import (
    RestClient,
    RestSettings,
    RetryPolicy,
    RouterOsRestBackend,
    read_password_file,
)
from rds_csi.adapters.routeros_rest.snapshots import FILE_COPY, RouterOsRestSnapshots
from rds_csi.application.ports import Metrics
from rds_csi.domain import InvalidArgument
from rds_csi.emulator import Emulator
from rds_csi.entrypoints.settings import Settings


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


class RdsRest(containers.DeclarativeContainer):
    """
    The RouterOS REST backend from one ``RestSettings``: the CA file read when the backend is
    built (a bad Secret fails at start), connections opened on the first request (the driver
    starts while the RDS is down), retries with backoff.
    """

    settings = providers.Dependency(instance_of=RestSettings)
    metrics: providers.Dependency[Metrics | None] = providers.Dependency(
        default=providers.Object(None)
    )
    sleep: providers.Dependency[Callable[[float], None]] = providers.Dependency(
        default=providers.Object(time.sleep)
    )
    snapshot_method: providers.Dependency[str] = providers.Dependency(
        default=providers.Object(FILE_COPY)
    )

    client = providers.Singleton(RestClient, settings, metrics=metrics)
    backend = providers.Singleton(
        RouterOsRestBackend,
        client,
        base_path=settings.provided.base_path,
        pool=settings.provided.effective_pool,
        retry=providers.Factory(
            RetryPolicy,
            attempts=settings.provided.retry_attempts,
            first_wait=settings.provided.retry_first_wait,
            max_wait=settings.provided.retry_max_wait,
            sleep=sleep,
        ),
    )
    snapshots = providers.Singleton(RouterOsRestSnapshots, backend, method=snapshot_method)


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
