"""
Pure parsers for what RouterOS prints: ``print detail`` records, error lines, end markers.

Everything here is ``str -> values``. Output we cannot read with certainty raises
``MalformedOutput`` with the raw text attached; no other exception escapes, and nothing is
guessed (``tests/unit`` feeds these functions random and mutated output to hold them to it).

What the layout looks like (FACTS section 1, the capture from an RDS)::

    Flags: B - BLOCK-DEVICE; t - NVME-TCP-EXPORT
    31 Bt type=file slot="vm-storage-001" ... size=1 099 511 627 776 ... nvme-tcp-export=yes
          nvme-tcp-server-port=4420 nvme-tcp-server-nqn="nqn...." ...
          file-path=/raid10/vm-storage-001.img file-size=1024.0GiB file-offset=0

Lines end in CRLF; long records continue on indented lines, and over SSH exec a value may be
cut anywhere (mid-token) with the rest on the next line. Continuations are joined by reading
where the previous line stopped: inside a quoted string, a key, or right after ``=`` the cut is
mid-token; after a complete value the next line starts a new ``key=`` (or else continues the
value, cut mid-token); digit groups continue digit groups. Lines must be at least about 32
characters wider than their indent (RouterOS's narrowest is 80), so no line holds only a piece
of a property name.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from typing import Final

import attrs

from rds_csi.domain import (
    BackendError,
    MalformedOutput,
)


__all__ = [
    "Record",
    "RouterOsError",
    "is_error_text",
    "parse_detail",
    "split_reply",
]

_ANSI: Final = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_NUMBER_PREFIX: Final = re.compile(r"( *)([0-9]{1,9}) +")
_KEY_AT: Final = re.compile(r"(?:^|(?<= ))[a-z.][a-z0-9.-]*=")
_KEY_START: Final = re.compile(r"[a-z.][a-z0-9.-]*=")
_FLAGS: Final = re.compile(r"[A-Za-z ]*")
_DIGITS: Final = re.compile(r"[0-9]+( [0-9]+)*")
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME_WORD: Final = re.compile(r"[0-9]{2}:[0-9]{2}:[0-9]{2}(?= |$)")
_DIGIT_WORD: Final = re.compile(r"[0-9]+(?= |$)")
# What the scanner may take in one step in a state (a char-by-char loop made listing 10,000
# disks take seconds): key characters, a quoted value's plain characters, a bare value's.
_KEY_RUN: Final = re.compile(r"[a-z0-9.-]*")
_QUOTED_RUN: Final = re.compile(r'[^"\\]*')
_BARE_RUN: Final = re.compile(r'[^ "=]*')
_ERROR_LINE: Final = re.compile(r"[a-z][ -~]*")
_HEADER_LINE: Final = re.compile(r"[A-Za-z ;-]*[A-Za-z;-][A-Za-z ;-]*")
_LEGEND: Final = re.compile(r"Flags:(?:[A-Za-z]-[A-Z][A-Z-]*(?:;[A-Za-z]-[A-Z][A-Z-]*)*;?)?")
_MAX_ERROR_LINES: Final = 3
_MAX_DIGITS: Final = 24
_ESCAPES: Final = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "$": "$", "?": "?",
                   "_": " ", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}  # fmt: skip
_BOOLS: Final = {"yes": True, "true": True, "no": False, "false": False}


class RouterOsError(BackendError):
    """
    RouterOS printed an error instead of finishing the command.

    The backend translates the ones it knows (``CapacityExhausted``, not found); any other
    reaches the caller as the ``BackendError`` it is, RouterOS's words attached.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__("the RDS refused the command", text)


@attrs.frozen
class Record:
    """One item of a ``print detail``."""

    number: int
    flags: frozenset[str]
    fields: Mapping[str, str]
    text: str


def _clean(raw: str) -> str:
    return _ANSI.sub("", raw)


def _lines(text: str) -> list[str]:
    return re.split(r"\r\n|\n|\r", text)


def is_error_text(text: str) -> bool:
    """Whether ``text`` reads as a RouterOS error message (a few lower-case lines)."""
    lines = [line.strip() for line in _lines(_clean(text)) if line.strip()]
    return (
        0 < len(lines) <= _MAX_ERROR_LINES
        and all(_ERROR_LINE.fullmatch(line) for line in lines)
        and _NUMBER_PREFIX.match(lines[0]) is None
    )


def split_reply(raw: str, marker: str) -> str:
    """
    The output before the end marker; the marker proves the whole line ran.

    Raises:
        RouterOsError: RouterOS stopped with an error (its text).
        MalformedOutput: neither a finished answer nor an error (cut off, garbled).
    """
    text = _clean(raw)
    lines = _lines(text)
    if len(lines) >= 2 and lines[-1] == "" and lines[-2] == marker:  # noqa: PLR2004
        cut = text.rfind(marker)
        return text[:cut]
    if marker in text:
        raise MalformedOutput("the RDS printed output after the command's end marker", raw)
    if is_error_text(text):
        raise RouterOsError(" ".join(line.strip() for line in _lines(text) if line.strip()))
    if not text.strip():
        raise MalformedOutput("the RDS ended the command without any answer", raw)
    raise MalformedOutput("the RDS's answer is incomplete or garbled", raw)


# --- one record's text: key=value pairs ---------------------------------------------------


class _S(enum.Enum):
    KEY_START = 1
    IN_KEY = 2
    AFTER_EQ = 3
    IN_QUOTED = 4
    IN_ESCAPE = 5
    AFTER_QUOTED = 6
    IN_BARE = 7


_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def _run_end(pattern: re.Pattern[str], text: str, i: int) -> int:
    """Where a run of ``pattern`` (which also matches nothing) starting at ``i`` ends."""
    found = pattern.match(text, i)
    return found.end() if found is not None else i


class _Bad(Exception):
    """Internal: the record text breaks the grammar."""


def _scan(text: str) -> tuple[_S, list[tuple[str, str]], str, str]:
    """
    Read ``text`` as ``key=value`` pairs; return the state where it stopped, the complete
    pairs, and the key and value read so far (raw: quotes and escapes kept).
    """
    state, pairs, key, value, _boundary = _scan_from(text)
    return state, pairs, key, value


def _scan_from(text: str) -> tuple[_S, list[tuple[str, str]], str, str, int]:  # noqa: C901, PLR0912, PLR0915 - a state machine
    """
    ``_scan``, also returning the last boundary: the index after which a new key may start.
    Nothing before it changes how the rest is read, so a caller that appends text can scan
    again from there instead of from the beginning.
    """
    state = _S.KEY_START
    boundary = 0
    pairs: list[tuple[str, str]] = []
    key: list[str] = []
    value: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        match state:
            case _S.KEY_START:
                if ch == " ":
                    pass
                elif "a" <= ch <= "z" or ch == ".":
                    key, value = [ch], []
                    state = _S.IN_KEY
                else:
                    raise _Bad(i)
            case _S.IN_KEY:
                run = _run_end(_KEY_RUN, text, i)  # runs of plain characters in one step
                if run > i:
                    key.append(text[i:run])
                    i = run
                    continue
                if ch == "=":
                    state = _S.AFTER_EQ
                elif "a" <= ch <= "z" or "0" <= ch <= "9" or ch in ".-":
                    key.append(ch)
                else:
                    raise _Bad(i)
            case _S.AFTER_EQ:
                if ch == " ":
                    pairs.append(("".join(key), ""))
                    state = _S.KEY_START
                    boundary = i + 1
                elif ch == '"':
                    value = ['"']
                    state = _S.IN_QUOTED
                elif ch == "=":
                    raise _Bad(i)
                else:
                    value = [ch]
                    state = _S.IN_BARE
            case _S.IN_QUOTED:
                run = _run_end(_QUOTED_RUN, text, i)
                if run > i:
                    value.append(text[i:run])
                    i = run
                    continue
                value.append(ch)
                if ch == "\\":
                    state = _S.IN_ESCAPE
                elif ch == '"':
                    state = _S.AFTER_QUOTED
            case _S.IN_ESCAPE:
                value.append(ch)
                state = _S.IN_QUOTED
            case _S.AFTER_QUOTED:
                if ch != " ":
                    raise _Bad(i)
                pairs.append(("".join(key), "".join(value)))
                state = _S.KEY_START
                boundary = i + 1
            case _S.IN_BARE:
                if ch == " ":
                    sofar = "".join(value)
                    # Matched in place (pos), not on a slice: copying the rest of the text at
                    # every space made a record's parse quadratic (issue 15, 10,000 disks).
                    more = None
                    if _DIGITS.fullmatch(sofar):
                        more = _DIGIT_WORD.match(text, i + 1)
                    elif _DATE.fullmatch(sofar):
                        more = _TIME_WORD.match(text, i + 1)
                    if more is not None:  # "1 099 511", "2024-11-25 13:14:28"
                        value.append(" " + more.group(0))
                        i = more.end()
                        continue
                    pairs.append(("".join(key), sofar))
                    state = _S.KEY_START
                    nxt = text[i + 1 : i + 2]
                    if nxt and not nxt.isdigit():
                        # (after a space at the very end, or before a digit, a number or a
                        # date may yet continue in text appended later: not a boundary)
                        boundary = i + 1
                elif ch in '"=':
                    raise _Bad(i)
                else:
                    run = _run_end(_BARE_RUN, text, i)
                    value.append(text[i:run])
                    i = run
                    continue
        i += 1
    return state, pairs, "".join(key), "".join(value), boundary


def _finish(text: str) -> list[tuple[str, str]]:
    state, pairs, key, value = _scan(text)
    if state in {_S.AFTER_QUOTED, _S.IN_BARE}:
        pairs.append((key, value))
    elif state is _S.AFTER_EQ:
        pairs.append((key, ""))
    elif state is not _S.KEY_START:
        raise _Bad(len(text))
    return pairs


def _mask_quotes(text: str) -> str:
    """``text`` with the inside of quoted strings blanked, so keys are found only outside."""
    out: list[str] = []
    quoted = escaped = False
    for ch in text:
        if quoted:
            out.append("_" if ch != '"' or escaped else '"')
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        else:
            out.append(ch)
            quoted = ch == '"'
    return "".join(out)


def _join(acc: str, line: str, indent: int, start: int = 0) -> tuple[str, int]:
    """
    Append a continuation line, deciding whether the break replaced a space (see module).

    ``acc`` is scanned from ``start``, a boundary an earlier call returned, so joining a
    record's lines costs linear time, not quadratic. Returns the text and the new boundary.
    """
    state, _pairs, _key, value, boundary = _scan_from(acc[start:])
    return _joined(acc, line, indent, state, value), start + boundary


def _joined(acc: str, line: str, indent: int, state: _S, value: str) -> str:  # noqa: PLR0911 - one return per case
    exact = line[indent:] if line.startswith(" " * indent) else line.lstrip(" ")
    body = line.lstrip(" ")
    if state in {_S.IN_QUOTED, _S.IN_ESCAPE}:
        return acc + exact
    if state in {_S.IN_KEY, _S.AFTER_EQ, _S.KEY_START}:
        return acc + body
    if _KEY_START.match(body):
        return acc + " " + body
    if state is _S.IN_BARE:
        if _DIGITS.fullmatch(value) and body[:1].isdigit():
            return acc + body  # the digits are the same wherever the break was
        if _DATE.fullmatch(value) and _TIME_WORD.match(body):
            return acc + " " + body
        return acc + body
    return acc + " " + body  # after a closing quote only a new key may follow


def _unquote(raw: str, output: str) -> str:
    if not raw.startswith('"'):
        return raw
    out: list[str] = []
    i, body = 0, raw[1:-1]
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        hexa = body[i + 1 : i + 3]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif re.fullmatch(r"[0-9A-Fa-f]{2}", hexa):
            out.append(chr(int(hexa, 16)))
            i += 3
        else:
            raise MalformedOutput(f"unknown escape in {raw[:80]!r}", output)
    return "".join(out)


# --- whole print detail ----------------------------------------------------------------------


@attrs.define
class _Pending:
    number: int
    flags: frozenset[str]
    prefix: int  # width of "31 Bt "
    first: str
    rest: list[str] = attrs.field(factory=list)

    def text(self) -> str:
        """The record's lines joined back into one (see the module docstring)."""
        # The continuation indent is what every continuation line starts with; the capture has
        # it equal to the prefix width, but it is measured rather than assumed.
        leads = [len(x) - len(x.lstrip(" ")) for x in self.rest]
        indent = min((lead for lead in leads if lead), default=0)
        text, start = self.first, 0
        for line in self.rest:
            text, start = _join(text, line, indent, start)
        return text


def _record_start(line: str) -> tuple[int, frozenset[str], int, str] | None:
    """(number, flags, prefix width, first line's properties) if ``line`` starts a record."""
    head = _NUMBER_PREFIX.match(line)
    if head is None:
        return None
    rest = line[head.end() :]
    key = _KEY_AT.search(_mask_quotes(rest))
    if key is None:
        return None
    flag_part = rest[: key.start()]
    if _FLAGS.fullmatch(flag_part) is None:
        return None
    letters = flag_part.replace(" ", "")
    if len(set(letters)) != len(letters):
        return None
    return int(head.group(2)), frozenset(letters), head.end() + key.start(), rest[key.start() :]


def _skip_header(lines: Sequence[str], i: int, raw: str) -> int:
    """
    The index after the ``Flags:`` legend starting at ``lines[i]``.

    The legend may wrap anyhow: at ``; `` or mid-word, indented or not (emulator assumption
    A6). Its lines hold no ``=`` and so can never start a record; joined, with whitespace
    dropped, they must read as ``Flags:L-NAME;L-NAME...``, or the output is not understood.
    """
    header = [lines[i]]
    i += 1
    while i < len(lines) and _HEADER_LINE.fullmatch(lines[i]) and _record_start(lines[i]) is None:
        header.append(lines[i])
        i += 1
    joined = re.sub(r"\s+", "", "".join(header))
    if _LEGEND.fullmatch(joined) is None:
        raise MalformedOutput(f"unreadable flags header {joined[:80]!r}", raw)
    return i


def parse_detail(raw: str) -> tuple[Record, ...]:  # noqa: C901, PLR0912 - one pass
    """
    Parse ``print detail`` output into records.

    Raises:
        MalformedOutput: the text is not a complete ``print detail`` answer.
    """
    text = _clean(raw)
    if text and not text.endswith(("\n", "\r")):
        raise MalformedOutput("the RDS's output ended in the middle of a line", raw)
    lines = _lines(text)[:-1] if text else []
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i < len(lines) and lines[i].startswith("Flags:"):
        i = _skip_header(lines, i, raw)
    pending: list[_Pending] = []
    current: _Pending | None = None
    for line in lines[i:]:
        if _CONTROL.search(line):
            raise MalformedOutput("the RDS's output holds control characters", raw)
        if not line.strip():
            current = None  # a record separator
            continue
        lead = len(line) - len(line.lstrip(" "))
        start = _record_start(line)
        continues = current is not None and (lead >= current.prefix or start is None)
        if continues and current is not None:
            current.rest.append(line)
            continue
        if start is None:
            raise MalformedOutput(f"unexpected line {line[:80]!r}", raw)
        number, flags, prefix, first = start
        current = _Pending(number, flags, prefix, first)
        pending.append(current)
    records = []
    last = -1
    for p in pending:
        if p.number <= last:
            raise MalformedOutput("item numbers are not increasing", raw)
        last = p.number
        try:
            text = p.text()
            pairs = _finish(text)
        except _Bad:
            raise MalformedOutput(f"item {p.number} is not a list of key=value", raw) from None
        fields: dict[str, str] = {}
        for key, value in pairs:
            if key in fields:
                raise MalformedOutput(f"item {p.number} lists {key} twice", raw)
            fields[key] = _unquote(value, raw)
        records.append(Record(p.number, p.flags, fields, text))
    return tuple(records)
