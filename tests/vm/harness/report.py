"""Read what a guest pytest run left in the job directory (JUnit XML, stage timings)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class CaseResult:
    name: str  # classname::name, as pytest writes it
    outcome: str  # passed | failed | error | skipped
    seconds: float
    message: str = ""


@dataclass(frozen=True)
class JunitReport:
    cases: list[CaseResult] = field(default_factory=list)

    def by_outcome(self, outcome: str) -> list[CaseResult]:
        return [c for c in self.cases if c.outcome == outcome]

    def summary(self) -> str:
        counts = {o: len(self.by_outcome(o)) for o in ("passed", "failed", "error", "skipped")}
        return ", ".join(f"{n} {o}" for o, n in counts.items() if n)


def read_junit(path: Path) -> JunitReport | None:
    """The cases in a pytest JUnit file; None when the guest never wrote one."""
    if not path.exists():
        return None
    # Our own guest's report, read after it powered off.
    root = ET.parse(path).getroot()  # noqa: S314 - written by the test's own guest
    cases = []
    for case in root.iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = "failed" if tag == "failure" else tag
                message = (found.get("message") or "") + "\n" + (found.text or "")
                break
        cases.append(
            CaseResult(
                name=f"{case.get('classname', '')}::{case.get('name', '')}",
                outcome=outcome,
                seconds=float(case.get("time", "0")),
                message=message.strip(),
            )
        )
    return JunitReport(cases)


def read_timings(path: Path) -> list[dict[str, object]]:
    """Stage timings the guest tests appended, one JSON object per test."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
