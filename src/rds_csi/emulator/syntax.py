"""The console's syntax tree: what the parser builds and the evaluator walks."""

from __future__ import annotations

import attrs


__all__ = [
    "BinOp",
    "Block",
    "Expr",
    "If",
    "Len",
    "Lit",
    "Local",
    "MenuCmd",
    "Named",
    "Not",
    "Prop",
    "Put",
    "Stmt",
    "Sub",
    "Text",
    "Var",
]


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
