"""
A delay line between the client's TCP socket and the SSH server: emulated network latency.

Every chunk read from one side is delivered to the other ``one_way()`` seconds after it
arrived, in order. So the SSH key exchange, authentication, channel opens and exec requests each
pay their real number of round trips, and a connect-per-command client pays for its handshakes.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable


__all__ = ["delay_line"]

_CHUNK = 65536


def delay_line(outer: socket.socket, one_way: Callable[[], float]) -> socket.socket:
    """Return the socket the server should use; ``outer`` is pumped through the delay."""
    inner, peer = socket.socketpair()
    ends = _Ends(outer, peer)
    for src, dst in ((outer, peer), (peer, outer)):
        pending: queue.Queue[tuple[float, bytes]] = queue.Queue()
        threading.Thread(target=_read, args=(src, pending, one_way), daemon=True).start()
        threading.Thread(target=_deliver, args=(dst, pending, ends), daemon=True).start()
    return inner


class _Ends:
    """Both pumped sockets; closed when both directions have ended, or at the first error."""

    def __init__(self, *sockets: socket.socket) -> None:
        self._sockets = sockets
        self._lock = threading.Lock()
        self._open_directions = 2

    def direction_done(self) -> None:
        with self._lock:
            self._open_directions -= 1
            last = self._open_directions == 0
        if last:
            self.close()

    def close(self) -> None:
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()


def _read(
    src: socket.socket, pending: queue.Queue[tuple[float, bytes]], one_way: Callable[[], float]
) -> None:
    last = 0.0
    while True:
        try:
            data = src.recv(_CHUNK)
        except OSError:
            data = b""
        last = max(last, time.monotonic() + one_way())
        pending.put((last, data))
        if not data:
            return


def _deliver(dst: socket.socket, pending: queue.Queue[tuple[float, bytes]], ends: _Ends) -> None:
    while True:
        due, data = pending.get()
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if not data:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            ends.direction_done()
            return
        try:
            dst.sendall(data)
        except OSError:
            ends.close()
            return
