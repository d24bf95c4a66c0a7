"""
The StorageBackend contract under faults: a full pool, dropped connections, garbled answers,
concurrency. Faults the emulator can inject run only where ``harness.emulator`` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from rds_csi.adapters.routeros_rest import LoginRefused as RestLoginRefused
from rds_csi.adapters.routeros_ssh.connection import LoginRefused
from rds_csi.domain import (
    BackendError,
    BackendUnavailable,
    CapacityExhausted,
    MalformedOutput,
    VolumeNotFound,
)
from rds_csi.emulator import Emulator
from rds_csi.emulator.assumptions import NOT_ENOUGH_SPACE

from .conftest import BackendHarness


def _emulator(harness: BackendHarness) -> Emulator:
    if harness.emulator is None:
        pytest.skip("needs the emulator's fault injection")
    return harness.emulator


def _run_together(*calls: Callable[[], object]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


class TestPoolFull:
    def test_a_full_pool_refusing_the_disk_is_capacity_exhausted(
        self, harness: BackendHarness
    ) -> None:
        wanted = harness.volume()
        if harness.emulator is not None:
            harness.emulator.faults.fail_next(1, NOT_ENOUGH_SPACE, match="/disk add")
        elif harness.fake is not None:
            harness.fake.faults.fail_next(
                1, lambda: CapacityExhausted("injected"), operations={"create_volume"}
            )
        else:
            pytest.skip("cannot fill a real pool on purpose")
        with pytest.raises(CapacityExhausted):
            harness.backend.create_volume(wanted)
        with pytest.raises(VolumeNotFound):
            harness.backend.get_volume(wanted.volume_id)
        assert harness.waits == []  # a refusal is an answer: never retried

    def test_growing_into_a_full_pool_keeps_the_old_size(self, harness: BackendHarness) -> None:
        emulator = _emulator(harness)
        made = harness.backend.create_volume(harness.volume())
        emulator.faults.fail_next(1, NOT_ENOUGH_SPACE, match="/disk set")
        with pytest.raises(CapacityExhausted, match="not enough space"):
            harness.backend.resize_volume(made.volume_id, made.size.round_up(2 * made.size.bytes))
        assert harness.backend.get_volume(made.volume_id).size == made.size


class TestDroppedConnections:
    def test_a_connection_dropped_after_the_disk_was_made_is_retried_into_one_disk(
        self, harness: BackendHarness
    ) -> None:
        emulator = _emulator(harness)
        wanted = harness.volume()
        harness.backend.check_health()  # warm: the drop below kills a connection in use
        emulator.faults.drop_next(1, after_execute=True, match="/disk add")
        made = harness.backend.create_volume(wanted)
        assert made.volume_id == wanted.volume_id
        slots = [d.slot for d in emulator.state.disks()]
        assert slots.count(wanted.volume_id.value) == 1
        listed = [v for v in harness.backend.list_volumes() if v.volume_id == wanted.volume_id]
        assert listed == [made]
        assert harness.waits == [1.0]
        assert harness.routeros.counters.handshakes == 2

    def test_a_connection_dropped_before_anything_ran_is_retried(
        self, harness: BackendHarness
    ) -> None:
        emulator = _emulator(harness)
        emulator.faults.drop_next(2, after_execute=False, match="print detail")
        with pytest.raises(VolumeNotFound):
            harness.backend.get_volume(harness.volume().volume_id)
        assert harness.waits == [1.0, 2.0]

    def test_an_rds_that_closed_our_idle_session_costs_no_backoff(
        self, harness: BackendHarness
    ) -> None:
        emulator = _emulator(harness)
        harness.backend.check_health()
        assert emulator.disconnect_all() == 1
        made = harness.backend.create_volume(harness.volume())
        assert harness.backend.get_volume(made.volume_id) == made
        assert harness.waits == []
        assert harness.routeros.counters.handshakes == 2

    def test_an_unreachable_rds_is_unavailable_after_five_attempts(
        self, harness: BackendHarness
    ) -> None:
        emulator = _emulator(harness)
        emulator.stop()
        with pytest.raises(BackendUnavailable, match=r"cannot|refused|failed"):
            harness.backend.get_volume(harness.volume().volume_id)
        assert harness.waits == [1.0, 2.0, 4.0, 8.0]
        harness.made.clear()  # nothing to clean on a stopped RDS

    def test_a_refused_login_is_unavailable_and_not_retried(self, harness: BackendHarness) -> None:
        emulator = _emulator(harness)
        harness.routeros.close()
        emulator.faults.refuse_logins()
        with pytest.raises((LoginRefused, RestLoginRefused)) as caught:
            harness.backend.check_health()
        assert isinstance(caught.value, BackendUnavailable)
        with pytest.raises((LoginRefused, RestLoginRefused)):
            harness.backend.get_volume(harness.volume().volume_id)
        assert harness.waits == []
        emulator.faults.refuse_logins(refuse=False)

    def test_a_hanging_rds_times_out_and_is_retried(self, harness: BackendHarness) -> None:
        emulator = _emulator(harness)
        assert harness.variant is not None
        waits: list[float] = []
        impatient = harness.variant(waits, command_timeout=0.3, retry_attempts=2)
        emulator.faults.hang_next(2)
        try:
            with pytest.raises(BackendUnavailable, match="did not finish"):
                impatient.capacity()
        finally:
            impatient.close()
        assert waits == [1.0]


class TestBadAnswers:
    def test_a_garbled_answer_is_a_clear_error_with_the_raw_text(
        self, harness: BackendHarness
    ) -> None:
        emulator = _emulator(harness)
        made = harness.backend.create_volume(harness.volume())
        emulator.faults.garble_next(1, match="print detail")
        with pytest.raises(MalformedOutput) as caught:
            harness.backend.get_volume(made.volume_id)
        assert "\x00" in caught.value.raw  # the junk the emulator put in is attached
        assert "unparseable output" in str(caught.value)
        assert harness.waits == []
        assert harness.backend.get_volume(made.volume_id) == made

    def test_a_truncated_answer_is_malformed_output(self, harness: BackendHarness) -> None:
        emulator = _emulator(harness)
        made = harness.backend.create_volume(harness.volume())
        emulator.faults.truncate_next(1, match="print detail")
        with pytest.raises(MalformedOutput) as caught:
            harness.backend.list_volumes()
        assert caught.value.raw
        # the first half of a real listing: the print's header, or the JSON list's start
        assert ("Flags:" if harness.control_plane == "ssh" else "[{") in caught.value.raw
        assert made in harness.backend.list_volumes()

    def test_an_unexpected_routeros_error_carries_its_words(self, harness: BackendHarness) -> None:
        emulator = _emulator(harness)
        emulator.faults.fail_next(1, "failure: not enough permissions (9)", match="/disk add")
        with pytest.raises(BackendError, match=r"not enough permissions \(9\)") as caught:
            harness.backend.create_volume(harness.volume())
        assert not isinstance(caught.value, CapacityExhausted)


class TestRoundTrips:
    def test_create_on_a_warm_connection_costs_its_round_trips_and_no_handshake(
        self, harness: BackendHarness
    ) -> None:
        _emulator(harness)
        # SSH: one line checks, adds and prints; REST: find the slot, look for a stale
        # image, PUT (RouterOS's REST has no conditional add)
        expected = {"ssh": 1, "rest": 3}[harness.control_plane]
        harness.backend.check_health()
        before = harness.routeros.counters.snapshot()
        harness.backend.create_volume(harness.volume())
        after = harness.routeros.counters.snapshot()
        assert after["round_trips"] - before["round_trips"] == expected
        assert after["handshakes"] == before["handshakes"] == 1


class TestConcurrency:
    def test_concurrent_create_and_delete_of_one_volume_end_consistent(
        self, harness: BackendHarness
    ) -> None:
        for _ in range(5):
            wanted = harness.volume()
            errors = _run_together(
                lambda w=wanted: harness.backend.create_volume(w),  # type: ignore[misc]
                lambda w=wanted: harness.backend.delete_volume(w.volume_id),  # type: ignore[misc]
            )
            assert errors == []
            try:
                present = harness.backend.get_volume(wanted.volume_id)
            except VolumeNotFound:
                present = None
            if harness.emulator is not None:
                image = harness.emulator.state.data_dir / wanted.path.value.lstrip("/")
                in_table = [
                    d for d in harness.emulator.state.disks() if d.slot == wanted.volume_id.value
                ]
                assert image.exists() == (present is not None) == (len(in_table) == 1)

    def test_twenty_concurrent_creates_share_the_connection_pool(
        self, harness: BackendHarness
    ) -> None:
        emulator = _emulator(harness)
        wanted = [harness.volume() for _ in range(20)]
        harness.backend.check_health()
        errors = _run_together(*[lambda w=w: harness.backend.create_volume(w) for w in wanted])
        assert errors == []
        assert {w.volume_id.value for w in wanted} <= {d.slot for d in emulator.state.disks()}
        # SSH multiplexes channels on one connection; HTTP/1.1 needs one per request in
        # flight, bounded by the pool (8 by default)
        limit = {"ssh": 1, "rest": 8}[harness.control_plane]
        assert 1 <= harness.routeros.counters.handshakes <= limit
        assert emulator.stats.max_channels_open > 1
