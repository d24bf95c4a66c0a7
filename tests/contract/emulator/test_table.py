"""
The emulator's disk table (issue 15): a journal line per change, still crash-safe, and the
driver's indexed queries answering exactly as a full evaluation of ``where`` does.
"""

from __future__ import annotations

import pathlib

from rds_csi.domain import Size
from rds_csi.emulator.console import Console
from rds_csi.emulator.dataplane import JsonExportsDataPlane
from rds_csi.emulator.state import DISK_TABLE, PoolState
from rds_csi.emulator.table import COMPACT_MIN, JOURNAL, read_rows

from .conftest import add_line


def _state(data: pathlib.Path) -> PoolState:
    return PoolState(
        data,
        pool_name="storage-pool",
        pool_size=Size.from_quantity("100Ti"),
        data_plane=JsonExportsDataPlane(data / "nvme-exports.json"),
    )


def _ok(console: Console, line: str) -> str:
    output, ok = console.run(line)
    assert ok, output
    return output


def _slot(i: int) -> str:
    return f"pvc-00000000-0000-0000-0000-{i:012d}"


def _add(console: Console, i: int) -> None:
    _ok(console, add_line("1M", _slot(i), f"/storage-pool/t/{_slot(i)}.img"))


def _slots(data: pathlib.Path) -> list[str]:
    found = read_rows(data / DISK_TABLE)
    assert found is not None
    return [row["slot"] for row in found[1].values()]


def test_a_change_appends_to_the_journal_and_leaves_the_snapshot(tmp_path: pathlib.Path) -> None:
    console = Console(_state(tmp_path))
    snapshot = (tmp_path / DISK_TABLE).read_bytes()
    _add(console, 1)
    _add(console, 2)
    _ok(console, f'/disk remove [find where slot="{_slot(1)}"]')
    assert (tmp_path / DISK_TABLE).read_bytes() == snapshot
    assert len((tmp_path / JOURNAL).read_bytes().splitlines()) == 3
    assert _slots(tmp_path) == [_slot(2)]


def test_a_restart_replays_the_journal_in_order(tmp_path: pathlib.Path) -> None:
    console = Console(_state(tmp_path))
    for i in range(5):
        _add(console, i)
    _ok(console, f'/disk set [find where slot="{_slot(2)}"] file-size=2M')
    _ok(console, f'/disk remove [find where slot="{_slot(0)}"]')
    again = Console(_state(tmp_path))
    assert [d.slot for d in again.state.disks()] == [_slot(i) for i in range(1, 5)]
    assert "file-size=2.0MiB" in _ok(again, f'/disk print detail where slot="{_slot(2)}"')
    _add(again, 9)  # ids keep counting from where they were
    assert [d.id for d in again.state.disks()] == sorted(d.id for d in again.state.disks())


def test_a_torn_last_line_is_dropped_and_appends_continue(tmp_path: pathlib.Path) -> None:
    console = Console(_state(tmp_path))
    _add(console, 1)
    with (tmp_path / JOURNAL).open("ab") as f:  # a kill in the middle of an append
        f.write(b'{"put":{"id":99,"slot":"half')
    again = Console(_state(tmp_path))
    assert [d.slot for d in again.state.disks()] == [_slot(1)]
    _add(again, 2)
    assert _slots(tmp_path) == [_slot(1), _slot(2)]


def test_a_kill_between_snapshot_and_journal_truncation_replays_harmlessly(
    tmp_path: pathlib.Path,
) -> None:
    console = Console(_state(tmp_path))
    for i in range(3):
        _add(console, i)
    _ok(console, f'/disk remove [find where slot="{_slot(1)}"]')
    journal = (tmp_path / JOURNAL).read_bytes()
    console.state._journal({"del": -1})
    console.state._table.snapshot(
        3, [{"id": d.id, "slot": d.slot, "file_path": d.file_path} for d in console.state.disks()]
    )
    (tmp_path / JOURNAL).write_bytes(journal)  # ... and killed before the journal was emptied
    assert [d.slot for d in _state(tmp_path).disks()] == [_slot(0), _slot(2)]


def test_the_journal_is_folded_into_the_snapshot_once_long(tmp_path: pathlib.Path) -> None:
    console = Console(_state(tmp_path))
    for i in range(COMPACT_MIN + 3):
        _add(console, i)
    assert len((tmp_path / JOURNAL).read_bytes().splitlines()) == 3
    assert _slots(tmp_path) == [_slot(i) for i in range(COMPACT_MIN + 3)]


def test_indexed_queries_answer_as_a_full_where_does(tmp_path: pathlib.Path) -> None:
    console = Console(_state(tmp_path))
    for i in range(4):
        _add(console, i)
    _ok(console, f'/disk remove [find where slot="{_slot(1)}"]')
    for slot in (_slot(2), _slot(1), "storage-pool", "nope"):
        # `slot=X` takes the index; `slot=X and slot~"."` makes the evaluator walk every item
        fast = _ok(console, f'/disk print detail where slot="{slot}"')
        slow = _ok(console, f'/disk print detail where slot="{slot}" and slot~"."')
        assert fast == slow
        assert _ok(console, f':put [/disk find where slot="{slot}"]') == _ok(
            console, f':put [/disk find where slot="{slot}" and slot~"."]'
        )
    for name in (f"storage-pool/t/{_slot(3)}.img", "storage-pool/t/none.img", "storage-pool"):
        assert _ok(console, f':put [/file find where name="{name}"]') == _ok(
            console, f':put [/file find where name="{name}" and name~"."]'
        )


def test_a_file_found_by_name_is_removed_and_its_space_returned(tmp_path: pathlib.Path) -> None:
    console = Console(_state(tmp_path))
    _add(console, 1)
    image = f"storage-pool/t/{_slot(1)}.img"
    _ok(console, f'/disk remove [find where slot="{_slot(1)}"]')
    used = console.state.used()
    _ok(console, f'/file remove [find where name="{image}"]')
    assert not (tmp_path / image).exists()
    assert console.state.used() == used - (1 << 20)
