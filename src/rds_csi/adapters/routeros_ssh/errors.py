"""
The SSH adapter's errors, and the one place fabric/invoke/paramiko/socket failures become them.

Every error is an ``SshUnavailable`` (a domain ``BackendUnavailable``, so UNAVAILABLE at the
gRPC edge) that says whether repeating the command is safe: a dropped connection or a timeout
is (every command line we send is idempotent), a refused login or host key is not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import paramiko
from invoke.exceptions import CommandTimedOut, ThreadException

from rds_csi.domain import BackendUnavailable


__all__ = [
    "CommandTimeout",
    "ConnectionLost",
    "HostKeyRejected",
    "LoginRefused",
    "SshUnavailable",
    "translated",
]


class SshUnavailable(BackendUnavailable):
    """The RDS could not be reached or did not answer; ``retryable`` if repeating is safe."""

    retryable: bool = True


class ConnectionLost(SshUnavailable):
    """The connection failed or dropped before the command's answer was complete."""


class CommandTimeout(SshUnavailable):
    """No complete answer within the time this call had left."""


class LoginRefused(SshUnavailable):
    """The RDS refused our user or key; repeating will not help."""

    retryable = False


class HostKeyRejected(SshUnavailable):
    """The RDS's host key is unknown or differs from known_hosts; never retried."""

    retryable = False


def _inner(exc: BaseException) -> BaseException:
    """invoke wraps what its reader threads raised; the first one is the story."""
    if isinstance(exc, ThreadException) and exc.exceptions:
        return _inner(exc.exceptions[0].value)
    return exc


@contextmanager
def translated(what: str, where: str) -> Iterator[None]:
    """Translate the libraries' and the socket's failures during ``what`` on ``where``."""
    try:
        yield
    except SshUnavailable:
        raise
    except (
        ThreadException,
        CommandTimedOut,
        paramiko.SSHException,
        EOFError,
        OSError,
    ) as outer:
        exc = _inner(outer)
        if isinstance(exc, SshUnavailable):
            raise exc from None
        if isinstance(exc, CommandTimedOut | TimeoutError):
            raise CommandTimeout(f"{what} on {where} did not finish in time") from None
        if isinstance(exc, paramiko.AuthenticationException):
            raise LoginRefused(
                f"the RDS at {where} refused our login ({exc}); check the user and that the "
                "key is in its /user ssh-keys"
            ) from None
        if isinstance(exc, paramiko.BadHostKeyException):
            raise HostKeyRejected(
                f"the host key of the RDS at {where} does not match: refusing to connect"
            ) from None
        detail = str(exc) or type(exc).__name__
        raise ConnectionLost(f"{what} on {where} failed: {detail}") from None
