"""
The ``/disk`` and ``/file`` menus: ``print``, ``find``, ``get``, ``add``, ``set``, ``remove``.

Each verb is a method ``_<menu>_<verb>`` taking the parsed command; values in it are evaluated
through the evaluator's ``eval`` (they may hold ``[...]`` substitutions and ``$variables``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from rds_csi.domain import InvalidArgument, Size
from rds_csi.emulator import assumptions
from rds_csi.emulator.dialect import Dialect, real_pool_props, truncated_size
from rds_csi.emulator.indexed import equality_operand
from rds_csi.emulator.lexer import end_of_command
from rds_csi.emulator.parser import known_props
from rds_csi.emulator.render import (
    CRLF,
    Bare,
    Humanized,
    PropValue,
    Row,
    render_detail,
    render_value,
)
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
from rds_csi.emulator.syntax import Expr, Lit, MenuCmd
from rds_csi.emulator.units import parse_routeros_size
from rds_csi.emulator.values import ItemId, compare, disk_value, file_key, show, truthy


__all__ = ["Evaluate", "Menus"]

_PRINT_WORDS: Final = frozenset({"detail", "count-only", "as-value", "without-paging"})
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
_BYTES_PER_INODE: Final = 16384  # what the real pool's inode counts suggest; a guess


class Evaluate(Protocol):
    """The evaluator's ``eval``: an expression's value (``item`` answers ``where`` names)."""

    def __call__(
        self,
        expr: Expr,
        scope: dict[str, object],
        item: Callable[[str], object] | None = None,
    ) -> object: ...


class Menus:
    """The menu verbs of one exec line; output goes to the line's ``out``."""

    def __init__(
        self, state: PoolState, out: list[str], width: int, dialect: Dialect, evaluate: Evaluate
    ) -> None:
        self.state = state
        self.out = out
        self.width = width
        self.dialect = dialect
        self.eval = evaluate
        # /file entries an indexed find returned in this line, by key: `remove [find ...]`
        # then needs no walk of the pool to know them.
        self._files_seen: dict[int, FileEntry] = {}

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
            (ItemId("file", file_key(entry)), _lookup(file_values(entry)))
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
        operand = equality_operand(cmd)
        if operand is not None and cmd.menu == "disk":  # by the slot index (indexed.py)
            wanted = show(self.eval(operand, scope))
            if wanted == self.state.pool_name:
                return [0]
            disk = self.state.by_slot(wanted)
            return [] if disk is None else [self.state.position(disk)]
        rows = self._rows(cmd.menu)
        chosen = []
        for index, (_, lookup) in enumerate(rows):
            if cmd.where is not None and not truthy(self.eval(cmd.where, scope, lookup)):
                continue
            if any(
                compare("=", lookup(n.key), self.eval(n.value, scope)) is False for n in cmd.named
            ):
                continue
            chosen.append(index)
        return chosen

    def _known(self, menu: str, value: object) -> bool:
        """Whether ``value`` is an item id of ``menu`` that exists, told without listing all."""
        if not isinstance(value, ItemId) or value.menu != menu:
            return False
        if menu == "disk":
            return value.key == POOL_ID or self.state.by_id(value.key) is not None
        entry = self._files_seen.get(value.key)
        return entry is not None and file_key(entry) == value.key

    def _targets(self, cmd: MenuCmd, value: object) -> list[ItemId]:
        values = list(value) if isinstance(value, list | tuple) else [value]
        if all(self._known(cmd.menu, v) for v in values):  # the usual `[find ...]` result
            return [v for v in values if isinstance(v, ItemId)]
        rows = self._rows(cmd.menu)
        ids = [item for item, _ in rows]
        found: list[ItemId] = []
        for v in value if isinstance(value, list | tuple) else [value]:
            if isinstance(v, ItemId) and v in ids:
                found.append(v)
            elif isinstance(v, int) and 0 <= v - self._first(cmd.menu) < len(ids):
                found.append(ids[v - self._first(cmd.menu)])
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
                raise end_of_command(n.col)

    def _words(self, cmd: MenuCmd, allowed: frozenset[str]) -> set[str]:
        words = set()
        for expr, col in cmd.positional:
            if not isinstance(expr, Lit) or expr.value not in allowed:
                raise end_of_command(col)
            words.add(str(expr.value))
        return words

    def _print(self, cmd: MenuCmd, scope: dict[str, object]) -> object:
        self._check_named(cmd, frozenset())
        words = self._words(cmd, _PRINT_WORDS)
        chosen = self._select(cmd, scope)
        if "count-only" in words:
            self.out.append(f"{len(chosen)}{CRLF}")
            return None
        rows = self._chosen_rows(cmd.menu, chosen)
        if "as-value" in words:
            records = []
            for item, lookup in rows:
                record: dict[str, object] = {".id": item}
                for key, _ in self._props(cmd.menu, item):
                    record[key] = lookup(key)
                records.append(record)
            return records
        out_rows = [
            Row(
                index + self._first(cmd.menu),
                self._flags(cmd.menu, item),
                self._props(cmd.menu, item),
            )
            for index, (item, _) in zip(chosen, rows, strict=True)
        ]
        if "detail" in words:
            legend = assumptions.DISK_LEGEND if cmd.menu == "disk" else None
            self.out.append(
                render_detail(
                    out_rows,
                    legend=legend,
                    width=self.width,
                    style=self.dialect.wrap_style,
                    header_wrap=self.dialect.header_wrap,
                )
            )
        else:
            self.out.append(self._table(cmd.menu, out_rows))
        return None

    def _chosen_rows(
        self, menu: str, chosen: list[int]
    ) -> list[tuple[ItemId, Callable[[str], object]]]:
        """``_rows(menu)[i]`` for each chosen index; for disks without building every row."""
        if menu != "disk":
            rows = self._rows(menu)
            return [rows[index] for index in chosen]
        out = []
        for index in chosen:
            key = self.state.id_at(index) if index else POOL_ID
            disk = self.state.by_id(key) if index else None
            out.append((ItemId("disk", key), self._disk_lookup(disk)))
        return out

    def _first(self, menu: str) -> int:
        return self.dialect.first_number if menu == "disk" else 0

    def _props(self, menu: str, item: ItemId) -> tuple[tuple[str, PropValue], ...]:
        if menu == "disk":
            disk = None if item.key == POOL_ID else self.state.by_id(item.key)
            props = self.state.disk_props(disk)
            if disk is None and self.dialect.pool_row == "real":
                total = max(self.state.pool_size.bytes // _BYTES_PER_INODE, 1)
                used = len(self.state.files())
                props = real_pool_props(props, total, max(total - used, 0))
        else:
            entry = next(e for e in self.state.files() if file_key(e) == item.key)
            props = file_props(entry)
        if self.dialect.size_display == "truncate":
            props = [
                (k, Bare(truncated_size(v.value)) if isinstance(v, Humanized) and v.value else v)
                for k, v in props
            ]
        return tuple(props)

    def _found(self, cmd: MenuCmd, value: object) -> list[ItemId]:
        """The items a ``remove``/``set`` argument names; an empty ``[find]`` per dialect (A13)."""
        if value in (None, "", []) and self.dialect.empty_find == "no-such-item":
            raise RosFailure("no such item")
        return self._targets(cmd, value)

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
            raise end_of_command(cmd.positional[0][1])
        known = known_props(cmd.menu)
        for n in cmd.named:
            if n.key not in known:
                raise end_of_command(n.col)
        if cmd.menu == "file" and (operand := equality_operand(cmd)) is not None:
            try:  # by name, without walking the pool (indexed.py)
                entry = self.state.file_named(show(self.eval(operand, scope)))
            except LookupError:
                pass  # only the walk can tell: below
            else:
                if entry is None:
                    return []
                self._files_seen[file_key(entry)] = entry
                return [ItemId("file", file_key(entry))]
        if cmd.menu == "disk":
            return [item for item, _ in self._chosen_rows("disk", self._select(cmd, scope))]
        rows = self._rows(cmd.menu)
        return [rows[i][0] for i in self._select(cmd, scope)]

    def _get(self, cmd: MenuCmd, scope: dict[str, object]) -> object:
        self._check_named(cmd, frozenset())
        if len(cmd.positional) != 2:  # noqa: PLR2004
            raise end_of_command(cmd.positional[-1][1] if cmd.positional else 1)
        (target, _), (prop, pcol) = cmd.positional
        items = self._targets(cmd, self.eval(target, scope))
        if len(items) != 1:
            raise RosFailure("no such item")
        name = self.eval(prop, scope)
        if not isinstance(name, str) or name not in known_props(cmd.menu):
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
            raise end_of_command(cmd.positional[0][1])
        values, size, kind = self._disk_values(cmd, scope, adding=True)
        if kind is None:
            raise RosFailure("missing value(s) of argument(s) type")  # A22
        if kind != "file":
            raise RosFailure(assumptions.UNSUPPORTED_TYPE)
        source: Disk | None = None
        copy_from = next((n for n in cmd.named if n.key == "copy-from"), None)
        if copy_from is not None:
            found = self._found(cmd, self.eval(copy_from.value, scope))
            if len(found) != 1:
                raise RosFailure("no such item")
            source = self._disk(found[0])
        disk = self.state.add(values, size, source)
        return ItemId("disk", disk.id)

    def _file_copy(self, cmd: MenuCmd, scope: dict[str, object]) -> object:
        """``/file copy <source> name=<dest>`` (A32): a real copy of the file's data."""
        self._check_named(cmd, frozenset({"name"}))
        if len(cmd.positional) != 1:
            raise end_of_command(cmd.positional[-1][1] if cmd.positional else 1)
        source = show(self.eval(cmd.positional[0][0], scope))
        dest = next((show(self.eval(n.value, scope)) for n in cmd.named if n.key == "name"), "")
        if not dest:
            raise RosFailure("missing value(s) of argument(s) name")
        self.state.copy_file(self.state.image_path(source), self.state.image_path(dest))
        return None

    def _disk_set(self, cmd: MenuCmd, scope: dict[str, object]) -> object:
        if not cmd.positional:
            raise RosFailure("missing value(s) of argument(s) numbers")
        (target, _), *extra = cmd.positional
        if extra:
            raise end_of_command(extra[0][1])
        values, size, kind = self._disk_values(cmd, scope, adding=False)
        if kind is not None:
            raise RosFailure("failure: type can not be changed")
        for item in self._found(cmd, self.eval(target, scope)):
            disk = self._disk(item)
            self.state.update(disk, values, size)
        return None

    def _disk_remove(self, cmd: MenuCmd, scope: dict[str, object]) -> object:
        self._check_named(cmd, frozenset())
        items: list[ItemId] = []
        for expr, _ in cmd.positional:
            items += self._found(cmd, self.eval(expr, scope))
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
            items += self._found(cmd, self.eval(expr, scope))
        if all(item.key in self._files_seen for item in items):
            entries = self._files_seen
        else:
            entries = {file_key(e): e for e in self.state.files()}
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
            if n.key == "copy-from" and adding:
                continue  # the item, resolved by _disk_add
            raw = show(self.eval(n.value, scope))
            if n.key == "type" and adding:
                if raw not in _DISK_TYPES:
                    raise RosFailure("input does not match any value of type")
                kind = raw
            elif n.key == "file-size":
                try:
                    size = parse_routeros_size(raw)
                except InvalidArgument:
                    raise RosFailure("invalid value for argument file-size") from None
            elif n.key in DISK_ATTRS:
                values[n.key] = disk_value(n.key, raw)
            else:
                raise end_of_command(n.col)
        return values, size, kind


def _lookup(values: dict[str, object]) -> Callable[[str], object]:
    return lambda name: values.get(name, "")
