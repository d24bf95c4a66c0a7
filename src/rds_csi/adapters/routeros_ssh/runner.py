"""
How fabric runs one RouterOS command line: fabric's ``Remote`` runner, fitted to RouterOS.

``fabric.Connection.run`` builds this runner (our fabric config names it as ``runners.remote``)
and drives it through invoke's life cycle. What differs from fabric's own, and why:

- The whole command, channel open and exec request included, is bounded by the ``timeout``
  given to ``run``: invoke arms its kill timer only after ``start`` returns, but paramiko
  waits for the answer to the exec request without a bound (a hung RDS would hold us forever).
- The channel is opened with that bound too, and a failure to open it is ``ChannelRefused``
  (nothing ran), so the connection can tell "the RDS closed our idle session" from a drop.
- stderr is read together with stdout (RouterOS prints errors on stdout, but a real one might
  not; ``emulator.assumptions`` A15) and decoded as one UTF-8 stream.
- A channel that closed with neither an exit status nor EOF is a dropped connection, raised as
  ``ConnectionLost``-to-be (``paramiko.SSHException``), not an answer with exit status -1.
- The calling thread reads the one (merged) stream to EOF and then waits on paramiko's status
  event: no reader threads and no 10 ms polling, which a burst of commands pays for in CPU.
"""

from __future__ import annotations

import codecs
import contextlib
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, Final

import paramiko
from fabric.runners import Remote


__all__ = ["ChannelRefused", "RouterOsRemote"]

_CHUNK: Final = 65536


class ChannelRefused(Exception):
    """No channel could be opened, so the command never ran; ``timed_out`` if it took too long."""

    def __init__(self, detail: str, *, timed_out: bool) -> None:
        super().__init__(detail)
        self.timed_out = timed_out


class RouterOsRemote(Remote):  # type: ignore[misc]  # fabric is untyped
    read_chunk_size = _CHUNK

    def start(  # the shell and environment are fabric's own business; RouterOS has neither
        self,
        command: str,
        shell: str,  # noqa: ARG002
        env: dict[str, str],  # noqa: ARG002
        timeout: Any = None,  # noqa: ARG002 - invoke passes it in opts
    ) -> None:
        budget = self.opts["timeout"]
        started = time.monotonic()
        self._arm(budget)
        try:
            # The adapter's one paramiko call beside fabric's API: fabric's create_session takes
            # no timeout, so a hung RDS would hold the call an hour (paramiko's default); shown
            # by test_ssh_connection.py::TestWhereFabricFallsShort.
            self.channel = self.context.transport.open_session(timeout=budget)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            late = budget is not None and time.monotonic() - started >= budget
            raise ChannelRefused(str(exc) or type(exc).__name__, timed_out=late) from None
        if self.timed_out:  # the timer fired while the channel was being opened
            self.channel.close()
            raise ChannelRefused("no channel within the time left", timed_out=True)
        self.channel.set_combine_stderr(True)
        try:
            self.send_start_message(command)
        except paramiko.SSHException:
            if self.timed_out:  # the timer closed the channel while the RDS sat on the request
                raise TimeoutError("no answer to the exec request in time") from None
            raise

    def _arm(self, timeout: float | None) -> None:
        self._expired = threading.Event()
        if timeout is not None:
            self._timer = threading.Timer(timeout, self.kill)
            self._timer.daemon = True
            self._timer.start()

    def start_timer(self, timeout: int) -> None:
        """Armed in ``start`` already, before the exec request."""

    def kill(self) -> None:
        self._expired.set()  # before the close wakes the reader: it must read this as a timeout
        channel = getattr(self, "channel", None)
        if channel is not None:
            with contextlib.suppress(Exception):  # the connection may be dying already
                channel.close()

    def stop(self) -> None:
        with contextlib.suppress(Exception):  # closing on a dying connection must not hide why
            super().stop()

    @property
    def timed_out(self) -> bool:
        # invoke asks whether its timer thread has ended, which it has not while in kill()
        return self._expired.is_set()

    def create_io_threads(self) -> tuple[dict[Any, Any], list[str], list[str]]:
        # One stream (stderr is merged into it), read by the calling thread in ``wait``:
        # invoke's reader threads, two per command, are CPU a burst of 50 creates pays for.
        self._out: list[str] = []
        return {}, self._out, []

    def wait(self) -> None:
        # read to EOF, then the exit status; the kill timer's close ends either wait
        self._out.extend(self.read_proc_output(self.read_proc_stdout))
        self.channel.status_event.wait()

    def read_proc_output(self, reader: Callable[[int], bytes]) -> Generator[str, None, None]:
        # one decoder per stream: a character split between two reads stays whole
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while data := reader(self.read_chunk_size):
            if text := decoder.decode(data):
                yield text
        if tail := decoder.decode(b"", final=True):
            yield tail

    def returncode(self) -> int | None:
        status: int = self.channel.recv_exit_status()
        if status == -1 and not self.channel.eof_received and not self.timed_out:
            raise paramiko.SSHException("the connection dropped during a command")
        return None if status == -1 else status
