"""
Shared pytest configuration: a test's tier marker is the first directory under ``tests/``.

The hypothesis profile comes from ``HYPOTHESIS_PROFILE``: ``dev`` (the default) keeps the unit
tier quick at a desk; CI exports ``ci`` for the thorough run.
"""

from __future__ import annotations

import os
import pathlib

import pytest
from hypothesis import HealthCheck, settings


settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

TESTS = pathlib.Path(__file__).resolve().parent
# tests/<tier>/...: unit is pure and quick, contract holds each port's implementations to one
# suite, e2e drives a real server, deploy checks manifests, chart and docs against the code,
# fault breaks real processes mid-batch (selected with -m fault only).
TIERS = ("unit", "contract", "e2e", "deploy", "fault")


def tier_of(path: pathlib.Path) -> str | None:
    """The tier a test file belongs to: the first directory under tests/ (e2e/deploy is e2e)."""
    try:
        first = path.resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None
    return first if first in TIERS else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(pathlib.Path(str(item.path)))
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))
