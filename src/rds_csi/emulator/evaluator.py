"""
The console's evaluator: runs a parsed line statement by statement; the first failure stops it.
"""

from __future__ import annotations

from collections.abc import Callable

from rds_csi.emulator.dialect import Dialect
from rds_csi.emulator.menus import Menus
from rds_csi.emulator.render import CRLF
from rds_csi.emulator.state import PoolState, RosFailure
from rds_csi.emulator.syntax import (
    BinOp,
    Block,
    Expr,
    If,
    Len,
    Lit,
    Local,
    MenuCmd,
    Not,
    Prop,
    Put,
    Stmt,
    Sub,
    Text,
    Var,
)
from rds_csi.emulator.values import coerce_word, compare, length, show, truthy


__all__ = ["Evaluator"]


class Evaluator:
    """Runs one parsed line: statements, expressions, and menu commands (via ``Menus``)."""

    def __init__(self, state: PoolState, width: int, dialect: Dialect) -> None:
        self.state = state
        self.out: list[str] = []
        self.menus = Menus(state, self.out, width, dialect, self.eval)

    def block(self, block: Block, scope: dict[str, object]) -> object:
        result: object = None
        for stmt in block.stmts:
            result = self.stmt(stmt, scope)
        return result

    def stmt(self, stmt: Stmt, scope: dict[str, object]) -> object:  # noqa: PLR0911 - a dispatch
        match stmt:
            case Put(expr):
                self.out.append(show(self.eval(expr, scope)) + CRLF)
                return None
            case Len(expr):
                return length(self.eval(expr, scope))
            case Local(name, expr):
                scope[name] = None if expr is None else self.eval(expr, scope)
                return None
            case If(cond, then, orelse):
                if truthy(self.eval(cond, scope)):
                    return self.block(then, dict(scope))
                if orelse is not None:
                    return self.block(orelse, dict(scope))
                return None
            case MenuCmd():
                return self.menus.command(stmt, scope)
        raise AssertionError(stmt)  # pragma: no cover

    def eval(  # noqa: C901, PLR0911 - one case per node type
        self,
        expr: Expr,
        scope: dict[str, object],
        item: Callable[[str], object] | None = None,
    ) -> object:
        match expr:
            case Lit(value):
                return coerce_word(value) if isinstance(value, str) else value
            case Text(parts):
                return "".join(p if isinstance(p, str) else show(scope.get(p[0])) for p in parts)
            case Var(name):
                return scope.get(name)
            case Sub(body):
                return self.block(body, scope)
            case Prop(name):
                if item is None:
                    raise RosFailure("syntax error (line 1 column 1)")  # pragma: no cover
                return item(name)
            case Not(inner):
                return not truthy(self.eval(inner, scope, item))
            case BinOp(op, left, right):
                if op == "&&":
                    return truthy(self.eval(left, scope, item)) and truthy(
                        self.eval(right, scope, item)
                    )
                if op == "||":
                    return truthy(self.eval(left, scope, item)) or truthy(
                        self.eval(right, scope, item)
                    )
                return compare(op, self.eval(left, scope, item), self.eval(right, scope, item))
        raise AssertionError(expr)  # pragma: no cover
