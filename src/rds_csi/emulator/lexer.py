"""
The console's lexer: one exec line into tokens, and the error texts RouterOS gives for them.

RouterOS reports a bad line with its column (``syntax error (line 1 column 7)``); every token
keeps its column so the parser can do the same.
"""

from __future__ import annotations

import re
from typing import Final

import attrs

from rds_csi.emulator.state import RosFailure


__all__ = ["Tok", "bad_command", "end_of_command", "lex", "syntax_error"]

_PUNCT: Final = frozenset("[]{}();")
_OPS: Final = ("!=", "<=", ">=", "&&", "||", "=", "~", "<", ">", "!")
_NOT_WORD: Final = frozenset(' \t"$\\[]{}();=!<>~&|')


def syntax_error(col: int) -> RosFailure:
    return RosFailure(f"syntax error (line 1 column {col})")


def end_of_command(col: int) -> RosFailure:
    return RosFailure(f"expected end of command (line 1 column {col})")


def bad_command(name: str, col: int) -> RosFailure:
    return RosFailure(f"bad command name {name} (line 1 column {col})")


@attrs.frozen
class Tok:
    kind: str  # word, str, var, op, punct, end
    text: str
    col: int
    spaced: bool  # whitespace came right before it
    parts: tuple[str | tuple[str], ...] = ()  # a string's literal pieces and ($name,) refs


_ESCAPES: Final = {
    '"': '"',
    "\\": "\\",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "$": "$",
    "?": "?",
    "_": " ",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


def lex(line: str) -> list[Tok]:  # noqa: C901, PLR0912, PLR0915 - one scanner, top to bottom
    toks: list[Tok] = []
    i, n = 0, len(line)
    spaced = True
    while i < n:
        ch = line[i]
        col = i + 1
        if ch in " \t":
            i += 1
            spaced = True
            continue
        if not " " <= ch <= "~":
            raise syntax_error(col)  # A21: control characters, newlines, non-ASCII
        if ch == "#" and not toks:
            break  # a comment line
        if ch == '"':
            parts: list[str | tuple[str]] = []
            buf: list[str] = []
            i += 1
            while True:
                if i >= n:
                    raise syntax_error(col)
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    if i + 1 >= n:
                        raise syntax_error(col)
                    e = line[i + 1]
                    if e in _ESCAPES:
                        buf.append(_ESCAPES[e])
                        i += 2
                    elif re.fullmatch(r"[0-9A-Fa-f]{2}", line[i + 1 : i + 3]):
                        buf.append(chr(int(line[i + 1 : i + 3], 16)))
                        i += 3
                    else:
                        raise syntax_error(i + 1)
                    continue
                if c == "$":
                    m = re.match(r"\$([A-Za-z][A-Za-z0-9_-]*)", line[i:])
                    if m is None:
                        raise syntax_error(i + 1)
                    parts.append("".join(buf))
                    buf = []
                    parts.append((m.group(1),))
                    i += m.end()
                    continue
                if not " " <= c <= "~":
                    raise syntax_error(i + 1)
                buf.append(c)
                i += 1
            parts.append("".join(buf))
            text = "".join(p for p in parts if isinstance(p, str))
            toks.append(Tok("str", text, col, spaced, tuple(parts)))
        elif ch == "$":
            m = re.match(r"\$([A-Za-z][A-Za-z0-9_-]*)", line[i:])
            if m is None:
                raise syntax_error(col)
            toks.append(Tok("var", m.group(1), col, spaced))
            i += m.end()
        elif ch in _PUNCT:
            toks.append(Tok("punct", ch, col, spaced))
            i += 1
        elif ch in "!<>=~&|":
            op = next((o for o in _OPS if line.startswith(o, i)), None)
            if op is None:
                raise syntax_error(col)
            toks.append(Tok("op", op, col, spaced))
            i += len(op)
        elif ch == "\\":
            raise syntax_error(col)
        else:
            j = i
            while j < n and line[j] not in _NOT_WORD and " " <= line[j] <= "~":
                j += 1
            toks.append(Tok("word", line[i:j], col, spaced))
            i = j
        spaced = False
    toks.append(Tok("end", "", n + 1, spaced))
    return toks
