"""
The console's parser: tokens into a syntax tree, refusing what RouterOS refuses.

A whole exec line is parsed before anything runs, so a syntax error anywhere runs nothing.
"""

from __future__ import annotations

import re
from typing import Final

from rds_csi.emulator import assumptions
from rds_csi.emulator.lexer import Tok, bad_command, end_of_command, syntax_error
from rds_csi.emulator.syntax import (
    BinOp,
    Block,
    Expr,
    If,
    Len,
    Lit,
    Local,
    MenuCmd,
    Named,
    Not,
    Prop,
    Put,
    Stmt,
    Sub,
    Text,
    Var,
)


__all__ = ["MENUS", "Parser", "known_props"]

MENUS: Final = {
    "disk": frozenset({"add", "remove", "set", "print", "find", "get"}),
    "file": frozenset({"print", "remove", "find", "get", "copy"}),
}
_CMP_OPS: Final = frozenset({"=", "!=", "~", "<", ">", "<=", ">="})
FILE_PROPS: Final = frozenset({"name", "type", "size", "last-modified"})


def known_props(menu: str) -> frozenset[str]:
    if menu == "file":
        return FILE_PROPS
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
            raise syntax_error(tok.col)
        return tok

    def at_stmt_end(self) -> bool:
        tok = self.peek()
        return tok.kind == "end" or (tok.kind == "punct" and tok.text in ";]}")

    def script(self) -> Block:
        block = self.block(menu=None)
        tok = self.peek()
        if tok.kind != "end":
            raise syntax_error(tok.col)
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
                raise end_of_command(self.peek().col)

    def statement(self, menu: str | None) -> tuple[Stmt | None, str | None]:
        tok = self.peek()
        if tok.kind != "word":
            raise syntax_error(tok.col)
        if tok.text.startswith(":"):
            return self.builtin(), menu
        if tok.text.startswith("/"):
            self.take()
            segments = tok.text[1:].split("/")
            name = segments[0]
            if name not in MENUS:
                raise bad_command(name or "/", tok.col + 1)
            verb: Tok | None = None
            if len(segments) > 2 or (len(segments) == 2 and not segments[1]):  # noqa: PLR2004
                raise syntax_error(tok.col + len(name) + 1)
            if len(segments) == 2:  # noqa: PLR2004
                verb = Tok("word", segments[1], tok.col + len(name) + 2, spaced=False)
            elif self.peek().kind == "word" and not self.at_stmt_end():
                verb = self.take()
            if verb is None:
                return None, name  # "/disk" alone changes the menu for what follows
            return self.menu_command(name, verb), name
        if menu is not None:
            return self.menu_command(menu, self.take()), menu
        raise bad_command(tok.text, tok.col)

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
                raise syntax_error(var.col)
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
        raise bad_command(name, tok.col + 1)

    def block_arg(self, key: str) -> Block:
        tok = self.take()
        if tok.kind != "word" or tok.text != key:
            raise end_of_command(tok.col)
        eq = self.take()
        if eq.kind != "op" or eq.text != "=":
            raise syntax_error(eq.col)
        self.expect_punct("{")
        body = self.block(menu=None)
        self.expect_punct("}")
        return body

    def menu_command(self, menu: str, verb: Tok) -> MenuCmd:
        if verb.kind != "word" or verb.text not in MENUS[menu]:
            raise bad_command(verb.text, verb.col)
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
                    raise end_of_command(self.peek().col)
            elif tok.kind in {"word", "str", "var"} or (tok.kind == "punct" and tok.text in "[("):
                positional.append((self.value(menu), tok.col))
            else:
                raise end_of_command(tok.col)
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
        raise syntax_error(tok.col)

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
            raise syntax_error(tok.col)
        if tok.text not in known_props(menu):
            raise end_of_command(tok.col)  # A23
        if self.peek().kind == "op" and self.peek().text in _CMP_OPS:
            op = self.take().text
            return BinOp(op, Prop(tok.text), self.value(menu))
        return Prop(tok.text)

    def _is_op(self, op: str, word: str) -> bool:
        tok = self.peek()
        return (tok.kind == "op" and tok.text == op) or (tok.kind == "word" and tok.text == word)
