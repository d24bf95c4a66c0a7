"""
One SSH connection to the emulator: who logs in, and which channels it may open.

Logins by password or public key for the configured users; RouterOS login options after ``+``
in the user name are stripped (a ``<N>w`` option sets the output width). An address that gave
too many wrong passwords is refused unchecked for a while (``logins.py``). Session channels with
``exec`` only; ``keepalive@openssh.com`` is refused, as RouterOS refuses it.
"""

from __future__ import annotations

import base64
import hmac
import re
import threading
from typing import TYPE_CHECKING, Any, Final

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)


if TYPE_CHECKING:
    from rds_csi.emulator.server import Emulator, EmulatorUser


__all__ = ["POLL", "Session", "split_login"]

POLL: Final = 0.05
_LOGIN_OPTIONS_RE: Final = re.compile(r"(?P<user>[^+]*)(?:\+(?P<options>[A-Za-z0-9]*))?")
_WIDTH_OPTION_RE: Final = re.compile(r"([0-9]+)w")
_MIN_WIDTH: Final = 20


def split_login(username: str) -> tuple[str, int | None]:
    """``admin+ct511w4098h`` -> (``admin``, 511): the user and the width option, if any."""
    match = _LOGIN_OPTIONS_RE.fullmatch(username)
    if match is None:
        return username, None
    width = None
    if options := match["options"]:
        found = _WIDTH_OPTION_RE.search(options)
        if found:
            width = max(int(found.group(1)), _MIN_WIDTH)
    return match["user"], width


def _key_blob(line: str) -> tuple[str, bytes] | None:
    parts = line.split()
    if len(parts) < 2:  # noqa: PLR2004
        return None
    try:
        return parts[0], base64.b64decode(parts[1], validate=True)
    except ValueError:
        return None


class Session(paramiko.ServerInterface):
    """One SSH connection: authentication, and exec channels handed to the emulator."""

    def __init__(self, emulator: Emulator, peer: str) -> None:
        self.emulator = emulator
        self.peer = peer
        self.width = emulator.config.dialect.width
        self.pending: dict[int, bytes] = {}
        self.held: dict[int, paramiko.Channel] = {}
        self.lock = threading.Lock()
        self._counted = False

    def get_allowed_auths(self, username: str) -> str:  # noqa: ARG002 - same for all
        return "publickey,password"

    def _user(self, username: str) -> EmulatorUser | None:
        name, width = split_login(username)
        if width is not None:
            self.width = width
        return self.emulator.user(name)

    def _locked_out(self) -> bool:
        if self.emulator.logins.allowed(self.peer):
            return False
        self.emulator.stats.bump("locked_out_logins")
        return True

    def _result(self, ok: bool, *, guess: bool) -> int:  # noqa: FBT001
        if ok and not self.emulator.faults.logins_refused:
            if not self._counted:  # paramiko asks twice per public key (query, then signed)
                self._counted = True
                self.emulator.stats.bump("logins")
            self.emulator.logins.succeeded(self.peer)
            return AUTH_SUCCESSFUL
        self.emulator.stats.bump("failed_logins")
        # Only a wrong password is a guess: an injected refusal is not the client's doing, and a
        # client (or its agent) offering keys that are not authorized cannot guess one.
        if guess and not ok:
            self.emulator.logins.failed(self.peer)
        return AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        if self._locked_out():
            return AUTH_FAILED
        user = self._user(username)
        ok = (
            user is not None
            and user.password is not None
            and hmac.compare_digest(user.password.encode(), password.encode())
        )
        return self._result(ok, guess=True)

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if self._locked_out():
            return AUTH_FAILED
        user = self._user(username)
        wanted = (key.get_name(), key.asbytes())
        ok = user is not None and any(_key_blob(line) == wanted for line in user.authorized_keys)
        return self._result(ok, guess=False)

    def check_channel_request(self, kind: str, chanid: int) -> int:  # noqa: ARG002
        if kind == "session":
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        with self.lock:
            self.pending[channel.get_id()] = command
        return True

    def check_channel_pty_request(self, *_args: Any) -> bool:
        return True  # accepted and ignored: exec output never depends on it here

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:  # noqa: ARG002
        return False  # exec channels only

    def check_global_request(self, kind: str, msg: paramiko.Message) -> bool:  # noqa: ARG002
        return False  # keepalive@openssh.com included, as RouterOS

    def hold_accepted(self, transport: paramiko.Transport) -> None:
        """
        Take each opened channel off the transport's accept queue and hold it until its
        command is answered (``release``), for as long as the connection lives.

        paramiko queues every channel it opens in server mode until ``accept()`` takes it, and
        that queue is the channel's only strong reference (the transport's own map is weak; a
        collected channel closes itself). Never accepting kept every channel ever opened on a
        connection; accepting and dropping closed channels before their exec request arrived.
        """
        while transport.is_active():
            channel = transport.accept(timeout=POLL * 10)
            with self.lock:
                self.held = {k: c for k, c in self.held.items() if not c.closed}
                if channel is not None:
                    self.held[channel.get_id()] = channel

    def release(self, channel: paramiko.Channel) -> None:
        with self.lock:
            self.held.pop(channel.get_id(), None)

    def start_pending(self, channel: paramiko.Channel) -> None:
        with self.lock:
            command = self.pending.pop(channel.get_id(), None)
        if command is not None:
            threading.Thread(
                target=self.emulator.serve_exec,
                args=(channel, command, self),
                name=f"emulator-exec-{channel.get_id()}",
                daemon=True,
            ).start()
