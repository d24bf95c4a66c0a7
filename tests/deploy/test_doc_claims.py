"""Claims in the docs and manifests that the code must bear out (issue 17 item 7)."""

from __future__ import annotations

import pathlib
import re

from rds_csi.domain import CapacityRange
from rds_csi.domain.size import GIB


ROOT = pathlib.Path(__file__).resolve().parents[2]
_EVENT_CLAIM = re.compile(
    r"driver\b[^.;]{0,40}\b(?:uses|records|emits|writes)\b[^.;]{0,60}\bevents?\b"
    r"|\buses? them in (?:logs and )?events\b",
    re.IGNORECASE,
)


def _texts() -> list[tuple[pathlib.Path, str]]:
    paths = [
        ROOT / "README.md",
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "deploy").rglob("*.yaml"),
    ]
    return [(p, p.read_text()) for p in paths]


def _driver_records_events() -> bool:
    """Whether any driver module talks to the Kubernetes API about events."""
    for path in (ROOT / "src" / "rds_csi").rglob("*.py"):
        text = path.read_text()
        if "kubernetes" in text and re.search(r"\bevent", text, re.IGNORECASE):
            return True
    return False


def test_no_text_says_the_driver_records_events_unless_it_does() -> None:
    if _driver_records_events():
        return
    claims = [
        f"{path.relative_to(ROOT)}: {match[0]!r}"
        for path, text in _texts()
        for match in _EVENT_CLAIM.finditer(" ".join(text.split()))
    ]
    assert claims == []


def test_small_requests_are_rounded_up_not_refused_as_the_docs_say() -> None:
    assert CapacityRange(required=100 * 10**6).allocate().bytes == GIB
    troubleshooting = (ROOT / "docs" / "troubleshooting.md").read_text()
    assert "size is below 1 GiB" not in troubleshooting
    assert "rounded up to 1 GiB" in " ".join(troubleshooting.split())
