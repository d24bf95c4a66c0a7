"""
How to reach the RDS over SSH, and the one factory that builds the backend from it.

The container calls ``open_ssh_backend(SshSettings(...))`` for ``--backend ssh``. For
``--backend emulator`` it starts ``rds_csi.emulator.Emulator`` on loopback with a temporary data
directory, calls ``emulator.provision_client(dir)`` for a key and a known_hosts file, and passes
those here (see ``SshSettings.for_emulator``). ``SshSettings.from_env`` reads the ``RDS_*``
variables the contract suite and operators use.
"""

from __future__ import annotations

import os
import pathlib
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from rds_csi.adapters.routeros_ssh.backend import RetryPolicy, RouterOsSshBackend
from rds_csi.adapters.routeros_ssh.connection import (
    HostKeyPolicy,
    SshConnection,
    SshEndpoint,
    load_private_key,
)
from rds_csi.application.ports import Metrics
from rds_csi.domain import InvalidArgument
from rds_csi.domain.identity import DEFAULT_BASE_PATH, check_base_path
from rds_csi.domain.model import check_host, check_port


__all__ = ["SshSettings", "open_ssh_backend"]

_USER_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_LOGIN_OPTIONS_RE: Final = re.compile(r"[A-Za-z0-9]{0,32}")
_POOL_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def _positive(field: str) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    def check(_inst: object, _attr: attrs.Attribute[Any], value: Any) -> None:
        if not value > 0:
            raise InvalidArgument(field, f"must be positive, got {value!r}")

    return check


def _default_pool(base_path: str) -> str:
    """The Go driver's rule: the pool is mounted at the base path's first segment."""
    return base_path.strip("/").split("/")[0]


@attrs.frozen
class SshSettings:
    """
    Attributes:
        address: The RDS's SSH address (IP or DNS name).
        user: The RouterOS user (needs read, write, test policies).
        key_file: Private key file; refused if group or others may read it.
        port: SSH port.
        known_hosts_file: Host keys to trust; default ``~/.ssh/known_hosts``.
        insecure_ignore_host_key: Skip host key verification (labs only; logged).
        key_passphrase: For an encrypted key.
        base_path: Default volume directory on the RDS (StorageClass ``volumePath`` default).
        pool: Mount point reported by ``capacity``; default the base path's first segment.
        login_options: RouterOS login options appended as ``user+<options>`` (e.g. ``ct``).
        connect_timeout, command_timeout: Seconds.
        max_channels: Commands in flight at once on the one connection.
        retry_attempts, retry_first_wait, retry_max_wait: The backoff (1, 2, 4, 8, 16 s cap).
        persistent: Keep one connection (False: connect per command, for comparison only).
    """

    address: str = attrs.field(validator=lambda _i, _a, v: check_host(v, field="rds address"))
    user: str = attrs.field()
    key_file: pathlib.Path
    port: int = attrs.field(default=22, validator=lambda _i, _a, v: check_port(v, field="ssh port"))
    known_hosts_file: pathlib.Path | None = None
    insecure_ignore_host_key: bool = False
    key_passphrase: str | None = attrs.field(default=None, repr=False)
    base_path: str = attrs.field(
        default=DEFAULT_BASE_PATH, validator=lambda _i, _a, v: check_base_path(v, field="base path")
    )
    pool: str | None = None
    login_options: str = ""
    connect_timeout: float = attrs.field(default=10.0, validator=_positive("connect timeout"))
    command_timeout: float = attrs.field(default=30.0, validator=_positive("command timeout"))
    max_channels: int = attrs.field(default=8, validator=_positive("max channels"))
    retry_attempts: int = attrs.field(default=5, validator=_positive("retry attempts"))
    retry_first_wait: float = 1.0
    retry_max_wait: float = 16.0
    persistent: bool = True

    @user.validator
    def _check_user(self, _attr: attrs.Attribute[str], value: str) -> None:
        if _USER_RE.fullmatch(value) is None:
            raise InvalidArgument("rds user", f"{value!r} is not a RouterOS user name")

    def __attrs_post_init__(self) -> None:
        if _LOGIN_OPTIONS_RE.fullmatch(self.login_options) is None:
            raise InvalidArgument("login options", f"{self.login_options!r}: letters and digits")
        if _POOL_RE.fullmatch(self.effective_pool) is None:
            raise InvalidArgument("pool", f"{self.effective_pool!r} is not a mount point name")

    @property
    def effective_pool(self) -> str:
        return self.pool or _default_pool(self.base_path)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SshSettings:
        """
        ``RDS_ADDRESS`` (host or host:port), ``RDS_USER``, ``RDS_SSH_KEY``, and optionally
        ``RDS_SSH_PORT``, ``RDS_BASE_PATH``, ``RDS_POOL``, ``RDS_KNOWN_HOSTS``,
        ``RDS_INSECURE_IGNORE_HOST_KEY=1``.
        """
        env = os.environ if environ is None else environ
        address = env["RDS_ADDRESS"]
        port = int(env.get("RDS_SSH_PORT", "22"))
        host, sep, maybe_port = address.rpartition(":")
        if sep and maybe_port.isdigit() and ":" not in host:
            address, port = host, int(maybe_port)
        known = env.get("RDS_KNOWN_HOSTS")
        return cls(
            address=address,
            user=env["RDS_USER"],
            key_file=pathlib.Path(env["RDS_SSH_KEY"]),
            port=port,
            known_hosts_file=pathlib.Path(known) if known else None,
            insecure_ignore_host_key=env.get("RDS_INSECURE_IGNORE_HOST_KEY") == "1",
            base_path=env.get("RDS_BASE_PATH") or DEFAULT_BASE_PATH,
            pool=env.get("RDS_POOL") or None,
        )

    @classmethod
    def for_emulator(
        cls,
        *,
        host: str,
        port: int,
        user: str,
        key_file: pathlib.Path,
        known_hosts_file: pathlib.Path,
        base_path: str,
        **overrides: object,
    ) -> SshSettings:
        """Settings for an emulator (``Emulator.provision_client`` gives every argument)."""
        return cls(
            address=host,
            port=port,
            user=user,
            key_file=key_file,
            known_hosts_file=known_hosts_file,
            base_path=base_path,
            **overrides,  # type: ignore[arg-type]
        )


def open_ssh_backend(
    settings: SshSettings,
    *,
    metrics: Metrics | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RouterOsSshBackend:
    """
    Build the SSH backend. Checks the key file and known_hosts now (fails fast on a bad
    Secret); connects lazily, on the first command, so the driver starts while the RDS is down.

    Raises:
        InvalidArgument: a setting, the key file or the known_hosts file is unusable.
    """
    key = load_private_key(settings.key_file, settings.key_passphrase)
    if settings.insecure_ignore_host_key:
        host_keys = HostKeyPolicy.insecure()
    else:
        known = settings.known_hosts_file or pathlib.Path.home() / ".ssh" / "known_hosts"
        host_keys = HostKeyPolicy.from_file(known)
    user = settings.user + (f"+{settings.login_options}" if settings.login_options else "")
    connection = SshConnection(
        SshEndpoint(settings.address, settings.port, user),
        key,
        host_keys,
        connect_timeout=settings.connect_timeout,
        command_timeout=settings.command_timeout,
        max_channels=settings.max_channels,
        persistent=settings.persistent,
    )
    return RouterOsSshBackend(
        connection,
        base_path=settings.base_path,
        pool=settings.effective_pool,
        metrics=metrics,
        retry=RetryPolicy(
            attempts=settings.retry_attempts,
            first_wait=settings.retry_first_wait,
            max_wait=settings.retry_max_wait,
            sleep=sleep,
        ),
    )
