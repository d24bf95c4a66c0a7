"""
Running the node's tools (nvme, losetup, mount, mkfs, blkid): argument lists, bounded time.

Every adapter that shells out goes through ``run_tool`` so the rules hold in one place: no shell,
no inherited stdin (a tool that would prompt gets EOF instead of hanging), a timeout on every call,
and the two failures that are not the tool's own answer (missing binary, time out) turned into
domain errors that carry the command line. The tool's exit status and stderr are the caller's to
judge: ``nvme connect -o json`` exits 1 on success in some nvme-cli versions, and ``blkid`` exits 2
for a blank device.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence

import attrs

from rds_csi.domain import BackendError
from rds_csi.domain.text import option_name


__all__ = ["ToolMissing", "ToolResult", "ToolTimeout", "describe", "run_tool"]

_log = logging.getLogger(__name__)
# The locale decides the language of stderr; we match on it, so pin it.
_TOOL_ENV = {"LC_ALL": "C", "LANG": "C"}


class ToolMissing(BackendError):
    """The executable is not installed (or not on PATH) on this node."""


class ToolTimeout(BackendError):
    """The tool did not finish in time; it was killed."""

    def __init__(self, message: str, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(message)


@attrs.frozen
class ToolResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def detail(self) -> str:
        """The tool's own words for an error message: stderr, else stdout, trimmed."""
        text = (self.stderr.strip() or self.stdout.strip()).replace("\n", "; ")
        return text or f"exit status {self.returncode}, no output"


def describe(argv: Sequence[str]) -> str:
    """
    A command line as a person would type it (for messages and logs only; never executed),
    with mount options (the argument after ``-o``) by name only: values may be passwords.
    """
    shown = list(argv)
    for i in range(1, len(shown)):
        if shown[i - 1] == "-o":
            shown[i] = ",".join(
                f"{name}=***" if "=" in option else name
                for option in shown[i].split(",")
                for name in [option_name(option)]
            )
    return shlex.join(shown)


def run_tool(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
) -> ToolResult:
    """
    Run ``argv`` without a shell and wait at most ``timeout`` seconds.

    Raises:
        ToolMissing: the executable does not exist.
        ToolTimeout: it ran longer than ``timeout`` (it is killed first).
        BackendError: it could not be started for another reason (permissions, ...).
    """
    args = [str(a) for a in argv]
    if any("\0" in a for a in args):
        # Never reachable with validated values; a NUL would truncate the argument silently.
        raise BackendError(f"refusing to run {describe(args)}: an argument contains NUL")
    full_env = {**os.environ, **_TOOL_ENV, **(env or {})}
    _log.debug("running %s", describe(args))
    try:
        done = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
            env=full_env,
        )
    except FileNotFoundError:
        raise ToolMissing(
            f"{args[0]!r} is not installed on this node (needed for {describe(args)})"
        ) from None
    except subprocess.TimeoutExpired:
        raise ToolTimeout(
            f"{describe(args)} did not finish within {timeout:g} s", timeout
        ) from None
    except OSError as exc:
        raise BackendError(f"cannot run {describe(args)}", exc.strerror or str(exc)) from exc
    result = ToolResult(tuple(args), done.returncode, done.stdout, done.stderr)
    _log.debug("%s exited %d", args[0], done.returncode)
    return result
