"""
One persistent SSH connection to the RDS, shared by every command: a ``fabric.Connection``.

- One connection, opened on first use and reused; each command is ``Connection.run`` (an exec
  channel on it, run by ``runner.RouterOsRemote``), and up to ``max_channels`` run at once
  (``check_health`` and 50 CreateVolumes share it).
- No keepalive: RouterOS refuses ``keepalive@openssh.com``. Liveness is checked instead where
  it costs nothing: a dead connection is replaced before use, and a channel that cannot be
  opened on a reused connection (the RDS dropped an idle session) is retried once on a fresh
  one straight away, since nothing ran.
- The host key is checked against a known_hosts file unless explicitly switched off
  (``keys.HostKeyPolicy``); the private key is read from a file no one but its owner may read.
- Every wait is bounded by the call's ``Deadline`` (or ``command_timeout`` from now, if that
  is sooner): waiting for a channel slot or for another thread's connect, connecting (a
  watchdog closes a handshake that outlives it), opening the channel and running the command.
- Every library failure is translated once (``errors.translated``) into ``SshUnavailable``
  (a ``BackendUnavailable``) that says whether repeating the command is safe.
- fabric reads no ssh_config and no fabric/invoke config file: what the driver's options say
  is all that applies.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import fabric
import paramiko

from rds_csi.adapters.routeros_ssh.errors import (
    CommandTimeout,
    ConnectionLost,
    HostKeyRejected,
    LoginRefused,
    SshUnavailable,
    translated,
)
from rds_csi.adapters.routeros_ssh.keys import HostKeyPolicy, load_private_key
from rds_csi.adapters.routeros_ssh.runner import ChannelRefused, RouterOsRemote
from rds_csi.domain.deadline import Deadline


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


def _transport(sock: socket.socket, **kwargs: Any) -> paramiko.Transport:
    # every command is a few small packets each way: Nagle would hold them for an ACK
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return paramiko.Transport(sock, **kwargs)


def _fabric_config() -> fabric.Config:
    return fabric.Config(
        ssh_config=paramiko.SSHConfig(),  # explicit and empty: no ~/.ssh/config applies
        lazy=True,  # no /etc/fabric.yml or ~/.fabric.yml either
        overrides={
            "runners": {"remote": RouterOsRemote},
            "run": {"hide": True, "warn": True, "pty": False, "in_stream": False},
        },
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self._key = key
        self._host_keys = host_keys
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.max_channels = max_channels
        self.persistent = persistent
        self.counters = Counters()
        self._clock = clock
        self._config = _fabric_config()
        self._slots = threading.BoundedSemaphore(max_channels)
        self._lock = threading.Lock()
        self._connection: fabric.Connection | None = None

    # --- time ---------------------------------------------------------------------------------

    def _deadline(self, deadline: Deadline | None) -> Deadline:
        return Deadline.after(self.command_timeout, self._clock()).earlier(deadline)

    def _left(self, deadline: Deadline, waiting_for: str) -> float:
        """Seconds left for the next wait; none left is a timeout, named for what we waited on."""
        left = deadline.remaining(self._clock())
        if left <= 0:
            raise CommandTimeout(
                f"the RDS at {self.endpoint} did not finish in time: no time left for "
                f"{waiting_for} within this call's deadline"
            )
        return left

    # --- connecting ---------------------------------------------------------------------------

    def _open(self, deadline: Deadline) -> fabric.Connection:
        budget = min(self.connect_timeout, self._left(deadline, "connecting"))
        connection = fabric.Connection(
            self.endpoint.host,
            user=self.endpoint.user,
            port=self.endpoint.port,
            config=self._config,
            connect_kwargs={
                "pkey": self._key,
                "look_for_keys": False,
                "allow_agent": False,
                "timeout": budget,
                "banner_timeout": budget,
                "auth_timeout": budget,
                "transport_factory": _transport,
            },
        )
        # fabric auto-adds unknown host keys; ours decides every key (its store stays empty)
        connection.client.set_missing_host_key_policy(self._host_keys)
        self.counters.bump("handshakes")
        # each phase has its own timeout, so their sum could outlive the budget: a watchdog
        # closes the connection at the end of it, which fails whichever phase is waiting
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            connection.client.close()

        watchdog = threading.Timer(budget, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            try:
                with translated("connecting", str(self.endpoint)):
                    connection.open()
            except ConnectionLost:
                if expired.is_set():
                    raise CommandTimeout(
                        f"connecting to the RDS at {self.endpoint} did not finish in time "
                        f"({budget:.3g} s)"
                    ) from None
                raise
            self._check_logged_in(connection)
        except BaseException:
            connection.client.close()
            raise
        finally:
            watchdog.cancel()
        return connection

    def _check_logged_in(self, connection: fabric.Connection) -> None:
        if not connection.is_connected:
            raise CommandTimeout(f"connecting to {self.endpoint} did not finish in time")
        if not connection.transport.is_authenticated():
            raise LoginRefused(f"the RDS at {self.endpoint} wants more than our key")

    def _current(self, deadline: Deadline) -> tuple[fabric.Connection, bool]:
        """The shared connection, (re)connecting if needed; True if it is brand new."""
        # bounded: one thread's connect to a hung RDS must not hold the others past theirs
        if not self._lock.acquire(timeout=self._left(deadline, "another thread's connect")):
            raise CommandTimeout(
                f"the RDS at {self.endpoint} did not finish in time: another call was still "
                "connecting to it at this call's deadline"
            )
        try:
            connection = self._connection
            if connection is not None and connection.is_connected:
                return connection, False
            self._connection = None
            if connection is not None:
                connection.client.close()
            self._connection = self._open(deadline)
            return self._connection, True
        finally:
            self._lock.release()

    def _discard(self, connection: fabric.Connection) -> None:
        with self._lock:
            if self._connection is connection:
                self._connection = None
        connection.client.close()

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.client.close()

    # --- running commands ---------------------------------------------------------------------

    def run(self, command: str, deadline: Deadline | None = None) -> CommandOutput:
        """
        Run one command line and return everything it printed, by ``deadline`` at the latest.

        Raises:
            SshUnavailable: no complete answer (its ``retryable`` says if repeating is safe).
        """
        deadline = self._deadline(deadline)
        if not self._slots.acquire(timeout=self._left(deadline, "a free channel")):
            raise CommandTimeout(
                f"the RDS at {self.endpoint} did not finish in time: all {self.max_channels} "
                "channels stayed busy until this call's deadline"
            )
        try:
            if self.persistent:
                connection, fresh = self._current(deadline)
            else:
                connection, fresh = self._open(deadline), True
            try:
                try:
                    return self._exec(connection, command, deadline)
                except ChannelRefused as refused:
                    self._discard(connection)
                    if refused.timed_out:  # the RDS hangs: a fresh connection will not help
                        raise CommandTimeout(
                            f"the RDS at {self.endpoint} did not finish in time: no channel "
                            "opened before this call's deadline"
                        ) from None
                    if fresh or not self.persistent:
                        raise ConnectionLost(
                            f"opening a channel on {self.endpoint} failed: {refused}"
                        ) from None
                # the RDS closed our idle session: nothing ran, so reconnect and go on
                self.counters.bump("stale_reconnects")
                connection, _ = self._current(deadline)
                try:
                    return self._exec(connection, command, deadline)
                except ChannelRefused as refused:
                    self._discard(connection)
                    raise ConnectionLost(
                        f"opening a channel on {self.endpoint} failed: {refused}"
                    ) from None
            finally:
                if not self.persistent:
                    connection.client.close()
        finally:
            self._slots.release()

    def _exec(
        self, connection: fabric.Connection, command: str, deadline: Deadline
    ) -> CommandOutput:
        timeout = self._left(deadline, "the command")
        self.counters.bump("round_trips")
        try:
            with translated("running a command", str(self.endpoint)):
                result = connection.run(command, timeout=timeout)
        except CommandTimeout:
            raise CommandTimeout(
                f"the RDS at {self.endpoint} did not finish a command within {timeout:.3g} s"
            ) from None
        except SshUnavailable:
            if not connection.is_connected:
                self._discard(connection)
            raise
        return CommandOutput(str(result.stdout), result.exited)
