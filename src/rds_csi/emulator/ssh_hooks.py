"""
The two places the emulator reaches into paramiko's internals, kept here and nowhere else.

Why: paramiko's server mode answers an ``exec`` request only after
``ServerInterface.check_channel_exec_request`` returns, and offers no hook that runs after the
reply is on the wire. Starting the command inside that check lets a fast answer (output, exit
status, close) overtake the "request succeeded" reply, which OpenSSH clients treat as a
protocol error. So the transport's dispatch table entry for ``MSG_CHANNEL_REQUEST`` is wrapped:
paramiko's own handler runs first (and sends the reply), then the server object starts the
command. This relies on ``Transport._channel_handler_table`` and ``Channel._handle_request``,
both private; ``tests/contract/emulator`` fails loudly if a paramiko release changes them, and
pyproject pins paramiko to the major version tested.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import paramiko
from paramiko.common import MSG_CHANNEL_REQUEST


__all__ = ["AfterRequest", "ServerTransport"]


@runtime_checkable
class AfterRequest(Protocol):
    """A ``ServerInterface`` that wants to act once a channel request has been answered."""

    def start_pending(self, channel: paramiko.Channel) -> None: ...


def _handle_request_then_start(channel: paramiko.Channel, message: paramiko.Message) -> None:
    paramiko.Channel._handle_request(channel, message)  # type: ignore[attr-defined]  # noqa: SLF001
    server: object = channel.get_transport().server_object
    if isinstance(server, AfterRequest):
        server.start_pending(channel)


class ServerTransport(paramiko.Transport):
    """A server transport whose channel requests are followed by ``start_pending``."""

    _channel_handler_table = {  # noqa: RUF012 - paramiko's own class-level dispatch table
        **paramiko.Transport._channel_handler_table,  # type: ignore[attr-defined]  # noqa: SLF001
        MSG_CHANNEL_REQUEST: _handle_request_then_start,
    }
