"""
Golden files: every real RouterOS capture we have, parsed to the records it holds.

``tests/golden/routeros/<name>.txt`` is the capture as printed (CRLF), ``<name>.json`` the
records expected from it and where the capture came from. Captures in FACTS.md that are elided
(``…``) or in table form are not ``print detail`` answers and have no golden file. When the
shared FACTS.md is at hand, the golden copy is also checked against it.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest

from rds_csi.adapters.routeros_ssh.parse import parse_detail
from rds_csi.adapters.routeros_ssh.volumes import volume_from_record


GOLDEN = pathlib.Path(__file__).parents[3] / "golden" / "routeros"
CAPTURES = sorted(p.stem for p in GOLDEN.glob("*.txt"))
_ROOT = pathlib.Path(__file__).parents[4]
FACTS_CANDIDATES = (
    _ROOT.parent / "shared" / "routeros" / "FACTS.md",
    _ROOT.parent.parent / "shared" / "routeros" / "FACTS.md",
)


def _records(name: str) -> list[dict[str, object]]:
    text = (GOLDEN / f"{name}.txt").read_bytes().decode()
    return [
        {"number": r.number, "flags": sorted(r.flags), "fields": dict(r.fields)}
        for r in parse_detail(text)
    ]


def test_there_are_golden_captures() -> None:
    assert "disk-print-detail-vm-storage-001" in CAPTURES


@pytest.mark.parametrize("name", CAPTURES)
def test_each_capture_parses_to_its_golden_records(name: str) -> None:
    expected = json.loads((GOLDEN / f"{name}.json").read_text())
    assert _records(name) == expected["records"]


def test_the_real_disk_is_not_taken_for_a_volume_of_ours() -> None:
    text = (GOLDEN / "disk-print-detail-vm-storage-001.txt").read_bytes().decode()
    (record,) = parse_detail(text)
    assert volume_from_record(record, text) is None  # slot "vm-storage-001" is not our ID


def test_the_golden_copy_matches_the_shared_facts() -> None:
    facts = next((p for p in FACTS_CANDIDATES if p.exists()), None)
    if facts is None:
        pytest.skip("shared/routeros/FACTS.md is not beside this checkout")
    block = re.search(
        r"```\n\[admin@[^\]]*\] > /disk/print detail where slot=\"vm-storage-001\"\n(.*?)```",
        facts.read_text(),
        re.DOTALL,
    )
    assert block is not None
    golden = (GOLDEN / "disk-print-detail-vm-storage-001.txt").read_bytes().decode()
    assert golden == block.group(1).replace("\n", "\r\n")
