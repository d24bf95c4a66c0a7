"""The file-backed fake cluster shares its Leases between the processes that open it."""

from __future__ import annotations

import pathlib
import time

from rds_csi.adapters.kubernetes import FakeKubernetes


def test_two_fakes_over_one_state_file_elect_one_holder(tmp_path: pathlib.Path) -> None:
    state = str(tmp_path / "cluster.json")
    one, two = FakeKubernetes(state_file=state), FakeKubernetes(state_file=state)
    assert one.acquire_lease("reporter", "replica-1", 30)
    assert not two.acquire_lease("reporter", "replica-2", 30)
    assert one.acquire_lease("reporter", "replica-1", 30)  # renewed
    assert two.acquire_lease("other", "replica-2", 30)  # each Lease on its own


def test_an_expired_lease_is_taken_over(tmp_path: pathlib.Path) -> None:
    state = str(tmp_path / "cluster.json")
    one, two = FakeKubernetes(state_file=state), FakeKubernetes(state_file=state)
    assert one.acquire_lease("reporter", "replica-1", 1)
    time.sleep(1.1)  # replica-1 stopped renewing
    assert two.acquire_lease("reporter", "replica-2", 30)
    assert not one.acquire_lease("reporter", "replica-1", 30)
