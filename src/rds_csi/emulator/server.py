"""
The emulated RDS: an SSH server (paramiko, server mode) in front of the RouterOS console.

Exec channels only, one command line per exec, as RouterOS; many connections and channels at
once. Logins by password or public key for the configured users; RouterOS login options after
``+`` in the user name are stripped (a ``<N>w`` option sets the output width). Requests for
``keepalive@openssh.com`` are refused, as RouterOS refuses them.

Use it in-process::

    with Emulator(EmulatorConfig(data_dir=tmp, pool_size=Size.from_quantity("100Gi"),
                                 users=(EmulatorUser("admin", password="x"),))) as emu:
        host, port = emu.address
        emu.faults.fail_next(1, match="/disk add")
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import random
import secrets
import socket
import threading
import time
from types import TracebackType
from typing import Final, Self

import attrs
import paramiko

from rds_csi.domain import Size
from rds_csi.emulator.console import Console
from rds_csi.emulator.dataplane import DataPlane
from rds_csi.emulator.dialect import Dialect
from rds_csi.emulator.faults import FaultInjector, FaultKind, Latency, garble, truncate
from rds_csi.emulator.logins import LoginGuard, LoginLimit
from rds_csi.emulator.netdelay import delay_line
from rds_csi.emulator.nvmet import DEFAULT_ROOT as NVMET_ROOT
from rds_csi.emulator.nvmet_plane import open_data_plane
from rds_csi.emulator.render import CRLF
from rds_csi.emulator.rest_server import RestServer
from rds_csi.emulator.session import POLL, Session
from rds_csi.emulator.ssh_hooks import ServerTransport
from rds_csi.emulator.state import PoolState


__all__ = [
    "ClientFiles",
    "Emulator",
    "EmulatorConfig",
    "EmulatorStats",
    "EmulatorUser",
    "RestClientFiles",
    "load_or_create_host_key",
    "public_key_line",
]

log = logging.getLogger("rds_csi.emulator")

DEFAULT_HOST_KEY: Final = "ssh_host_ecdsa_key"
_POLL: Final = POLL


def _not_empty(_user: object, _attribute: object, password: str | None) -> None:
    if password == "":
        raise ValueError(
            "the password is empty, which would let anyone log in: give a non-empty password, "
            "or none and an authorized key"
        )


@attrs.define
class EmulatorUser:
    """A RouterOS user: a password, authorized public keys (OpenSSH lines), or both."""

    name: str
    password: str | None = attrs.field(default=None, repr=False, validator=_not_empty)
    authorized_keys: list[str] = attrs.field(factory=list)


@attrs.frozen
class EmulatorConfig:
    """
    Attributes:
        data_dir: Disk table, exports file, host key and the pool's images.
        pool_size: The pool's total size.
        pool_name: Mount point and slot of the pool; file disks live under ``/<pool_name>/``.
        listen: Host and port (0 picks a free port).
        users: Who may log in.
        host_key_file: The server's private key; made (ECDSA P-256) if missing. Default
            ``<data_dir>/ssh_host_ecdsa_key``.
        dialect: How to answer where RouterOS's behaviour is unverified (width, wrapping,
            exit status, empty ``[find]``, ...); see ``dialect.py``.
        data_plane: ``json`` (the exports file only), ``nvmet`` (also the kernel NVMe/TCP
            target) or ``auto`` (``nvmet`` where the kernel has it); see ``nvmet_plane.py``.
        data_address: The IP the kernel target listens on; default the ``listen`` host.
        nvmet_root: nvmet's configfs directory.
        login_limit: Failed logins per client address before it is locked out for a while.
        copy_throughput: Bytes per second of ``/file copy`` and ``copy-from`` (0: unlimited);
            ``state.copy_throughput`` changes it at run time.
        rest_listen: Where the REST API (HTTPS) listens, beside SSH; None: not served.
    """

    data_dir: pathlib.Path
    pool_size: Size
    users: tuple[EmulatorUser, ...] = ()
    pool_name: str = "storage-pool"
    listen: tuple[str, int] = ("127.0.0.1", 0)
    host_key_file: pathlib.Path | None = None
    dialect: Dialect = attrs.field(factory=Dialect)
    data_plane: str = "json"
    data_address: str | None = None
    nvmet_root: pathlib.Path = NVMET_ROOT
    login_limit: LoginLimit = attrs.field(factory=LoginLimit)
    copy_throughput: int = 0
    rest_listen: tuple[str, int] | None = None


@attrs.define
class EmulatorStats:
    """What the server saw; tests and the benchmark read it."""

    connections: int = 0
    logins: int = 0
    failed_logins: int = 0
    locked_out_logins: int = 0  # attempts refused unchecked: their address is locked out
    commands: int = 0
    channels_open: int = 0
    max_channels_open: int = 0
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def bump(self, name: str, by: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + by)
            if name == "channels_open":
                self.max_channels_open = max(self.max_channels_open, self.channels_open)


@attrs.frozen
class ClientFiles:
    """What a client needs to log in: a private key file, a known_hosts file, a user name."""

    user: str
    key_file: pathlib.Path
    known_hosts_file: pathlib.Path
    host: str
    port: int


@attrs.frozen
class RestClientFiles:
    """What a REST client needs: the URL, a user, its password file, the CA (cert) file."""

    url: str
    user: str
    password_file: pathlib.Path
    ca_file: pathlib.Path
    fingerprint: str


def public_key_line(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.get_base64()}"


def load_or_create_host_key(path: pathlib.Path) -> paramiko.PKey:
    """Load the host key, or make an ECDSA P-256 one (mode 0600) on first start."""
    if path.exists():
        return paramiko.PKey.from_path(path)
    key = paramiko.ECDSAKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    key.write_private_key_file(str(path))
    return key


class Emulator:
    """
    An RDS on loopback. ``start()`` returns ``(host, port)``; ``stop()`` ends every session;
    ``close()`` (or leaving a ``with`` block) also withdraws the data plane's exports.

    Attributes:
        faults: Switch faults on (fail, drop, hang, truncate, garble, refuse logins).
        logins: The per-address login rate limit's bookkeeping.
        latency: Command and network latency, changed at any time.
        stats: Connections, logins and commands seen.
        state: The pool and its disks (read it to check what the RDS holds).
    """

    def __init__(self, config: EmulatorConfig, *, data_plane: DataPlane | None = None) -> None:
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_plane = data_plane or open_data_plane(
            config.data_plane,
            config.data_dir,
            config.data_address or config.listen[0],
            nvmet_root=config.nvmet_root,
        )
        self.state = PoolState(
            config.data_dir,
            pool_name=config.pool_name,
            pool_size=config.pool_size,
            data_plane=self.data_plane,
            copy_throughput=config.copy_throughput,
        )
        self.console = Console(self.state, dialect=config.dialect)
        self.host_key = load_or_create_host_key(
            config.host_key_file or config.data_dir / DEFAULT_HOST_KEY
        )
        self.faults = FaultInjector()
        self.latency = Latency()
        self.stats = EmulatorStats()
        self.logins = LoginGuard(config.login_limit)
        self._users = {u.name: u for u in config.users}
        self._users_lock = threading.Lock()
        self._rng = random.Random(0xD15C)  # noqa: S311 - junk for garbling, not secrets
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accepter: threading.Thread | None = None
        self._transports: list[paramiko.Transport] = []
        self._lock = threading.Lock()
        self.address: tuple[str, int] = config.listen
        self.rest = RestServer(self, config.rest_listen) if config.rest_listen else None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> tuple[str, int]:
        host, port = self.config.listen
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
        listener.settimeout(_POLL * 4)
        self._listener = listener
        self.address = (host, listener.getsockname()[1])
        self._stopping.clear()
        self._accepter = threading.Thread(
            target=self._accept_loop, name="emulator-accept", daemon=True
        )
        self._accepter.start()
        log.info("RDS emulator listening on %s:%d", *self.address)
        if self.rest is not None:
            self.rest.start()
        return self.address

    def stop(self) -> None:
        self._stopping.set()
        self.faults.release_hangs()
        if self._accepter is not None:
            self._accepter.join()
            self._accepter = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            transports, self._transports = self._transports, []
        for transport in transports:
            transport.close()
        if self.rest is not None:
            self.rest.stop()

    def close(self) -> None:
        """``stop()``, and withdraw the exports from the data plane (the RDS is going away)."""
        self.stop()
        self.data_plane.close()

    def disconnect_all(self) -> int:
        """Close every session from the server's side (an RDS reboot, an idle timeout)."""
        with self._lock:
            transports, self._transports = self._transports, []
        for transport in transports:
            transport.close()
        rest = self.rest.disconnect_all() if self.rest is not None else 0
        return len(transports) + rest

    def retained_channels(self) -> int:
        """
        Channels the server's transports still hold: queued for ``accept()`` or open. Zero
        once every command has finished; anything that grows with the command count is a leak.
        """
        with self._lock:
            transports = [t for t in self._transports if t.is_active()]
        held = 0
        for transport in transports:
            held += len(transport.server_accepts)
            held += len(transport._channels.values())  # type: ignore[attr-defined]  # noqa: SLF001
        return held

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- users and keys -----------------------------------------------------------------------

    def user(self, name: str) -> EmulatorUser | None:
        with self._users_lock:
            return self._users.get(name)

    def authorize(self, name: str, public_key: str) -> None:
        """Let ``name`` log in with ``public_key`` (an OpenSSH public key line)."""
        with self._users_lock:
            user = self._users.setdefault(name, EmulatorUser(name))
            user.authorized_keys.append(public_key)

    def known_hosts_line(self) -> str:
        host, port = self.address
        name = host if port == 22 else f"[{host}]:{port}"  # noqa: PLR2004
        return f"{name} {public_key_line(self.host_key)}"

    def provision_client(self, directory: pathlib.Path, user: str = "admin") -> ClientFiles:
        """
        Make a key pair for ``user`` (authorized here) and a known_hosts file naming this
        server: everything the SSH adapter needs to log in. Call after ``start()``.
        """
        directory.mkdir(parents=True, exist_ok=True)
        key = paramiko.ECDSAKey.generate()
        key_file = directory / "id_ecdsa"
        key_file.touch(mode=0o600)
        key_file.chmod(0o600)
        key.write_private_key_file(str(key_file))
        self.authorize(user, public_key_line(key))
        known_hosts = directory / "known_hosts"
        known_hosts.write_text(self.known_hosts_line() + "\n")
        return ClientFiles(user, key_file, known_hosts, *self.address)

    def provision_rest_client(
        self, directory: pathlib.Path, user: str = "admin"
    ) -> RestClientFiles:
        """
        Give ``user`` a fresh random password (kept for SSH too) and write what the REST
        adapter needs: the password file (0600) and the certificate to trust. After ``start()``.
        """
        if self.rest is None:
            raise ValueError("this emulator serves no REST API (EmulatorConfig.rest_listen)")
        directory.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(24)
        with self._users_lock:
            self._users.setdefault(user, EmulatorUser(user)).password = password
        password_file = directory / "rest-password"
        password_file.touch(mode=0o600)
        password_file.chmod(0o600)
        password_file.write_text(password + "\n")
        ca_file = directory / "rest-ca.pem"
        ca_file.write_bytes(self.rest.cert_file.read_bytes())
        return RestClientFiles(self.rest.url, user, password_file, ca_file, self.rest.fingerprint)

    # --- serving ------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        while listener is not None and not self._stopping.is_set():
            try:
                sock, _peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.stats.bump("connections")
            try:
                self._serve_connection(sock)
            except Exception:
                log.exception("could not start an SSH session")
                sock.close()

    def _serve_connection(self, sock: socket.socket) -> None:
        peer = str(sock.getpeername()[0])
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.latency.rtt > 0 or self.latency.rtt_jitter > 0:
            sock = delay_line(sock, self.latency.one_way)
        transport = ServerTransport(sock)
        transport.add_server_key(self.host_key)
        with self._lock:
            self._transports = [t for t in self._transports if t.is_active()]
            self._transports.append(transport)
        session = Session(self, peer)
        transport.start_server(event=threading.Event(), server=session)
        threading.Thread(
            target=session.hold_accepted, args=(transport,), name="emulator-accept", daemon=True
        ).start()

    def serve_exec(self, channel: paramiko.Channel, raw: bytes, session: Session) -> None:
        self.stats.bump("channels_open")
        try:
            self._answer(channel, raw, session)
        except (EOFError, OSError, paramiko.SSHException) as exc:
            log.debug("a client went away during a command: %r", exc)
            with contextlib.suppress(Exception):
                channel.close()
        except Exception:
            log.exception("exec failed")
            with contextlib.suppress(Exception):
                channel.close()
        finally:
            session.release(channel)
            self.stats.bump("channels_open", -1)

    def _answer(self, channel: paramiko.Channel, raw: bytes, session: Session) -> None:
        self.stats.bump("commands")
        try:
            line = raw.decode()
        except UnicodeDecodeError:
            line = "\x00"  # answered as the syntax error it is
        fault = self.faults.take(line)
        kind = fault.kind if fault is not None else None
        if kind is not None:
            log.info("fault injected: %s", kind.value)  # the fault suite counts these lines
        delay = self.latency.command_delay()
        if delay > 0 and self._stopping.wait(delay):
            return
        if kind is FaultKind.HANG:
            self._hang(channel)
            return
        if kind is FaultKind.DROP_BEFORE:
            self._drop(channel)
            return
        if fault is not None and kind is FaultKind.FAIL:
            output, ok = fault.message + CRLF, False
        else:
            output, ok = self._run(line, session)
        if kind is FaultKind.DROP_AFTER:
            self._drop(channel)
            return
        if kind is FaultKind.TRUNCATE:
            output = truncate(output)
        elif kind is FaultKind.GARBLE:
            output = garble(output, self._rng)
        channel.sendall(output.encode("utf-8", "replace"))
        channel.send_exit_status(0 if ok else self.config.dialect.error_exit_status)
        channel.shutdown_write()
        channel.close()

    def _run(self, line: str, session: Session) -> tuple[str, bool]:
        try:
            return self.console.run(line, width=session.width)
        except OSError as exc:
            log.exception("the emulator's storage failed")
            return f"failure: {exc.strerror or 'i/o error'}{CRLF}", False

    def _hang(self, channel: paramiko.Channel) -> None:
        while not (channel.closed or self._stopping.is_set() or self.faults.hang_released.is_set()):
            time.sleep(_POLL)
        channel.close()

    @staticmethod
    def _drop(channel: paramiko.Channel) -> None:
        transport = channel.get_transport()
        if transport is not None:
            transport.close()
