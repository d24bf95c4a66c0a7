"""
Request values made safe to show: in a log line, an error message, a gRPC status.

A value from a request is the caller's text, not ours: a newline in it forges a log line, a
CR rewrites a terminal, 4 MB of it floods the log and makes the status unreadable, and a mount
option may carry a password. So every such value is shown through ``printable`` (control and
other non-printable characters escaped, length capped) and mount options by name only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final


__all__ = ["VALUE_LIMIT", "option_name", "option_names", "printable", "quoted"]

VALUE_LIMIT: Final = 128
_NAMED_ESCAPES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}
_OPTION_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}")


def _escape(ch: str) -> str:
    named = _NAMED_ESCAPES.get(ch)
    if named is not None:
        return named
    if ch.isprintable():
        return ch
    return repr(ch)[1:-1]  # \x1b, \u2028: Python's own escapes


def printable(value: object, limit: int | None = VALUE_LIMIT) -> str:
    """
    ``value`` as one line of printable text: control and other non-printable characters
    (and the backslash, so an escape cannot be faked) written as Python escapes, and at most
    ``limit`` characters of the original kept, the rest counted (``limit=None``: no cap).
    """
    text = str(value)
    cut = text if limit is None or len(text) <= limit else text[:limit]
    shown = "".join(_escape(ch) for ch in cut) if not cut.isprintable() or "\\" in cut else cut
    if len(cut) < len(text):
        shown += f"...({len(text) - len(cut)} more characters)"
    return shown


def quoted(value: object, limit: int | None = VALUE_LIMIT) -> str:
    """``printable`` in single quotes, as a request value reads in a message."""
    return f"'{printable(value, limit)}'"


def option_name(option: str) -> str:
    """
    What may be shown of a mount option: its name (``password`` of ``password=...``), never
    its value; ``?`` when not even the name looks like one.
    """
    match = _OPTION_NAME_RE.match(option.partition("=")[0])
    return match.group(0) if match else "?"


def option_names(options: Iterable[str]) -> str:
    """Mount options by name, comma-separated (``ro,noatime,uid``), or ``-`` for none."""
    return ",".join(option_name(o) for o in options) or "-"
