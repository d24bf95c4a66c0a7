"""A doctor's findings: one line per check (OK, WARN, FAIL, SKIP) with the fix, or JSON."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TextIO

import attrs


__all__ = ["Check", "Findings", "Status", "fail", "ok", "render", "skip", "warn"]


class Status(enum.Enum):
    OK = "OK"
    WARN = "WARN"  # works, but look at it
    FAIL = "FAIL"  # the driver cannot work this way
    SKIP = "SKIP"  # not checked: a check it needs failed


@attrs.frozen
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.WARN, detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


def skip(name: str, needs: str) -> Check:
    return Check(name, Status.SKIP, f"needs {needs}")


@attrs.define
class Findings:
    """Checks in the order they ran; ``passed(name)`` tells a later check it may run."""

    checks: list[Check] = attrs.field(factory=list)

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    def run(self, name: str, needs: Sequence[str], probe: Callable[[], Check]) -> Check:
        """Run ``probe`` unless a check it ``needs`` did not pass (FAIL or SKIP)."""
        blocked = [n for n in needs if not self.passed(n)]
        if blocked:
            return self.add(skip(name, " and ".join(blocked)))
        return self.add(probe())

    def passed(self, name: str) -> bool:
        return any(c.name == name and c.status in {Status.OK, Status.WARN} for c in self.checks)

    @property
    def failed(self) -> bool:
        return any(c.status is Status.FAIL for c in self.checks)


def _lines(checks: Iterable[Check]) -> Iterable[str]:
    for check in checks:
        yield f"{check.status.value:<5} {check.name}: {check.detail}"
        if check.fix:
            yield f"      fix: {check.fix}"


def render(findings: Findings, out: TextIO, *, as_json: bool) -> None:
    if as_json:
        doc = {
            "ok": not findings.failed,
            "checks": [
                {"name": c.name, "status": c.status.value, "detail": c.detail, "fix": c.fix}
                for c in findings.checks
            ],
        }
        out.write(json.dumps(doc, indent=2) + "\n")
        return
    out.writelines(line + "\n" for line in _lines(findings.checks))
