"""
The fault suite runs only when selected (``-m fault``, ``tox -e fault``): it starts real
processes and breaks them for a couple of minutes. It prints its figures at the end of the run.
"""

from __future__ import annotations

import pytest

from tests.fault.harness import Figures


FIGURES: list[Figures] = []


@pytest.fixture(autouse=True)
def _selected(request: pytest.FixtureRequest) -> None:
    if "fault" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("kills and stops real processes for minutes: select it with -m fault")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault suite figures")
    for figures in FIGURES:
        terminalreporter.write_line(figures.line())
    total = Figures(
        "total",
        operations=sum(f.operations for f in FIGURES),
        failed=sum(f.failed for f in FIGURES),
        faults=sum(f.faults for f in FIGURES),
        orphans=sum(f.orphans for f in FIGURES),
        duplicates=sum(f.duplicates for f in FIGURES),
        missing=sum(f.missing for f in FIGURES),
        leftovers=sum(f.leftovers for f in FIGURES),
        probes=sum(f.probes for f in FIGURES),
        slowest_probe=max(f.slowest_probe for f in FIGURES),
        slowest_failed=max(f.slowest_failed for f in FIGURES),
    )
    terminalreporter.write_line(total.line())
