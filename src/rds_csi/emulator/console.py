"""
The RouterOS console subset the emulator answers: a lexer, a parser and an evaluator.

One exec line is parsed whole before anything runs (a syntax error anywhere runs nothing, as
on RouterOS), then evaluated statement by statement; the first failure prints its RouterOS
text and stops the line. Supported:

- menus ``/disk`` and ``/file``, as ``/disk print`` or ``/disk/print``;
- ``/disk add | remove | set | print | find | get``, ``/file print | remove | find | get``;
- ``print`` modifiers ``detail``, ``count-only``, ``as-value``, ``without-paging``, and
  ``where`` with ``= != ~ < > <= >=``, ``and``/``&&``, ``or``/``||``, ``not``/``!``, brackets;
- ``find where ...`` and ``find key=value ...``;
- scripting: ``:put``, ``:local``, ``:len``, ``:if (...) do={...} else={...}``, ``$var``,
  ``[...]`` substitution, ``;``-separated statements.

Anything else is answered as RouterOS answers it: ``bad command name``, ``expected end of
command`` or ``syntax error``, with the line and column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

import attrs

from rds_csi.domain import InvalidArgument, Size
from rds_csi.emulator import assumptions
from rds_csi.emulator.render import CRLF, PropValue, Row, WrapStyle, render_detail, render_value
from rds_csi.emulator.state import (
    DISK_ATTRS,
    POOL_ID,
    Disk,
    FileEntry,
    PoolState,
    RosFailure,
    file_props,
    file_values,
)


__all__ = ["Console", "ItemId", "RosFailure"]

_PUNCT: Final = frozenset("[]{}();")
_OPS: Final = ("!=", "<=", ">=", "&&", "||", "=", "~", "<", ">", "!")
_NOT_WORD: Final = frozenset(' \t"$\\[]{}();=!<>~&|')
_MENUS: Final = {
    "disk": frozenset({"add", "remove", "set", "print", "find", "get"}),
    "file": frozenset({"print", "remove", "find", "get"}),
}
_PRINT_WORDS: Final = frozenset({"detail", "count-only", "as-value", "without-paging"})
_CMP_OPS: Final = frozenset({"=", "!=", "~", "<", ">", "<=", ">="})
_BOOLS: Final = {"yes": True, "true": True, "no": False, "false": False}
_DISK_TYPES: Final = frozenset(
    [
        "raid",
        "nvme-tcp",
        "iscsi",
        "nfs",
        "smb",
        "partition",
        "tmpfs",
        "ramdisk",
        "crypted",
        "sshfs",
        "file",
        "hardware",
    ]
)
_MAX_PORT: Final = 65535
_FILE_PROPS: Final = frozenset({"name", "type", "size", "last-modified"})


def _syntax(col: int) -> RosFailure:
    return RosFailure(f"syntax error (line 1 column {col})")


def _eoc(col: int) -> RosFailure:
    return RosFailure(f"expected end of command (line 1 column {col})")


def _bad_command(name: str, col: int) -> RosFailure:
    return RosFailure(f"bad command name {name} (line 1 column {col})")


# --- lexer ----------------------------------------------------------------------------------


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
            raise _syntax(col)  # A21: control characters, newlines, non-ASCII
        if ch == "#" and not toks:
            break  # a comment line
        if ch == '"':
            parts: list[str | tuple[str]] = []
            buf: list[str] = []
            i += 1
            while True:
                if i >= n:
                    raise _syntax(col)
                c = line[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\":
                    if i + 1 >= n:
                        raise _syntax(col)
                    e = line[i + 1]
                    if e in _ESCAPES:
                        buf.append(_ESCAPES[e])
                        i += 2
                    elif re.fullmatch(r"[0-9A-Fa-f]{2}", line[i + 1 : i + 3]):
                        buf.append(chr(int(line[i + 1 : i + 3], 16)))
                        i += 3
                    else:
                        raise _syntax(i + 1)
                    continue
                if c == "$":
                    m = re.match(r"\$([A-Za-z][A-Za-z0-9_-]*)", line[i:])
                    if m is None:
                        raise _syntax(i + 1)
                    parts.append("".join(buf))
                    buf = []
                    parts.append((m.group(1),))
                    i += m.end()
                    continue
                if not " " <= c <= "~":
                    raise _syntax(i + 1)
                buf.append(c)
                i += 1
            parts.append("".join(buf))
            text = "".join(p for p in parts if isinstance(p, str))
            toks.append(Tok("str", text, col, spaced, tuple(parts)))
        elif ch == "$":
            m = re.match(r"\$([A-Za-z][A-Za-z0-9_-]*)", line[i:])
            if m is None:
                raise _syntax(col)
            toks.append(Tok("var", m.group(1), col, spaced))
            i += m.end()
        elif ch in _PUNCT:
            toks.append(Tok("punct", ch, col, spaced))
            i += 1
        elif ch in "!<>=~&|":
            op = next((o for o in _OPS if line.startswith(o, i)), None)
            if op is None:
                raise _syntax(col)
            toks.append(Tok("op", op, col, spaced))
            i += len(op)
        elif ch == "\\":
            raise _syntax(col)
        else:
            j = i
            while j < n and line[j] not in _NOT_WORD and " " <= line[j] <= "~":
                j += 1
            toks.append(Tok("word", line[i:j], col, spaced))
            i = j
        spaced = False
    toks.append(Tok("end", "", n + 1, spaced))
    return toks


# --- syntax tree ----------------------------------------------------------------------------


@attrs.frozen
class Lit:
    value: object


@attrs.frozen
class Text:
    parts: tuple[str | tuple[str], ...]


@attrs.frozen
class Var:
    name: str


@attrs.frozen
class Sub:
    body: Block


@attrs.frozen
class BinOp:
    op: str
    left: Expr
    right: Expr


@attrs.frozen
class Not:
    expr: Expr


@attrs.frozen
class Prop:
    """A property name inside ``where``: its value for the item at hand."""

    name: str


Expr = Lit | Text | Var | Sub | BinOp | Not | Prop


@attrs.frozen
class Block:
    stmts: tuple[Stmt, ...]


@attrs.frozen
class Put:
    expr: Expr


@attrs.frozen
class Local:
    name: str
    expr: Expr | None


@attrs.frozen
class If:
    cond: Expr
    then: Block
    orelse: Block | None


@attrs.frozen
class Len:
    expr: Expr


@attrs.frozen
class Named:
    key: str
    value: Expr
    col: int


@attrs.frozen
class MenuCmd:
    menu: str
    verb: str
    named: tuple[Named, ...]
    positional: tuple[tuple[Expr, int], ...]
    where: Expr | None


Stmt = Put | Local | If | Len | MenuCmd


# --- parser ---------------------------------------------------------------------------------


def _known_props(menu: str) -> frozenset[str]:
    if menu == "file":
        return _FILE_PROPS
    names = {
        "type",
        "slot",
        "slot-default",
        "parent",
        "fs",
        "fs-label",
        "model",
        "size",
        "free",
        "use",
        "mount-point",
        "mount-filesystem",
        "mount-read-only",
        "compress",
        "sector-size",
        "raid-type",
        "raid-device-count",
        "raid-master",
        "state",
        "nvme-tcp-export",
        "nvme-tcp-server-port",
        "nvme-tcp-server-nqn",
        "nvme-tcp-server-allow-host-name",
        "iscsi-export",
        "nfs-sharing",
        "smb-sharing",
        "media-sharing",
        "media-interface",
        "swap",
        "file-path",
        "file-size",
        "file-offset",
    }
    names |= {name.lower() for _, name in assumptions.DISK_LEGEND}
    return frozenset(names)


class Parser:
    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
        tok = self.toks[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def at_punct(self, ch: str) -> bool:
        tok = self.peek()
        return tok.kind == "punct" and tok.text == ch

    def expect_punct(self, ch: str) -> Tok:
        tok = self.take()
        if tok.kind != "punct" or tok.text != ch:
            raise _syntax(tok.col)
        return tok

    def at_stmt_end(self) -> bool:
        tok = self.peek()
        return tok.kind == "end" or (tok.kind == "punct" and tok.text in ";]}")

    def script(self) -> Block:
        block = self.block(menu=None)
        tok = self.peek()
        if tok.kind != "end":
            raise _syntax(tok.col)
        return block

    def block(self, menu: str | None) -> Block:
        stmts: list[Stmt] = []
        while True:
            if self.at_punct(";"):
                self.take()
                continue
            if self.peek().kind == "end" or self.at_punct("]") or self.at_punct("}"):
                return Block(tuple(stmts))
            stmt, menu = self.statement(menu)
            if stmt is not None:
                stmts.append(stmt)
            if not self.at_stmt_end():
                raise _eoc(self.peek().col)

    def statement(self, menu: str | None) -> tuple[Stmt | None, str | None]:
        tok = self.peek()
        if tok.kind != "word":
            raise _syntax(tok.col)
        if tok.text.startswith(":"):
            return self.builtin(), menu
        if tok.text.startswith("/"):
            self.take()
            segments = tok.text[1:].split("/")
            name = segments[0]
            if name not in _MENUS:
                raise _bad_command(name or "/", tok.col + 1)
            verb: Tok | None = None
            if len(segments) > 2 or (len(segments) == 2 and not segments[1]):  # noqa: PLR2004
                raise _syntax(tok.col + len(name) + 1)
            if len(segments) == 2:  # noqa: PLR2004
                verb = Tok("word", segments[1], tok.col + len(name) + 2, spaced=False)
            elif self.peek().kind == "word" and not self.at_stmt_end():
                verb = self.take()
            if verb is None:
                return None, name  # "/disk" alone changes the menu for what follows
            return self.menu_command(name, verb), name
        if menu is not None:
            return self.menu_command(menu, self.take()), menu
        raise _bad_command(tok.text, tok.col)

    def builtin(self) -> Stmt:
        tok = self.take()
        name = tok.text[1:]
        if name == "put":
            return Put(Lit("") if self.at_stmt_end() else self.value(menu=None))
        if name == "len":
            return Len(self.value(menu=None))
        if name == "local":
            var = self.take()
            if var.kind != "word" or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", var.text):
                raise _syntax(var.col)
            expr = None if self.at_stmt_end() else self.value(menu=None)
            return Local(var.text, expr)
        if name == "if":
            self.expect_punct("(")
            cond = self.expr()
            self.expect_punct(")")
            then = self.block_arg("do")
            orelse = None
            if self.peek().kind == "word" and self.peek().text == "else":
                orelse = self.block_arg("else")
            return If(cond, then, orelse)
        raise _bad_command(name, tok.col + 1)

    def block_arg(self, key: str) -> Block:
        tok = self.take()
        if tok.kind != "word" or tok.text != key:
            raise _eoc(tok.col)
        eq = self.take()
        if eq.kind != "op" or eq.text != "=":
            raise _syntax(eq.col)
        self.expect_punct("{")
        body = self.block(menu=None)
        self.expect_punct("}")
        return body

    def menu_command(self, menu: str, verb: Tok) -> MenuCmd:
        if verb.kind != "word" or verb.text not in _MENUS[menu]:
            raise _bad_command(verb.text, verb.col)
        named: list[Named] = []
        positional: list[tuple[Expr, int]] = []
        where: Expr | None = None
        while not self.at_stmt_end():
            tok = self.peek()
            nxt = self.toks[self.i + 1]
            if tok.kind == "word" and nxt.kind == "op" and nxt.text == "=" and not nxt.spaced:
                self.take()
                self.take()
                if self.at_stmt_end() or self.peek().spaced:
                    value: Expr = Lit("")
                else:
                    value = self.value(menu)
                named.append(Named(tok.text, value, tok.col))
            elif tok.kind == "word" and tok.text == "where":
                self.take()
                where = self.query(menu)
                if not self.at_stmt_end():
                    raise _eoc(self.peek().col)
            elif tok.kind in {"word", "str", "var"} or (tok.kind == "punct" and tok.text in "[("):
                positional.append((self.value(menu), tok.col))
            else:
                raise _eoc(tok.col)
        return MenuCmd(menu, verb.text, tuple(named), tuple(positional), where)

    def value(self, menu: str | None) -> Expr:
        tok = self.take()
        if tok.kind == "str":
            return Text(tok.parts)
        if tok.kind == "word":
            return Lit(tok.text)
        if tok.kind == "var":
            return Var(tok.text)
        if tok.kind == "punct" and tok.text == "[":
            body = self.block(menu)
            self.expect_punct("]")
            return Sub(body)
        if tok.kind == "punct" and tok.text == "(":
            expr = self.expr()
            self.expect_punct(")")
            return expr
        raise _syntax(tok.col)

    # expressions inside ( ... )
    def expr(self) -> Expr:
        left = self.expr_and()
        while self.peek().kind == "op" and self.peek().text == "||":
            self.take()
            left = BinOp("||", left, self.expr_and())
        return left

    def expr_and(self) -> Expr:
        left = self.expr_cmp()
        while self.peek().kind == "op" and self.peek().text == "&&":
            self.take()
            left = BinOp("&&", left, self.expr_cmp())
        return left

    def expr_cmp(self) -> Expr:
        left = self.expr_unary()
        if self.peek().kind == "op" and self.peek().text in _CMP_OPS:
            op = self.take().text
            return BinOp(op, left, self.expr_unary())
        return left

    def expr_unary(self) -> Expr:
        if self.peek().kind == "op" and self.peek().text == "!":
            self.take()
            return Not(self.expr_unary())
        return self.value(menu=None)

    # where queries
    def query(self, menu: str) -> Expr:
        left = self.query_and(menu)
        while self._is_op("||", "or"):
            self.take()
            left = BinOp("||", left, self.query_and(menu))
        return left

    def query_and(self, menu: str) -> Expr:
        left = self.query_not(menu)
        while self._is_op("&&", "and"):
            self.take()
            left = BinOp("&&", left, self.query_not(menu))
        return left

    def query_not(self, menu: str) -> Expr:
        if self._is_op("!", "not"):
            self.take()
            return Not(self.query_not(menu))
        if self.at_punct("("):
            self.take()
            inner = self.query(menu)
            self.expect_punct(")")
            return inner
        tok = self.take()
        if tok.kind != "word":
            raise _syntax(tok.col)
        if tok.text not in _known_props(menu):
            raise _eoc(tok.col)  # A23
        if self.peek().kind == "op" and self.peek().text in _CMP_OPS:
            op = self.take().text
            return BinOp(op, Prop(tok.text), self.value(menu))
        return Prop(tok.text)

    def _is_op(self, op: str, word: str) -> bool:
        tok = self.peek()
        return (tok.kind == "op" and tok.text == op) or (tok.kind == "word" and tok.text == word)


# --- evaluation -----------------------------------------------------------------------------


@attrs.frozen
class ItemId:
    """An internal item id (``*1A``)."""

    menu: str
    key: int

    def __str__(self) -> str:
        return f"*{self.key:X}"


def _show(value: object) -> str:
    """How ``:put`` prints a value (A25 for lists)."""
    match value:
        case None:
            return ""
        case bool():
            return "true" if value else "false"
        case list() | tuple():
            return ";".join(_show(v) for v in value)
        case dict():
            return ";".join(f"{k}={_show(v)}" for k, v in value.items())
    return str(value)


def _coerce_word(word: str) -> object:
    if re.fullmatch(r"-?[0-9]+", word):
        return int(word)
    return word


class Console:
    """Runs exec lines against a ``PoolState``."""

    def __init__(
        self, state: PoolState, *, width: int, style: WrapStyle = assumptions.WRAP_STYLE
    ) -> None:
        self.state = state
        self.width = width
        self.style: WrapStyle = style

    def run(self, line: str, *, width: int | None = None) -> tuple[str, bool]:
        """Execute one exec line; return what RouterOS would print and whether it succeeded."""
        run = _Run(self.state, width or self.width, self.style)
        try:
            block = Parser(lex(line)).script()
        except RosFailure as exc:
            return str(exc) + CRLF, False
        with self.state.lock:
            try:
                run.block(block, {})
            except RosFailure as exc:
                run.out.append(str(exc) + CRLF)
                return "".join(run.out), False
        return "".join(run.out), True


class _Run:
    def __init__(self, state: PoolState, width: int, style: WrapStyle) -> None:
        self.state = state
        self.width = width
        self.style: WrapStyle = style
        self.out: list[str] = []

    def block(self, block: Block, scope: dict[str, object]) -> object:
        result: object = None
        for stmt in block.stmts:
            result = self.stmt(stmt, scope)
        return result

    def stmt(self, stmt: Stmt, scope: dict[str, object]) -> object:  # noqa: PLR0911 - a dispatch
        match stmt:
            case Put(expr):
                self.out.append(_show(self.eval(expr, scope)) + CRLF)
                return None
            case Len(expr):
                return _length(self.eval(expr, scope))
            case Local(name, expr):
                scope[name] = None if expr is None else self.eval(expr, scope)
                return None
            case If(cond, then, orelse):
                if _truthy(self.eval(cond, scope)):
                    return self.block(then, dict(scope))
                if orelse is not None:
                    return self.block(orelse, dict(scope))
                return None
            case MenuCmd():
                return self.command(stmt, scope)
        raise AssertionError(stmt)  # pragma: no cover

    def eval(  # noqa: C901, PLR0911 - one case per node type
        self,
        expr: Expr,
        scope: dict[str, object],
        item: Callable[[str], object] | None = None,
    ) -> object:
        match expr:
            case Lit(value):
                return _coerce_word(value) if isinstance(value, str) else value
            case Text(parts):
                return "".join(p if isinstance(p, str) else _show(scope.get(p[0])) for p in parts)
            case Var(name):
                return scope.get(name)
            case Sub(body):
                return self.block(body, scope)
            case Prop(name):
                if item is None:
                    raise RosFailure("syntax error (line 1 column 1)")  # pragma: no cover
                return item(name)
            case Not(inner):
                return not _truthy(self.eval(inner, scope, item))
            case BinOp(op, left, right):
                if op == "&&":
                    return _truthy(self.eval(left, scope, item)) and _truthy(
                        self.eval(right, scope, item)
                    )
                if op == "||":
                    return _truthy(self.eval(left, scope, item)) or _truthy(
                        self.eval(right, scope, item)
                    )
                return _compare(op, self.eval(left, scope, item), self.eval(right, scope, item))
        raise AssertionError(expr)  # pragma: no cover

    # --- menu commands ---------------------------------------------------------------------

    def command(self, cmd: MenuCmd, scope: dict[str, object]) -> object:
        handler = getattr(self, f"_{cmd.menu}_{cmd.verb}".replace("-", "_"))
        result: object = handler(cmd, scope)
        return result

    def _rows(self, menu: str) -> list[tuple[ItemId, Callable[[str], object]]]:
        """Every item of ``menu`` in print order, with a property lookup for ``where``."""
        if menu == "disk":
            return [
                (ItemId("disk", key), self._disk_lookup(disk)) for key, disk in self.state.items()
            ]
        return [
            (ItemId("file", _file_key(entry)), _lookup(file_values(entry)))
            for entry in self.state.files()
        ]

    def _disk_lookup(self, disk: Disk | None) -> Callable[[str], object]:
        """
        A disk's properties, built only when a query needs more than its slot: the driver's
        every `where`/`find` is by slot, and building all rows (a stat per image, a walk of the
        pool) made each command cost O(disks) of file system calls.
        """
        built: dict[str, object] | None = None

        def lookup(name: str) -> object:
            nonlocal built
            if name == "slot":
                return disk.slot if disk is not None else self.state.pool_name
            if built is None:
                built = self.state.disk_values(disk)
            return built.get(name, "")

        return lookup

    def _select(self, cmd: MenuCmd, scope: dict[str, object]) -> list[int]:
        """Indexes (print numbers) of the items ``where`` (or ``find k=v``) selects."""
        rows = self._rows(cmd.menu)
        chosen = []
        for index, (_, lookup) in enumerate(rows):
            if cmd.where is not None and not _truthy(self.eval(cmd.where, scope, lookup)):
                continue
            if any(
                _compare("=", lookup(n.key), self.eval(n.value, scope)) is False for n in cmd.named
            ):
                continue
            chosen.append(index)
        return chosen

    def _targets(self, cmd: MenuCmd, value: object) -> list[ItemId]:
        rows = self._rows(cmd.menu)
        ids = [item for item, _ in rows]
        found: list[ItemId] = []
        for v in value if isinstance(value, list | tuple) else [value]:
            if isinstance(v, ItemId) and v in ids:
                found.append(v)
            elif isinstance(v, int) and 0 <= v < len(ids):
                found.append(ids[v])
            elif isinstance(v, str) and re.fullmatch(r"\*[0-9A-Fa-f]+", v):
                wanted = ItemId(cmd.menu, int(v[1:], 16))
                if wanted not in ids:
                    raise RosFailure("no such item")
                found.append(wanted)
            elif isinstance(v, str) and v:
                key = "slot" if cmd.menu == "disk" else "name"
                match = [item for item, look in rows if look(key) == v]
                if not match:
                    raise RosFailure("no such item")
                found += match
            elif v is None or v == "":
                continue
            else:
                raise RosFailure("no such item")
        return found

    def _check_named(self, cmd: MenuCmd, allowed: frozenset[str]) -> None:
        for n in cmd.named:
            if n.key not in allowed:
                raise _eoc(n.col)

    def _words(self, cmd: MenuCmd, allowed: frozenset[str]) -> set[str]:
        words = set()
        for expr, col in cmd.positional:
            if not isinstance(expr, Lit) or expr.value not in allowed:
                raise _eoc(col)
            words.add(str(expr.value))
        return words

    def _print(self, cmd: MenuCmd, scope: dict[str, object]) -> object:
        self._check_named(cmd, frozenset())
        words = self._words(cmd, _PRINT_WORDS)
        chosen = self._select(cmd, scope)
        if "count-only" in words:
            self.out.append(f"{len(chosen)}{CRLF}")
            return None
        rows = self._rows(cmd.menu)
        if "as-value" in words:
            records = []
            for index in chosen:
                item, lookup = rows[index]
                record: dict[str, object] = {".id": item}
                for key, _ in self._props(cmd.menu, item):
                    record[key] = lookup(key)
                records.append(record)
            return records
        out_rows = [
            Row(index, self._flags(cmd.menu, rows[index][0]), self._props(cmd.menu, rows[index][0]))
            for index in chosen
        ]
        if "detail" in words:
            legend = assumptions.DISK_LEGEND if cmd.menu == "disk" else None
            self.out.append(
                render_detail(out_rows, legend=legend, width=self.width, style=self.style)
            )
        else:
            self.out.append(self._table(cmd.menu, out_rows))
        return None

    def _props(self, menu: str, item: ItemId) -> tuple[tuple[str, PropValue], ...]:
        if menu == "disk":
            disk = None if item.key == POOL_ID else self.state.by_id(item.key)
            return tuple(self.state.disk_props(disk))
        entry = next(e for e in self.state.files() if _file_key(e) == item.key)
        return tuple(file_props(entry))

    def _flags(self, menu: str, item: ItemId) -> str:
        if menu != "disk":
            return ""
        return self.state.disk_flags(None if item.key == POOL_ID else self.state.by_id(item.key))

    def _table(self, menu: str, rows: Sequence[Row]) -> str:
        columns = (
            ("slot", "model", "size", "free", "fs")
            if menu == "disk"
            else ("name", "type", "size", "last-modified")
        )
        header = "Columns: " + ", ".join(c.upper() for c in columns)
        table = [["#", *[c.upper() for c in columns]]]
        for row in rows:
            props = dict(row.props)
            flags = f" {row.flags}" if row.flags else ""
            table.append(
                [f"{row.number}{flags}"]
                + [render_value(props[c]).strip('"') if c in props else "" for c in columns]
            )
        widths = [max(len(r[i]) for r in table) for i in range(len(columns) + 1)]
        lines = [header] + [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table
        ]
        if menu == "disk":
            present = {letter for row in rows for letter in row.flags}
            legend = [f"{f} - {n}" for f, n in assumptions.DISK_LEGEND if f in present]
            if legend:
                lines.insert(0, "Flags: " + "; ".join(legend))
        return "".join(line + CRLF for line in lines)

    def _find(self, cmd: MenuCmd, scope: dict[str, object]) -> object:
        if cmd.positional:
            raise _eoc(cmd.positional[0][1])
        known = _known_props(cmd.menu)
        for n in cmd.named:
            if n.key not in known:
                raise _eoc(n.col)
        rows = self._rows(cmd.menu)
        return [rows[i][0] for i in self._select(cmd, scope)]

    def _get(self, cmd: MenuCmd, scope: dict[str, object]) -> object:
        self._check_named(cmd, frozenset())
        if len(cmd.positional) != 2:  # noqa: PLR2004
            raise _eoc(cmd.positional[-1][1] if cmd.positional else 1)
        (target, _), (prop, pcol) = cmd.positional
        items = self._targets(cmd, self.eval(target, scope))
        if len(items) != 1:
            raise RosFailure("no such item")
        name = self.eval(prop, scope)
        if not isinstance(name, str) or name not in _known_props(cmd.menu):
            raise RosFailure(f"input does not match any value of value-name (line 1 column {pcol})")
        rows = dict(self._rows(cmd.menu))
        return rows[items[0]](name)  # A26: sizes as raw bytes

    _disk_print = _print
    _file_print = _print
    _disk_find = _find
    _file_find = _find
    _disk_get = _get
    _file_get = _get

    def _disk_add(self, cmd: MenuCmd, scope: dict[str, object]) -> object:
        if cmd.positional:
            raise _eoc(cmd.positional[0][1])
        values, size, kind = self._disk_values(cmd, scope, adding=True)
        if kind is None:
            raise RosFailure("missing value(s) of argument(s) type")  # A22
        if kind != "file":
            raise RosFailure(assumptions.UNSUPPORTED_TYPE)
        disk = self.state.add(values, size)
        return ItemId("disk", disk.id)

    def _disk_set(self, cmd: MenuCmd, scope: dict[str, object]) -> object:
        if not cmd.positional:
            raise RosFailure("missing value(s) of argument(s) numbers")
        (target, _), *extra = cmd.positional
        if extra:
            raise _eoc(extra[0][1])
        values, size, kind = self._disk_values(cmd, scope, adding=False)
        if kind is not None:
            raise RosFailure("failure: type can not be changed")
        for item in self._targets(cmd, self.eval(target, scope)):  # A13: empty is a no-op
            disk = self._disk(item)
            self.state.update(disk, values, size)
        return None

    def _disk_remove(self, cmd: MenuCmd, scope: dict[str, object]) -> object:
        self._check_named(cmd, frozenset())
        items: list[ItemId] = []
        for expr, _ in cmd.positional:
            items += self._targets(cmd, self.eval(expr, scope))
        for item in items:
            if item.key == POOL_ID:
                raise RosFailure(assumptions.POOL_NOT_REMOVABLE)
            disk = self.state.by_id(item.key)
            if disk is not None:
                self.state.remove(disk)
        return None

    def _file_remove(self, cmd: MenuCmd, scope: dict[str, object]) -> object:
        self._check_named(cmd, frozenset())
        items: list[ItemId] = []
        for expr, _ in cmd.positional:
            items += self._targets(cmd, self.eval(expr, scope))
        entries = {_file_key(e): e for e in self.state.files()}
        for item in items:
            entry = entries.get(item.key)
            if entry is not None:
                self.state.remove_file(entry)
        return None

    def _disk(self, item: ItemId) -> Disk:
        if item.key == POOL_ID:
            raise RosFailure("failure: can not change a mounted RAID from this emulator")
        disk = self.state.by_id(item.key)
        if disk is None:
            raise RosFailure("no such item")
        return disk

    def _disk_values(
        self, cmd: MenuCmd, scope: dict[str, object], *, adding: bool
    ) -> tuple[dict[str, object], Size | None, str | None]:
        values: dict[str, object] = {}
        size: Size | None = None
        kind: str | None = None
        for n in cmd.named:
            raw = _show(self.eval(n.value, scope))
            if n.key == "type" and adding:
                if raw not in _DISK_TYPES:
                    raise RosFailure("input does not match any value of type")
                kind = raw
            elif n.key == "file-size":
                try:
                    size = Size.parse(raw)
                except InvalidArgument:
                    raise RosFailure("invalid value for argument file-size") from None
            elif n.key in DISK_ATTRS:
                values[n.key] = _convert(n.key, raw)
            else:
                raise _eoc(n.col)
        return values, size, kind


def _convert(key: str, raw: str) -> object:
    kind = type(getattr(Disk(id=0, slot="", file_path=""), DISK_ATTRS[key]))
    if kind is bool:
        if raw not in _BOOLS:
            raise RosFailure(f"input does not match any value of {key}")
        return _BOOLS[raw]
    if kind is int:
        if not re.fullmatch(r"[0-9]{1,10}", raw):
            raise RosFailure(f"invalid value for argument {key}")
        value = int(raw)
        if key == "nvme-tcp-server-port" and not 1 <= value <= _MAX_PORT:
            raise RosFailure(f"value of {key} out of range (1..{_MAX_PORT})")
        return value
    return raw


def _file_key(entry: FileEntry) -> int:
    return entry.path.lstat().st_ino if entry.path.exists() else 0


def _lookup(values: dict[str, object]) -> Callable[[str], object]:
    return lambda name: values.get(name, "")


def _length(value: object) -> int:
    if isinstance(value, list | tuple | str | dict):
        return len(value)
    return 0 if value is None else 1


def _truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    return bool(value)


def _compare(op: str, left: object, right: object) -> bool:
    if op == "~":
        try:
            return re.search(_show(right), _show(left)) is not None
        except re.error:
            raise RosFailure("failure: invalid regular expression") from None
    if isinstance(left, bool):
        right = _BOOLS.get(_show(right), right)
    elif isinstance(left, int) and not isinstance(right, int):
        text = _show(right)
        right = int(text) if re.fullmatch(r"-?[0-9]+", text) else text
    elif isinstance(left, str) or isinstance(right, str):
        left, right = _show(left), _show(right)
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if isinstance(left, int) and isinstance(right, int):
        return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
    return False
