"""
RouterOS's ``print detail`` layout: the flag header, numbered rows, wrapping, quoting, units.

Pure functions from rows to text. What the real capture shows (FACTS section 1) is reproduced
as seen; every guess is named in ``assumptions``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, Literal

import attrs

from rds_csi.domain import Size
from rds_csi.emulator import assumptions
from rds_csi.emulator.units import humanize


__all__ = [
    "CRLF",
    "Bare",
    "Grouped",
    "HeaderWrap",
    "Humanized",
    "PropValue",
    "Row",
    "WrapStyle",
    "bare_or_quoted",
    "grouped",
    "humanized",
    "quoted",
    "render_detail",
    "render_value",
    "wrap_tokens",
]

CRLF: Final = "\r\n"
WrapStyle = Literal["token", "hard", "none"]
HeaderWrap = Literal["indented", "flush", "cut", "none"]

# A bare word RouterOS would print without quotes (file-path in the capture).
_BARE_SAFE: Final = re.compile(r"[A-Za-z0-9._/:@+%-]+")


@attrs.frozen
class Grouped:
    """Bytes printed with a space every three digits (``size=1 099 511 627 776``)."""

    value: int


@attrs.frozen
class Humanized:
    """A size printed in RouterOS's display units (``file-size=1024.0GiB``)."""

    value: int


@attrs.frozen
class Bare:
    """Printed exactly as is (enums, ``-``, ``none``, ``3%``, ``.img file``, dates)."""

    value: str


def bare_or_quoted(text: str) -> Bare | str:
    """A path the way RouterOS shows ``file-path``: bare when it is one plain word."""
    return Bare(text) if _BARE_SAFE.fullmatch(text) else text


PropValue = str | bool | int | Grouped | Humanized | Bare


def grouped(value: int) -> Grouped:
    return Grouped(value)


def humanized(value: int) -> Humanized:
    return Humanized(value)


_NEEDS_ESCAPE: Final = re.compile(r'["\\\x00-\x1f\x7f]')


def quoted(text: str) -> str:
    """A RouterOS string literal as ``print`` shows it."""
    if _NEEDS_ESCAPE.search(text) is None:  # the usual case, at C speed (listing 10,000 disks)
        return f'"{text}"'
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:  # noqa: PLR2004
            out.append(f"\\{ord(ch):02X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def render_value(value: PropValue) -> str:
    match value:
        case bool():
            return "yes" if value else "no"
        case int():
            return str(value)
        case Grouped(v):
            return f"{v:,}".replace(",", " ")
        case Humanized(v):
            return humanize(Size(v)) if v else "0"
        case Bare(v):
            return v
        case str():
            return quoted(value)
    raise TypeError(value)  # pragma: no cover


@attrs.frozen
class Row:
    """One item of a ``print detail``: its global number, flag letters and properties."""

    number: int
    flags: str
    props: tuple[tuple[str, PropValue], ...]


def wrap_tokens(
    first_prefix: str, tokens: Sequence[str], width: int, style: WrapStyle
) -> list[str]:
    """
    Lay ``tokens`` out after ``first_prefix``, continuation lines indented to its width.

    ``token`` style breaks between tokens, and cuts a token that would not fit even on a fresh
    line at the width (A2). ``hard`` style cuts the whole text at every width boundary;
    ``none`` never wraps.
    """
    if style == "none":
        return [first_prefix + " ".join(tokens)]
    indent = " " * len(first_prefix)
    room = max(width - len(indent), 1)
    if style == "hard":
        text = " ".join(tokens)
        first_room = max(width - len(first_prefix), 1)
        chopped = [first_prefix + text[:first_room]]
        rest = text[first_room:]
        while rest:
            chopped.append(indent + rest[:room])
            rest = rest[room:]
        return chopped
    lines: list[str] = []
    current = first_prefix
    fresh = True  # nothing after the prefix yet
    for token in tokens:
        need = len(token) if fresh else len(token) + 1
        if len(current) + need <= width:
            current += token if fresh else " " + token
            fresh = False
            continue
        if not fresh:
            lines.append(current)
            current, fresh = indent, True
        piece = token
        while len(current) + len(piece) > width:
            cut = max(width - len(current), 1)
            lines.append(current + piece[:cut])
            current, piece = indent, piece[cut:]
        current += piece
        fresh = False
    lines.append(current)
    return lines


def _header(legend: Sequence[tuple[str, str]], width: int, wrap: HeaderWrap) -> list[str]:
    """The ``Flags:`` legend, wrapped as the dialect says (A6)."""
    entries = [f"{letter} - {name}" for letter, name in legend]
    if wrap == "none":
        return ["Flags: " + "; ".join(entries)]
    if wrap == "cut":
        text = "Flags: " + "; ".join(entries)
        return [text[i : i + width] for i in range(0, len(text), width)]
    lines: list[str] = []
    current = "Flags: "
    indent = " " * assumptions.HEADER_INDENT if wrap == "indented" else ""
    for i, entry in enumerate(entries):
        piece = entry + (";" if i < len(entries) - 1 else "")
        if current.strip() in {"Flags:", ""} or len(current) + 1 + len(piece) <= width:
            current += piece if current.endswith(" ") or not current else " " + piece
        else:
            lines.append(current)
            current = indent + piece
    lines.append(current)
    return lines


def render_detail(
    rows: Sequence[Row],
    *,
    legend: Sequence[tuple[str, str]] | None,
    width: int,
    style: WrapStyle,
    header_wrap: HeaderWrap = "indented",
) -> str:
    """
    ``print detail`` output, CRLF-terminated.

    ``legend`` is the menu's flag legend, or None for menus that print no header (``/file``).
    """
    lines: list[str] = []
    shown: list[str] = []
    if legend is not None:
        present = {letter for row in rows for letter in row.flags}
        shown = [letter for letter, _ in legend if letter in present]
        header_legend = [(f, n) for f, n in legend if f in present] if shown else list(legend)
        lines += _header(header_legend, width, header_wrap)
    numw = max((len(str(r.number)) for r in rows), default=1)
    for i, row in enumerate(rows):
        if i:
            lines.append(" ")  # A7
        column = "".join(letter if letter in row.flags else " " for letter in shown)
        prefix = f"{row.number:>{numw}} " + (column + " " if shown else "")
        tokens = [f"{key}={render_value(value)}" for key, value in row.props]
        lines += wrap_tokens(prefix, tokens, width, style)
    return "".join(line + CRLF for line in lines)
