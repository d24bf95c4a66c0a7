"""The StorageBackend contract: what every RDS implementation must do, errors included."""

from __future__ import annotations

import threading

import attrs
import pytest

from rds_csi.domain import CapacityExhausted, Size, VolumeNotFound
from rds_csi.domain.size import GIB, MIB

from .conftest import BackendHarness


class TestCreate:
    def test_creates_an_exported_disk_as_described(self, harness: BackendHarness) -> None:
        wanted = harness.volume(GIB)
        made = harness.backend.create_volume(wanted)
        assert made == attrs.evolve(wanted, exported=True)
        assert harness.backend.get_volume(wanted.volume_id) == made

    def test_create_is_idempotent_and_returns_the_existing_disk(
        self, harness: BackendHarness
    ) -> None:
        wanted = harness.volume(GIB)
        first = harness.backend.create_volume(wanted)
        again = harness.backend.create_volume(attrs.evolve(wanted, size=Size(2 * GIB)))
        assert again == first
        ours = [v for v in harness.backend.list_volumes() if v.volume_id == wanted.volume_id]
        assert len(ours) == 1

    def test_a_disk_larger_than_the_pool_is_capacity_exhausted(
        self, harness: BackendHarness
    ) -> None:
        free = harness.backend.capacity().free.bytes
        wanted = harness.volume(free + free % MIB + 64 * GIB)
        with pytest.raises(CapacityExhausted):
            harness.backend.create_volume(wanted)
        with pytest.raises(VolumeNotFound):
            harness.backend.get_volume(wanted.volume_id)

    def test_twenty_concurrent_creates_all_land(self, harness: BackendHarness) -> None:
        wanted = [harness.volume(GIB) for _ in range(20)]
        errors: list[BaseException] = []

        def make(i: int) -> None:
            try:
                harness.backend.create_volume(wanted[i])
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=make, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        listed = {v.volume_id for v in harness.backend.list_volumes()}
        assert {w.volume_id for w in wanted} <= listed


class TestReadAndDelete:
    def test_get_of_an_unknown_volume_is_not_found(self, harness: BackendHarness) -> None:
        with pytest.raises(VolumeNotFound):
            harness.backend.get_volume(harness.volume().volume_id)

    def test_list_shows_our_volumes(self, harness: BackendHarness) -> None:
        a = harness.backend.create_volume(harness.volume())
        b = harness.backend.create_volume(harness.volume())
        listed = harness.backend.list_volumes()
        assert a in listed
        assert b in listed

    def test_delete_removes_and_is_idempotent(self, harness: BackendHarness) -> None:
        made = harness.backend.create_volume(harness.volume())
        harness.backend.delete_volume(made.volume_id)
        harness.backend.delete_volume(made.volume_id)
        with pytest.raises(VolumeNotFound):
            harness.backend.get_volume(made.volume_id)
        assert made.volume_id not in {v.volume_id for v in harness.backend.list_volumes()}

    def test_delete_of_a_volume_never_made_is_success(self, harness: BackendHarness) -> None:
        harness.backend.delete_volume(harness.volume().volume_id)


class TestResize:
    def test_grows(self, harness: BackendHarness) -> None:
        made = harness.backend.create_volume(harness.volume(GIB))
        grown = harness.backend.resize_volume(made.volume_id, Size(2 * GIB))
        assert grown.size == Size(2 * GIB)
        assert harness.backend.get_volume(made.volume_id).size == Size(2 * GIB)

    def test_a_smaller_size_changes_nothing(self, harness: BackendHarness) -> None:
        made = harness.backend.create_volume(harness.volume(2 * GIB))
        assert harness.backend.resize_volume(made.volume_id, Size(GIB)).size == Size(2 * GIB)

    def test_unknown_volume_is_not_found(self, harness: BackendHarness) -> None:
        with pytest.raises(VolumeNotFound):
            harness.backend.resize_volume(harness.volume().volume_id, Size(2 * GIB))

    def test_growing_past_the_pool_is_capacity_exhausted(self, harness: BackendHarness) -> None:
        made = harness.backend.create_volume(harness.volume(GIB))
        free = harness.backend.capacity().free.bytes
        too_big = Size(GIB + free - free % MIB + 64 * GIB)
        with pytest.raises(CapacityExhausted):
            harness.backend.resize_volume(made.volume_id, too_big)
        assert harness.backend.get_volume(made.volume_id).size == Size(GIB)


class TestCapacity:
    def test_free_is_within_total(self, harness: BackendHarness) -> None:
        report = harness.backend.capacity()
        assert 0 <= report.free.bytes <= report.total.bytes

    def test_free_space_accounts_for_disks(self, harness: BackendHarness) -> None:
        if not harness.exact_accounting:
            pytest.skip("this backend's pool does not account sparse files at creation")
        before = harness.backend.capacity().free.bytes
        harness.backend.create_volume(harness.volume(3 * GIB))
        assert harness.backend.capacity().free.bytes == before - 3 * GIB

    def test_health_check_passes_on_a_healthy_backend(self, harness: BackendHarness) -> None:
        harness.backend.check_health()
