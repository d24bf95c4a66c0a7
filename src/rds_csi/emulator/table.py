"""
The disk table on disk: a snapshot plus an append-only journal, crash-safe, O(1) per change.

    <data-dir>/disks.json      the snapshot: {"version": 1, "next_id": N, "disks": [row, ...]}
    <data-dir>/disks.journal   one JSON line per change since: {"put": row, "next_id": N}
                               or {"del": id, "next_id": N}

A change appends one line and fsyncs it before the command answers (issue 15: rewriting the
whole table made every create O(disks)). Once the journal holds as many lines as the table
has disks (and at least ``COMPACT_MIN``), the snapshot is rewritten atomically and the journal
emptied, so the rewrite costs O(1) per change on average.

Crash safety: a kill between any two steps leaves a snapshot and a journal whose replay gives
the table as of the last acknowledged change. Replay is idempotent (a put carries the whole
row, a delete names an id), so a kill after the snapshot was replaced but before the journal
was emptied replays changes the snapshot already holds, harmlessly. A torn last line (a kill
mid-append: that change was never acknowledged) is dropped.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any, Final

from rds_csi.emulator.dataplane import atomic_write_json


__all__ = ["COMPACT_MIN", "JOURNAL", "TABLE_VERSION", "DiskTableFile", "read_rows"]

TABLE_VERSION: Final = 1
JOURNAL: Final = "disks.journal"
COMPACT_MIN: Final = 256

Row = dict[str, Any]


def read_rows(table: pathlib.Path) -> tuple[int, dict[int, Row], int] | None:
    """
    ``(next_id, rows by id in table order, journal lines)`` from ``table`` and its journal;
    ``None`` if there is no table yet. For readers outside the emulator too (tests, tools).
    """
    if not table.exists():
        return None
    doc = json.loads(table.read_text())
    if doc.get("version") != TABLE_VERSION:
        raise ValueError(f"{table}: unknown table version {doc.get('version')!r}")
    next_id = int(doc["next_id"])
    rows: dict[int, Row] = {int(row["id"]): row for row in doc["disks"]}
    journal = table.with_name(JOURNAL)
    lines = journal.read_bytes().split(b"\n") if journal.exists() else []
    if lines and lines[-1] == b"":
        lines.pop()
    count = 0
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            if number == len(lines):  # torn by a kill mid-append: never acknowledged
                break
            raise ValueError(f"{journal}: line {number} is not JSON") from None
        count += 1
        next_id = max(next_id, int(entry["next_id"]))
        if "put" in entry:
            row = entry["put"]
            rows[int(row["id"])] = row
        else:
            rows.pop(int(entry["del"]), None)
    return next_id, rows, count


class DiskTableFile:
    """The table's files; callers serialize calls (``PoolState.lock``)."""

    def __init__(self, table: pathlib.Path) -> None:
        self.table = table
        self.journal = table.with_name(JOURNAL)
        self._lines = 0

    def load(self) -> tuple[int, list[Row]] | None:
        found = read_rows(self.table)
        if found is None:
            return None
        next_id, rows, lines = found
        if lines or (self.journal.exists() and self.journal.stat().st_size):
            # Folded into a fresh snapshot at start: a torn last line must not stay in front
            # of the next append.
            self.snapshot(next_id, list(rows.values()))
        return next_id, list(rows.values())

    def snapshot(self, next_id: int, rows: list[Row]) -> None:
        """The whole table, atomically; the journal emptied after it."""
        atomic_write_json(self.table, {"version": TABLE_VERSION, "next_id": next_id, "disks": rows})
        # Truncated after the snapshot is in place: a kill in between replays it again.
        with self.journal.open("wb") as f:
            os.fsync(f.fileno())
        self._lines = 0

    def append(self, entry: dict[str, object], table_size: int) -> bool:
        """Journal one change, durably; ``True`` when it is time for a ``snapshot``."""
        data = json.dumps(entry, separators=(",", ":")).encode() + b"\n"
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._lines += 1
        return self._lines >= max(COMPACT_MIN, table_size)
