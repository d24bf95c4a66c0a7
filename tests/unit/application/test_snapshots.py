"""The snapshot use cases against the in-memory RDS."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from rds_csi.adapters.fake_rds import InMemoryRds, InMemorySnapshots
from rds_csi.application.copies import PendingCopies
from rds_csi.application.locks import KeyedLocks
from rds_csi.application.provisioning import CreateVolume, DeleteVolume
from rds_csi.application.snapshots import (
    CreateSnapshot,
    DeleteSnapshot,
    ListSnapshots,
    PopulateVolume,
)
from rds_csi.domain import (
    AlreadyExists,
    CapacityRange,
    Conflict,
    ContentSource,
    InvalidArgument,
    InvalidPageToken,
    OperationInProgress,
    OutOfRange,
    Size,
    Snapshot,
    SnapshotId,
    SnapshotNotFound,
    Volume,
    VolumeCapability,
    VolumeId,
    VolumeNotFound,
    VolumeParameters,
)
from rds_csi.domain.size import GIB
from tests.doubles.metrics import RecordingMetrics


RWO = [VolumeCapability.mount()]
PARAMS = {"rdsAddress": "10.0.0.1"}


class World:
    def __init__(self, ready_wait: float = 5.0) -> None:
        self.rds = InMemoryRds(pool_size=Size(100 * GIB))
        self.snaps = InMemorySnapshots(self.rds, clock=lambda: 1000.0)
        self.locks = KeyedLocks()
        self.copies = PendingCopies()
        self.snapshot = CreateSnapshot(
            self.snaps,
            self.rds,
            self.locks,
            self.copies,
            clock=lambda: 2000.0,
            ready_wait=ready_wait,
        )
        self.delete = DeleteSnapshot(self.snaps, self.locks, self.copies)
        self.list = ListSnapshots(self.snaps, self.copies)
        populate = PopulateVolume(self.snaps, self.rds, self.locks, self.copies)
        self.create = CreateVolume(self.rds, self.locks, VolumeParameters(), populate)

    def volume(self, name: str, size: int = GIB) -> VolumeId:
        return self.create(name, CapacityRange(required=size), RWO, PARAMS).volume.volume_id


@pytest.fixture
def w() -> Iterator[World]:
    world = World()
    yield world
    world.copies.close()


class TestCreateSnapshot:
    def test_cuts_a_ready_snapshot_named_like_the_go_driver(self, w: World) -> None:
        source = w.volume("a", 2 * GIB)
        snap = w.snapshot("snap-1", str(source))
        assert snap.snapshot_id == SnapshotId.for_name("snap-1", source)
        assert snap.source_volume_id == source
        assert snap.size == Size(2 * GIB)
        assert snap.ready

    def test_repeat_returns_the_same_snapshot_and_time(self, w: World) -> None:
        source = w.volume("a")
        assert w.snapshot("s", str(source)) == w.snapshot("s", str(source))
        assert w.snaps.calls.count("create_snapshot") == 1

    def test_same_name_other_source_is_already_exists(self, w: World) -> None:
        a, b = w.volume("a"), w.volume("b")
        w.snapshot("s", str(a))
        with pytest.raises(AlreadyExists, match="s"):
            w.snapshot("s", str(b))

    def test_unknown_source_is_not_found(self, w: World) -> None:
        with pytest.raises(VolumeNotFound):
            w.snapshot("s", str(VolumeId.from_name("nothing")))

    @pytest.mark.parametrize(("name", "source"), [("", "pvc-x"), ("s", "")])
    def test_missing_fields_are_invalid(self, w: World, name: str, source: str) -> None:
        with pytest.raises(InvalidArgument):
            w.snapshot(name, source)

    def test_a_slow_copy_is_reported_not_ready_then_ready(self) -> None:
        w = World(ready_wait=0.05)
        source = w.volume("a")
        gate = threading.Event()
        real = w.snaps.create_snapshot

        def slow(snapshot_id: SnapshotId, source: Volume) -> Snapshot:
            gate.wait(5.0)
            return real(snapshot_id, source)

        w.snaps.create_snapshot = slow  # type: ignore[method-assign]
        first = w.snapshot("s", str(source))
        assert not first.ready
        assert first.created_at == 2000.0
        listed = w.list()
        assert [s.ready for s in listed.snapshots] == [False]
        with pytest.raises(Conflict, match="not ready"):
            w.create(
                "r",
                CapacityRange(),
                RWO,
                PARAMS,
                source=ContentSource(snapshot_id=str(first.snapshot_id)),
            )
        with pytest.raises(OperationInProgress):
            w.delete(str(first.snapshot_id))
        with pytest.raises(OperationInProgress):  # the source is held while it is copied
            DeleteVolume(w.rds, w.locks)(str(source))
        gate.set()
        for _ in range(200):
            if not w.copies.is_running(first.snapshot_id):
                break
            threading.Event().wait(0.01)
        again = w.snapshot("s", str(source))
        assert again.ready
        assert again.created_at == first.created_at
        DeleteVolume(w.rds, w.locks)(str(source))  # released with the copy
        w.copies.close()


class TestDeleteAndList:
    def test_delete_is_idempotent_and_ignores_foreign_ids(self, w: World) -> None:
        snap = w.snapshot("s", str(w.volume("a")))
        w.delete(str(snap.snapshot_id))
        w.delete(str(snap.snapshot_id))
        w.delete("someone-elses")
        assert w.list().snapshots == ()

    def test_deleting_the_source_keeps_its_snapshots(self, w: World) -> None:
        source = w.volume("a")
        snap = w.snapshot("s", str(source))
        w.rds.delete_volume(source)
        assert w.list(source_volume_id=str(source)).snapshots == (snap,)

    def test_filters_and_pages(self, w: World) -> None:
        a, b = w.volume("a"), w.volume("b")
        made = [w.snapshot(f"s{i}", str(a)) for i in range(5)] + [w.snapshot("t", str(b))]
        assert {s.snapshot_id for s in w.list().snapshots} == {s.snapshot_id for s in made}
        assert w.list(source_volume_id=str(b)).snapshots == (made[-1],)
        assert w.list(snapshot_id=str(made[2].snapshot_id)).snapshots == (made[2],)
        assert w.list(snapshot_id="not-ours").snapshots == ()
        assert w.list(source_volume_id="pvc-nope").snapshots == ()
        seen: list[Snapshot] = []
        token = ""
        while True:
            page = w.list(max_entries=2, starting_token=token)
            seen += page.snapshots
            token = page.next_token
            if not token:
                break
        assert sorted(s.snapshot_id.value for s in seen) == sorted(
            s.snapshot_id.value for s in made
        )
        assert len(seen) == len(made)

    @pytest.mark.parametrize("token", ["garbage!", "djE6cHZjLXg="])
    def test_a_token_we_did_not_issue_is_aborted(self, w: World, token: str) -> None:
        with pytest.raises(InvalidPageToken):
            w.list(starting_token=token)


class TestPopulate:
    def test_restore_is_at_least_the_snapshot_size(self, w: World) -> None:
        snap = w.snapshot("s", str(w.volume("a", 3 * GIB)))
        made = w.create(
            "r", CapacityRange(), RWO, PARAMS, source=ContentSource(str(snap.snapshot_id))
        )
        assert made.volume.size == Size(3 * GIB)
        bigger = w.create(
            "r2",
            CapacityRange(required=5 * GIB),
            RWO,
            PARAMS,
            source=ContentSource(str(snap.snapshot_id)),
        )
        assert bigger.volume.size == Size(5 * GIB)

    def test_a_limit_below_the_source_is_out_of_range(self, w: World) -> None:
        snap = w.snapshot("s", str(w.volume("a", 3 * GIB)))
        with pytest.raises(OutOfRange):
            w.create(
                "r",
                CapacityRange(required=GIB, limit=2 * GIB),
                RWO,
                PARAMS,
                source=ContentSource(str(snap.snapshot_id)),
            )
        assert VolumeId.from_name("r") not in {v.volume_id for v in w.rds.list_volumes()}

    def test_unknown_snapshot_or_source_is_not_found(self, w: World) -> None:
        ghost = SnapshotId.for_name("ghost", VolumeId.from_name("a"))
        with pytest.raises(SnapshotNotFound):
            w.create("r", CapacityRange(), RWO, PARAMS, source=ContentSource(str(ghost)))
        with pytest.raises(VolumeNotFound):
            w.create(
                "c",
                CapacityRange(),
                RWO,
                PARAMS,
                source=ContentSource(volume_id=str(VolumeId.from_name("zz"))),
            )

    def test_clone_copies_the_source_size(self, w: World) -> None:
        source = w.volume("a", 2 * GIB)
        made = w.create(
            "c", CapacityRange(), RWO, PARAMS, source=ContentSource(volume_id=str(source))
        )
        assert made.volume.size == Size(2 * GIB)
        assert made.volume.volume_id == VolumeId.from_name("c")

    def test_a_source_must_name_exactly_one_thing(self) -> None:
        with pytest.raises(InvalidArgument, match="volume_content_source"):
            ContentSource()
        with pytest.raises(InvalidArgument, match="volume_content_source"):
            ContentSource("a", "b")


def test_copies_are_measured_by_kind_and_outcome() -> None:
    metrics = RecordingMetrics()
    rds = InMemoryRds(pool_size=Size(100 * GIB))
    snaps = InMemorySnapshots(rds)
    locks, copies = KeyedLocks(), PendingCopies()
    cut = CreateSnapshot(snaps, rds, locks, copies, clock=lambda: 1.0, metrics=metrics)
    populate = PopulateVolume(snaps, rds, locks, copies, metrics=metrics)
    create = CreateVolume(rds, locks, VolumeParameters(), populate)
    source = create("a", CapacityRange(required=GIB), RWO, PARAMS).volume.volume_id
    snap = cut("s", str(source))
    create("r", CapacityRange(), RWO, PARAMS, source=ContentSource(str(snap.snapshot_id)))
    create("c", CapacityRange(), RWO, PARAMS, source=ContentSource(volume_id=str(source)))
    with pytest.raises(SnapshotNotFound):
        create(
            "x",
            CapacityRange(),
            RWO,
            PARAMS,
            source=ContentSource(str(snap.snapshot_id)[:-1] + "0"),
        )
    assert metrics.copies == [("snapshot", "ok"), ("restore", "ok"), ("clone", "ok")]
    copies.close()
