"""Shared pytest configuration: tier markers follow the directory a test lives in."""

from __future__ import annotations

import pathlib

import pytest
from hypothesis import HealthCheck, settings


settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci")

_TIERS = ("unit", "contract", "e2e", "fault")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = pathlib.Path(str(item.path)).parts
        for tier in _TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
