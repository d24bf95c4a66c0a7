"""
Contract fixtures: each port's suite runs against every implementation listed here.

A new adapter is done when it passes the suite: add a ``pytest.param`` to ``BACKENDS`` with
an id and a marker, and a branch in ``_open_backend`` that yields it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import attrs
import pytest

from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.application.ports import StorageBackend
from rds_csi.domain import DiskPath, Nqn, Size, Volume, VolumeId
from rds_csi.domain.size import GIB, TIB


@attrs.define
class BackendHarness:
    """
    One backend under test, plus what the suite needs to know about it.

    Attributes:
        base_path: Where this run puts its disk files.
        exact_accounting: Free space drops by exactly the size of each disk (the in-memory
            pool does; a real Btrfs pool with sparse files does not).
        made: Volumes the test created, deleted at teardown even when the test fails.
    """

    backend: StorageBackend
    base_path: str
    exact_accounting: bool
    made: list[VolumeId] = attrs.field(factory=list)

    def volume(self, size: int = GIB) -> Volume:
        vid = VolumeId.from_name(f"contract-{uuid.uuid4()}")
        self.made.append(vid)
        return Volume(vid, Size(size), DiskPath(self.base_path, vid), Nqn.for_volume(vid))


BACKENDS = [
    pytest.param("in-memory", id="in-memory"),
    pytest.param("real", id="real-rds", marks=pytest.mark.real_rds),
]


def _open_backend(kind: str, request: pytest.FixtureRequest) -> Iterator[BackendHarness]:
    if kind == "in-memory":
        yield BackendHarness(
            InMemoryRds(Size(TIB)), "/storage-pool/contract", exact_accounting=True
        )
        return
    if kind == "real":
        missing = [v for v in ("RDS_ADDRESS", "RDS_USER", "RDS_SSH_KEY") if not os.environ.get(v)]
        if missing:
            pytest.skip(f"no real RDS: set {', '.join(missing)} to run the suite against one")
        pytest.skip("the real-RDS backend needs the SSH adapter (issue: RouterOS SSH adapter)")
    raise AssertionError(kind)  # pragma: no cover


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest) -> Iterator[BackendHarness]:
    for h in _open_backend(request.param, request):
        try:
            yield h
        finally:
            for vid in h.made:
                h.backend.delete_volume(vid)
