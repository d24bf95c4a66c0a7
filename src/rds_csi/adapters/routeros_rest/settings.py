"""
How to reach the RDS's REST API: the settings value, checked whole when it is made.

The container (``entrypoints/rest_wiring.py``) builds the client and the backend from a
``RestSettings``: for ``--backend rest`` from the ``--rds-*`` options, for ``--backend
emulator-rest`` from what the embedded emulator provisions. The password is read from a file
(a mounted Secret) and never shown: ``repr`` leaves it out, and no log line names it.
"""

from __future__ import annotations

import pathlib
import re
import stat
import urllib.parse
from collections.abc import Callable
from typing import Any, Final

import attrs

from rds_csi.domain import InvalidArgument
from rds_csi.domain.identity import DEFAULT_BASE_PATH, check_base_path
from rds_csi.domain.model import check_host, check_port


__all__ = ["RestSettings", "check_rest_url", "read_password_file"]

_USER_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_POOL_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_MAX_PASSWORD: Final = 1024
HTTPS_PORT: Final = 443


def _positive(field: str) -> Callable[[object, attrs.Attribute[Any], Any], None]:
    def check(_inst: object, _attr: attrs.Attribute[Any], value: Any) -> None:
        if not value > 0:
            raise InvalidArgument(field, f"must be positive, got {value!r}")

    return check


def _check_url(_inst: object, _attr: attrs.Attribute[str], value: str) -> None:
    check_rest_url(value)


def check_rest_url(value: str) -> str:
    """``https://host[:port]`` and nothing more: no user, path, query or fragment."""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme != "https":
        raise InvalidArgument("rds rest url", f"{value!r} must start with https://")
    if parts.username or parts.password or parts.path not in {"", "/"}:
        raise InvalidArgument(
            "rds rest url", f"{value!r}: give only https://host[:port] (no user, no path)"
        )
    if parts.query or parts.fragment:
        raise InvalidArgument("rds rest url", f"{value!r}: no query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise InvalidArgument("rds rest url", f"{value!r} has a bad port") from None
    check_host(parts.hostname or "", field="rds rest url host")
    if port is not None:
        check_port(port, field="rds rest url port")
    return value


def read_password_file(path: pathlib.Path) -> str:
    """
    The password in ``path`` (one line; a trailing newline is dropped). Refused if group or
    others may write it, or it is not a regular file: a Secret mounted as a file is 0644 or
    stricter, and a password anyone may replace is not a password.
    """
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(
            "rds rest password file", f"{path}: {exc.strerror or 'cannot read'}"
        ) from None
    except UnicodeDecodeError:
        raise InvalidArgument("rds rest password file", f"{path} is not UTF-8 text") from None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidArgument("rds rest password file", f"{path} is not a regular file")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InvalidArgument("rds rest password file", f"{path} is writable by others")
    password = text.removesuffix("\n").removesuffix("\r")
    if not password or "\n" in password or len(password) > _MAX_PASSWORD:
        raise InvalidArgument(
            "rds rest password file", f"{path} must hold one non-empty line (the password)"
        )
    return password


@attrs.frozen
class RestSettings:
    """
    Attributes:
        url: ``https://host[:port]`` of the RDS's web server (``www-ssl``).
        user: The RouterOS user (policies ``read,write,test,api,rest-api``).
        password: Its password (from a file; never in ``repr`` or logs).
        ca_file: PEM bundle of the CA (or the RDS's own self-signed certificate) to trust;
            default the system's trust store.
        insecure_skip_verify: Do not verify the certificate at all (labs only; logged loudly).
        base_path: Default volume directory on the RDS.
        pool: Mount point whose ``size``/``free`` ``capacity`` reports; default the base
            path's first segment.
        connect_timeout, read_timeout, write_timeout, pool_timeout: Seconds per phase
            (``read`` bounds how long RouterOS may think about one request).
        max_connections: Connections kept to the RDS at once (requests beyond wait).
        keepalive_expiry: Seconds an idle connection is kept for reuse.
        retry_attempts, retry_first_wait, retry_max_wait: The backoff (1, 2, 4, 8, 16 s cap).
    """

    url: str = attrs.field(validator=_check_url)
    user: str = attrs.field()
    password: str = attrs.field(repr=False)
    ca_file: pathlib.Path | None = None
    insecure_skip_verify: bool = False
    base_path: str = attrs.field(
        default=DEFAULT_BASE_PATH, validator=lambda _i, _a, v: check_base_path(v, field="base path")
    )
    pool: str | None = None
    connect_timeout: float = attrs.field(default=10.0, validator=_positive("connect timeout"))
    read_timeout: float = attrs.field(default=30.0, validator=_positive("read timeout"))
    write_timeout: float = attrs.field(default=10.0, validator=_positive("write timeout"))
    pool_timeout: float = attrs.field(default=30.0, validator=_positive("pool timeout"))
    max_connections: int = attrs.field(default=8, validator=_positive("max connections"))
    keepalive_expiry: float = attrs.field(default=30.0, validator=_positive("keepalive expiry"))
    retry_attempts: int = attrs.field(default=5, validator=_positive("retry attempts"))
    retry_first_wait: float = 1.0
    retry_max_wait: float = 16.0

    @user.validator
    def _check_user(self, _attr: attrs.Attribute[str], value: str) -> None:
        if _USER_RE.fullmatch(value) is None:
            raise InvalidArgument("rds user", f"{value!r} is not a RouterOS user name")

    @password.validator
    def _check_password(self, _attr: attrs.Attribute[str], value: str) -> None:
        # never echo the value, not even a part of it
        if not value or len(value) > _MAX_PASSWORD or any(c in value for c in "\r\n\x00"):
            raise InvalidArgument("rds rest password", "must be one non-empty line")

    def __attrs_post_init__(self) -> None:
        if _POOL_RE.fullmatch(self.effective_pool) is None:
            raise InvalidArgument("pool", f"{self.effective_pool!r} is not a mount point name")
        if self.ca_file is not None and self.insecure_skip_verify:
            raise InvalidArgument(
                "rds insecure skip verify", "contradicts rds ca file: give one or the other"
            )

    @property
    def effective_pool(self) -> str:
        return self.pool or self.base_path.strip("/").split("/")[0]

    @property
    def base_url(self) -> str:
        """The API root, ``https://host[:port]/rest``."""
        return self.url.rstrip("/") + "/rest"
