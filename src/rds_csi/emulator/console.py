"""
The RouterOS console subset the emulator answers.

One exec line is lexed (``lexer``) and parsed whole (``parser``) before anything runs (a syntax
error anywhere runs nothing, as on RouterOS), then evaluated statement by statement
(``evaluator``, with the menu verbs in ``menus``); the first failure prints its RouterOS text
and stops the line. Supported:

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

from rds_csi.emulator.dialect import Dialect
from rds_csi.emulator.evaluator import Evaluator
from rds_csi.emulator.lexer import lex
from rds_csi.emulator.parser import Parser
from rds_csi.emulator.render import CRLF
from rds_csi.emulator.state import PoolState, RosFailure
from rds_csi.emulator.values import ItemId


__all__ = ["Console", "ItemId", "RosFailure"]


class Console:
    """Runs exec lines against a ``PoolState``."""

    def __init__(self, state: PoolState, *, dialect: Dialect | None = None) -> None:
        self.state = state
        self.dialect = dialect or Dialect()

    def run(self, line: str, *, width: int | None = None) -> tuple[str, bool]:
        """Execute one exec line; return what RouterOS would print and whether it succeeded."""
        run = Evaluator(self.state, width or self.dialect.width, self.dialect)
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
