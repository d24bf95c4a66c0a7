"""
How to reach the RDS over SSH: the settings value and the two rules read from it.

The container (``entrypoints/container.py``, ``RdsSsh``) builds the connection and the backend
from an ``SshSettings``: for ``--backend ssh`` from the ``--rds-*`` options, for ``--backend
emulator`` from what ``Emulator.provision_client`` gives (``SshSettings.for_emulator``).
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable
from typing import Any, Final

import attrs

from rds_csi.adapters.routeros_ssh.connection import HostKeyPolicy
from rds_csi.domain import InvalidArgument
from rds_csi.domain.identity import DEFAULT_BASE_PATH, check_base_path
from rds_csi.domain.model import check_host, check_port
from rds_csi.domain.parameters import DEFAULT_SSH_PORT


__all__ = ["SshSettings", "host_key_policy", "login_user"]

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
        connect_timeout, command_timeout: Seconds (one connect; one command).
        call_timeout: Seconds one backend operation may take with its retries at most; the
            caller's gRPC deadline shortens it (``docs/deadlines.md``).
        max_channels: Commands in flight at once on the one connection.
        known_bases: Other volume directories (other StorageClasses' ``volumePath``s) where
            a delete whose disk entry is gone looks for the image.
        retry_attempts, retry_first_wait, retry_max_wait: The backoff (1, 2, 4, 8, 16 s cap).
        persistent: Keep one connection (False: connect per command, for comparison only).
    """

    address: str = attrs.field(validator=lambda _i, _a, v: check_host(v, field="rds address"))
    user: str = attrs.field()
    key_file: pathlib.Path
    port: int = attrs.field(
        default=DEFAULT_SSH_PORT, validator=lambda _i, _a, v: check_port(v, field="ssh port")
    )
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
    call_timeout: float = attrs.field(default=12.0, validator=_positive("rds_call_timeout"))
    max_channels: int = attrs.field(default=8, validator=_positive("max channels"))
    known_bases: tuple[str, ...] = ()
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


def login_user(settings: SshSettings) -> str:
    """The SSH user name RouterOS expects: ``user+<login options>``."""
    return settings.user + (f"+{settings.login_options}" if settings.login_options else "")


def host_key_policy(settings: SshSettings) -> HostKeyPolicy:
    """Verify against known_hosts (default ``~/.ssh/known_hosts``) unless told not to."""
    if settings.insecure_ignore_host_key:
        return HostKeyPolicy.insecure()
    known = settings.known_hosts_file or pathlib.Path.home() / ".ssh" / "known_hosts"
    return HostKeyPolicy.from_file(known)
