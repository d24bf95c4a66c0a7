"""
One persistent SSH connection to the RDS, shared by every command (paramiko).

- One transport, opened on first use and reused; each command is an exec channel on it, and
  up to ``max_channels`` run at once (``check_health`` and 50 CreateVolumes share it).
- No keepalive: RouterOS refuses ``keepalive@openssh.com``. Liveness is checked instead where
  it costs nothing: a dead transport is replaced before use, and a channel that cannot be
  opened on a reused transport (the RDS dropped an idle session) is retried once on a fresh one
  straight away, since nothing ran.
- The host key is checked against a known_hosts file unless explicitly switched off; the
  private key is read from a file no one but its owner may read.
- Every paramiko/socket failure is translated here, once, into ``SshUnavailable`` (a
  ``BackendUnavailable``) that says whether repeating the command is safe.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import socket
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import attrs
import paramiko

from rds_csi.domain import BackendUnavailable, InvalidArgument


__all__ = [
    "CommandOutput",
    "CommandTimeout",
    "ConnectionLost",
    "Counters",
    "HostKeyPolicy",
    "HostKeyRejected",
    "LoginRefused",
    "SshConnection",
    "SshEndpoint",
    "SshUnavailable",
    "load_private_key",
]

log = logging.getLogger(__name__)

_CHUNK: Final = 65536
_SECRET_BITS: Final = stat.S_IRWXG | stat.S_IRWXO


class SshUnavailable(BackendUnavailable):
    """The RDS could not be reached or did not answer; ``retryable`` if repeating is safe."""

    retryable: bool = True


class ConnectionLost(SshUnavailable):
    """The connection failed or dropped before the command's answer was complete."""


class CommandTimeout(SshUnavailable):
    """No complete answer within the command timeout."""


class LoginRefused(SshUnavailable):
    """The RDS refused our user or key; repeating will not help."""

    retryable = False


class HostKeyRejected(SshUnavailable):
    """The RDS's host key is unknown or differs from known_hosts; never retried."""

    retryable = False


@attrs.frozen
class SshEndpoint:
    host: str
    port: int
    user: str  # may carry RouterOS login options: "admin+ct"

    def __str__(self) -> str:
        return f"{self.user.split('+')[0]}@{self.host}:{self.port}"


@attrs.define
class Counters:
    """What the connection did; the benchmark and the round-trip tests read these."""

    handshakes: int = 0
    round_trips: int = 0
    stale_reconnects: int = 0
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def bump(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "handshakes": self.handshakes,
                "round_trips": self.round_trips,
                "stale_reconnects": self.stale_reconnects,
            }


@attrs.frozen
class CommandOutput:
    text: str
    exit_status: int | None


def load_private_key(path: pathlib.Path, passphrase: str | None = None) -> paramiko.PKey:
    """
    Read the SSH private key, refusing one that group or others may access (OpenSSH's rule;
    mount the Secret with ``defaultMode: 0400``).
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InvalidArgument("ssh key file", f"{path}: {exc.strerror or exc}") from None
    if mode & _SECRET_BITS:
        raise InvalidArgument(
            "ssh key file",
            f"{path} has mode {stat.S_IMODE(mode):04o}: group or others may access it; "
            "make it 0600 or 0400 (Secret volume defaultMode: 0400)",
        )
    try:
        return paramiko.PKey.from_path(path, passphrase)
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise InvalidArgument(
            "ssh key file", f"{path} is not a usable private key: {exc}"
        ) from None


@attrs.frozen
class HostKeyPolicy:
    """
    How the RDS's host key is checked: against ``known_hosts``, or (opt-out) not at all.

    Create with ``HostKeyPolicy.from_file(path)`` or ``HostKeyPolicy.insecure()``.
    """

    known_hosts: paramiko.HostKeys | None
    source: str

    @classmethod
    def from_file(cls, path: pathlib.Path) -> HostKeyPolicy:
        keys = paramiko.HostKeys()
        try:
            keys.load(str(path))
        except OSError as exc:
            raise InvalidArgument("known_hosts file", f"{path}: {exc.strerror or exc}") from None
        return cls(keys, str(path))

    @classmethod
    def insecure(cls) -> HostKeyPolicy:
        return cls(None, "host key verification switched off")

    def check(self, host: str, port: int, key: paramiko.PKey) -> None:
        if self.known_hosts is None:
            log.warning("not verifying the host key of %s:%d (%s)", host, port, self.source)
            return
        name = host if port == 22 else f"[{host}]:{port}"  # noqa: PLR2004 - ssh's own rule
        known = self.known_hosts.lookup(name)
        if known is None:
            raise HostKeyRejected(
                f"the RDS at {name} is not in {self.source}; add its key "
                f"(ssh-keyscan -p {port} {host}) or, for a lab only, switch verification off"
            )
        if known.get(key.get_name()) != key:
            raise HostKeyRejected(
                f"the host key of the RDS at {name} ({key.get_name()}) does not match "
                f"{self.source}: refusing to connect (was the RDS replaced, or is someone "
                "in between?)"
            )


class SshConnection:
    """
    Runs RouterOS command lines over one reused SSH connection.

    With ``persistent=False`` it connects for every command instead (the benchmark's baseline).
    """

    def __init__(
        self,
        endpoint: SshEndpoint,
        key: paramiko.PKey,
        host_keys: HostKeyPolicy,
        *,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
        max_channels: int = 8,
        persistent: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self._key = key
        self._host_keys = host_keys
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.persistent = persistent
        self.counters = Counters()
        self._slots = threading.BoundedSemaphore(max_channels)
        self._lock = threading.Lock()
        self._transport: paramiko.Transport | None = None

    # --- connecting ---------------------------------------------------------------------------

    @contextmanager
    def _boundary(self, what: str) -> Iterator[None]:
        """Translate paramiko's and the socket's failures, once, into domain errors."""
        try:
            yield
        except SshUnavailable:
            raise
        except paramiko.AuthenticationException as exc:
            raise LoginRefused(
                f"the RDS at {self.endpoint} refused our login ({exc}); check the user and "
                "that the key is in its /user ssh-keys"
            ) from None
        except TimeoutError:
            raise CommandTimeout(f"{what} on {self.endpoint} did not finish in time") from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            detail = str(exc) or type(exc).__name__
            raise ConnectionLost(f"{what} on {self.endpoint} failed: {detail}") from None

    def _open(self) -> paramiko.Transport:
        host, port = self.endpoint.host, self.endpoint.port
        self.counters.bump("handshakes")
        with self._boundary("connecting"):
            sock = socket.create_connection((host, port), timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(sock)
        transport.banner_timeout = self.connect_timeout
        transport.handshake_timeout = self.connect_timeout
        transport.auth_timeout = self.connect_timeout
        try:
            with self._boundary("SSH handshake"):
                transport.start_client(timeout=self.connect_timeout)
                self._host_keys.check(host, port, transport.get_remote_server_key())
                remaining = transport.auth_publickey(self.endpoint.user, self._key)
            self._check_authenticated(transport, remaining)
        except BaseException:
            transport.close()
            raise
        return transport

    def _check_authenticated(self, transport: paramiko.Transport, remaining: list[str]) -> None:
        if remaining or not transport.is_authenticated():
            raise LoginRefused(f"the RDS at {self.endpoint} wants more than our key ({remaining})")

    def _current(self) -> tuple[paramiko.Transport, bool]:
        """The shared transport, (re)connecting if needed; True if it is brand new."""
        with self._lock:
            transport = self._transport
            if transport is not None and transport.is_active():
                return transport, False
            if transport is not None:
                transport.close()
            self._transport = None
            self._transport = self._open()
            return self._transport, True

    def _discard(self, transport: paramiko.Transport) -> None:
        with self._lock:
            if self._transport is transport:
                self._transport = None
        transport.close()

    def close(self) -> None:
        with self._lock:
            transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    # --- running commands ---------------------------------------------------------------------

    def run(self, command: str) -> CommandOutput:
        """
        Run one command line and return everything it printed.

        Raises:
            SshUnavailable: no complete answer (its ``retryable`` says if repeating is safe).
        """
        with self._slots:
            if self.persistent:
                transport, fresh = self._current()
            else:
                transport, fresh = self._open(), True
            try:
                try:
                    with self._boundary("opening a channel"):
                        channel = transport.open_session(timeout=self.command_timeout)
                except ConnectionLost:
                    self._discard(transport)
                    if fresh or not self.persistent:
                        raise
                    # the RDS closed our idle session: nothing ran, so reconnect and go on
                    self.counters.bump("stale_reconnects")
                    transport, fresh = self._current()
                    with self._boundary("opening a channel"):
                        channel = transport.open_session(timeout=self.command_timeout)
                self.counters.bump("round_trips")
                try:
                    return self._exec(channel, command)
                except SshUnavailable:
                    if not transport.is_active():
                        self._discard(transport)
                    raise
            finally:
                if not self.persistent:
                    transport.close()

    def _exec(self, channel: paramiko.Channel, command: str) -> CommandOutput:
        expired = threading.Event()

        def give_up() -> None:
            expired.set()
            with contextlib.suppress(Exception):  # the transport may be dying already
                channel.close()

        # paramiko's exec request waits without a bound; this timer bounds the whole command.
        timer = threading.Timer(self.command_timeout, give_up)
        timer.daemon = True
        timer.start()
        chunks: list[bytes] = []
        try:
            with self._boundary("running a command"):
                channel.set_combine_stderr(True)
                channel.settimeout(self.command_timeout)
                channel.exec_command(command)
                while data := channel.recv(_CHUNK):
                    chunks.append(data)
                status = channel.recv_exit_status()
        finally:
            timer.cancel()
            with contextlib.suppress(Exception):
                channel.close()
        if expired.is_set():
            raise CommandTimeout(
                f"the RDS at {self.endpoint} did not finish a command within "
                f"{self.command_timeout:g} s"
            )
        if status == -1 and not channel.eof_received:
            raise ConnectionLost(f"the connection to {self.endpoint} dropped during a command")
        # undecodable bytes become U+FFFD, which no value we use may hold: the parser refuses
        text = b"".join(chunks).decode(errors="replace")
        return CommandOutput(text, None if status == -1 else status)
