"""
Answering the queries the driver makes, ``where slot=<value>`` and ``where name=<value>``,
from the state's indexes instead of evaluating ``where`` on every item (issue 15: each
command cost a pass over all disks, and ``/file`` a walk of the pool). Anything else is
evaluated item by item, as before; both give the same answer.
"""

from __future__ import annotations

from typing import Final

from rds_csi.emulator.syntax import BinOp, Expr, Lit, MenuCmd, Prop, Text, Var


__all__ = ["KEYS", "equality_operand"]

# The property each menu indexes: unique per item.
KEYS: Final = {"disk": "slot", "file": "name"}


def equality_operand(cmd: MenuCmd) -> Expr | None:
    """
    The value side of a whole ``where <key>=<value>`` query on the menu's key, if that is what
    ``cmd`` asks (and the value does not depend on the item); else ``None``.
    """
    where = cmd.where
    if cmd.named or not isinstance(where, BinOp) or where.op != "=":
        return None
    left, right = where.left, where.right
    if isinstance(right, Prop) and not isinstance(left, Prop):
        left, right = right, left
    if not isinstance(left, Prop) or left.name != KEYS.get(cmd.menu):
        return None
    return right if isinstance(right, Lit | Text | Var) else None
