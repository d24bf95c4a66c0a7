"""
The SnapshotBackend contract over the in-memory RDS and the emulator (over SSH in every
dialect, and over REST; both copy methods); on the emulator the data itself is checked byte
for byte.
"""

from __future__ import annotations

import os
import pathlib
import time
import uuid
from collections.abc import Iterator

import attrs
import pytest

from rds_csi.adapters.fake_rds import InMemoryRds, InMemorySnapshots
from rds_csi.adapters.routeros_rest import RouterOsRestBackend
from rds_csi.adapters.routeros_rest.snapshots import RouterOsRestSnapshots
from rds_csi.adapters.routeros_ssh import RouterOsSshBackend
from rds_csi.adapters.routeros_ssh.commands import SNAPSHOT_METHODS
from rds_csi.adapters.routeros_ssh.snapshots import RouterOsSnapshots
from rds_csi.application.copies import PendingCopies
from rds_csi.application.locks import KeyedLocks
from rds_csi.application.ports import SnapshotBackend, StorageBackend
from rds_csi.application.snapshots import CreateSnapshot
from rds_csi.domain import (
    BackendError,
    CapacityExhausted,
    DiskPath,
    MalformedOutput,
    Nqn,
    Size,
    Snapshot,
    SnapshotId,
    SnapshotNotFound,
    Volume,
    VolumeId,
    VolumeNotFound,
)
from rds_csi.domain.size import GIB, MIB, TIB
from rds_csi.emulator import DIALECTS, Emulator
from rds_csi.entrypoints.container import open_ssh_backend
from rds_csi.entrypoints.rest_wiring import emulator_rest_settings, open_rest_backend

from .conftest import (
    EMULATOR_BASE,
    REAL_RDS_REST_VARS,
    REAL_RDS_VARS,
    emulator_backend,
    emulator_rest_backend,
    real_rds_rest_settings,
    real_rds_settings,
    start_emulator,
)


@attrs.define
class SnapHarness:
    volumes: StorageBackend
    snapshots: SnapshotBackend
    emulator: Emulator | None = None
    base_path: str = EMULATOR_BASE
    made: list[VolumeId] = attrs.field(factory=list)

    def volume(self, size: int = GIB) -> Volume:
        vid = VolumeId.from_name(f"contract-{uuid.uuid4()}")
        self.made.append(vid)
        return Volume(vid, Size(size), DiskPath(self.base_path, vid), Nqn.for_volume(vid))

    def cleanup(self) -> None:
        """Every snapshot of a volume this test made, and the volumes (failed tests too)."""
        mine = {v.value for v in self.made}
        for snap in self.snapshots.list_snapshots():
            if snap.source_volume_id.value in mine:
                self.snapshots.delete_snapshot(snap.snapshot_id)
        for vid in self.made:
            self.volumes.delete_volume(vid)

    def made_volume(self, size: int = GIB) -> Volume:
        return self.volumes.create_volume(self.volume(size))

    def image(self, slot: str) -> pathlib.Path:
        assert self.emulator is not None
        disk = self.emulator.state.by_slot(slot)
        assert disk is not None, slot
        return self.emulator.state.disk_image(disk)

    def write(self, slot: str, offset: int, data: bytes) -> None:
        with self.image(slot).open("r+b") as f:
            f.seek(offset)
            f.write(data)

    def read(self, slot: str, offset: int, size: int) -> bytes:
        with self.image(slot).open("rb") as f:
            f.seek(offset)
            return f.read(size)


KINDS = [
    pytest.param("in-memory", id="in-memory"),
    *(
        pytest.param(
            f"{dialect}:{method}", id=f"emulator-ssh-{dialect}-{method}", marks=pytest.mark.emulator
        )
        for dialect in DIALECTS
        for method in SNAPSHOT_METHODS
    ),
    *(
        pytest.param(f"rest:{method}", id=f"emulator-rest-{method}", marks=pytest.mark.emulator)
        for method in SNAPSHOT_METHODS
    ),
    # a real RDS, with the method RDS_SNAPSHOT_METHOD names (default file-copy); the data
    # checks need the emulator's images and skip here
    pytest.param("real", id="real-rds", marks=pytest.mark.real_rds),
    pytest.param("real-rest", id="real-rds-rest", marks=pytest.mark.real_rds),
]


def _real(kind: str) -> Iterator[SnapHarness]:
    """A real RDS over SSH or REST, with the method ``RDS_SNAPSHOT_METHOD`` names."""
    method = os.environ.get("RDS_SNAPSHOT_METHOD", "file-copy")
    needed = REAL_RDS_REST_VARS if kind == "real-rest" else REAL_RDS_VARS
    missing = [v for v in needed if not os.environ.get(v)]
    if missing:
        pytest.skip(f"no real RDS: set {', '.join(missing)} to run the suite against one")
    real: RouterOsSshBackend | RouterOsRestBackend
    if kind == "real-rest":
        rest_settings = real_rds_rest_settings(os.environ)
        real = open_rest_backend(rest_settings)
        harness = SnapHarness(
            real,
            RouterOsRestSnapshots(real, method=method),
            base_path=rest_settings.base_path,
        )
    else:
        settings = real_rds_settings(os.environ)
        real = open_ssh_backend(settings)
        harness = SnapHarness(
            real, RouterOsSnapshots(real, method=method), base_path=settings.base_path
        )
    try:
        yield harness
    finally:
        harness.cleanup()
        real.close()


@pytest.fixture(params=KINDS)
def h(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[SnapHarness]:
    kind: str = request.param
    if kind == "in-memory":
        fake = InMemoryRds(Size(TIB))
        yield SnapHarness(fake, InMemorySnapshots(fake))
        return
    if kind in {"real", "real-rest"}:
        yield from _real(kind)
        return
    dialect, _, method = kind.partition(":")
    if dialect == "rest":
        emulator = start_emulator(tmp_path, rest=True)
        rest_settings = emulator_rest_settings(emulator, EMULATOR_BASE, read_timeout=10.0)
        rest = emulator_rest_backend(rest_settings, [])
        try:
            yield SnapHarness(rest, RouterOsRestSnapshots(rest, method=method), emulator)
        finally:
            rest.close()
            emulator.stop()
        return
    emulator = start_emulator(tmp_path, dialect=DIALECTS[dialect])
    backend: RouterOsSshBackend = emulator_backend(emulator, tmp_path, [])
    try:
        yield SnapHarness(backend, RouterOsSnapshots(backend, method=method), emulator)
    finally:
        backend.close()
        emulator.stop()


def sid(source: Volume, name: str = "") -> SnapshotId:
    return SnapshotId.for_name(name or str(uuid.uuid4()), source.volume_id)


def make(h: SnapHarness, source: Volume) -> Snapshot:
    return h.snapshots.create_snapshot(sid(source), source)


class TestCreate:
    def test_a_snapshot_is_a_ready_copy_the_size_of_its_source(self, h: SnapHarness) -> None:
        source = h.made_volume(2 * GIB)
        snap = make(h, source)
        assert snap.source_volume_id == source.volume_id
        assert snap.size == Size(2 * GIB)
        assert snap.ready
        assert snap.created_at > 0
        assert h.snapshots.get_snapshot(snap.snapshot_id).snapshot_id == snap.snapshot_id
        assert snap.snapshot_id in {s.snapshot_id for s in h.snapshots.list_snapshots()}
        assert h.volumes.get_volume(source.volume_id) == source  # untouched, still exported
        assert snap.snapshot_id.value not in {v.volume_id.value for v in h.volumes.list_volumes()}

    def test_create_is_idempotent(self, h: SnapHarness) -> None:
        source = h.made_volume()
        snapshot_id = sid(source)
        first = h.snapshots.create_snapshot(snapshot_id, source)
        assert h.snapshots.create_snapshot(snapshot_id, source) == first
        assert [s.snapshot_id for s in h.snapshots.list_snapshots()].count(snapshot_id) == 1

    def test_an_unknown_source_is_volume_not_found(self, h: SnapHarness) -> None:
        ghost = h.volume()
        with pytest.raises(VolumeNotFound):
            h.snapshots.create_snapshot(sid(ghost), ghost)

    def test_no_room_is_capacity_exhausted_and_leaves_nothing(self, h: SnapHarness) -> None:
        if h.base_path != EMULATOR_BASE:
            pytest.skip("fills the pool: only on the 1 TiB pools of the fake and the emulator")
        source = h.made_volume(600 * GIB)  # the pool is 1 TiB: no room for a second copy
        snapshot_id = sid(source)
        with pytest.raises(CapacityExhausted):
            h.snapshots.create_snapshot(snapshot_id, source)
        with pytest.raises(SnapshotNotFound):
            h.snapshots.get_snapshot(snapshot_id)
        if h.emulator is not None:
            files = [e.name for e in h.emulator.state.files()]
            assert not [f for f in files if snapshot_id.value in f]


class TestDelete:
    def test_delete_is_idempotent_and_removes_the_image(self, h: SnapHarness) -> None:
        snap = make(h, h.made_volume())
        h.snapshots.delete_snapshot(snap.snapshot_id)
        h.snapshots.delete_snapshot(snap.snapshot_id)
        with pytest.raises(SnapshotNotFound):
            h.snapshots.get_snapshot(snap.snapshot_id)
        if h.emulator is not None:
            assert not [e for e in h.emulator.state.files() if snap.snapshot_id.value in e.name]

    def test_a_snapshot_outlives_its_source(self, h: SnapHarness) -> None:
        source = h.made_volume()
        snap = make(h, source)
        h.volumes.delete_volume(source.volume_id)
        assert h.snapshots.get_snapshot(snap.snapshot_id).snapshot_id == snap.snapshot_id
        restored = h.snapshots.restore_snapshot(snap.snapshot_id, h.volume())
        assert restored.exported


class TestPopulate:
    def test_restore_makes_an_exported_volume_at_least_the_snapshot_size(
        self, h: SnapHarness
    ) -> None:
        snap = make(h, h.made_volume(2 * GIB))
        wanted = h.volume(3 * GIB)
        made = h.snapshots.restore_snapshot(snap.snapshot_id, wanted)
        assert made == attrs.evolve(wanted, exported=True)
        assert h.volumes.get_volume(wanted.volume_id).size == Size(3 * GIB)
        again = h.snapshots.restore_snapshot(snap.snapshot_id, wanted)
        assert again == made

    def test_restore_of_an_unknown_snapshot_is_not_found(self, h: SnapHarness) -> None:
        with pytest.raises(SnapshotNotFound):
            h.snapshots.restore_snapshot(sid(h.volume()), h.volume())

    def test_clone_of_an_unknown_volume_is_not_found(self, h: SnapHarness) -> None:
        with pytest.raises(VolumeNotFound):
            h.snapshots.clone_volume(h.volume().volume_id, h.volume())

    def test_clone_makes_an_exported_volume(self, h: SnapHarness) -> None:
        source = h.made_volume(2 * GIB)
        wanted = h.volume(2 * GIB)
        assert h.snapshots.clone_volume(source.volume_id, wanted) == attrs.evolve(
            wanted, exported=True
        )


@pytest.mark.emulator
class TestData:
    """The copies hold the data (emulator only: it is the one with images to read)."""

    def test_a_restore_holds_the_data_at_the_snapshot_not_later_writes(
        self, h: SnapHarness
    ) -> None:
        if h.emulator is None:
            pytest.skip("the in-memory RDS holds no data")
        source = h.made_volume()
        slot = source.volume_id.value
        h.write(slot, 0, b"first")
        h.write(slot, 700 * MIB, b"far away")
        snap = make(h, source)
        h.write(slot, 0, b"later")
        restored = h.snapshots.restore_snapshot(snap.snapshot_id, h.volume(2 * GIB))
        new = restored.volume_id.value
        assert h.read(new, 0, 5) == b"first"
        assert h.read(new, 700 * MIB, 8) == b"far away"
        assert h.image(new).stat().st_size == 2 * GIB
        assert h.read(slot, 0, 5) == b"later"  # the source keeps its own writes

    def test_a_clone_holds_the_sources_current_data(self, h: SnapHarness) -> None:
        if h.emulator is None:
            pytest.skip("the in-memory RDS holds no data")
        source = h.made_volume()
        h.write(source.volume_id.value, 4096, b"payload")
        clone = h.snapshots.clone_volume(source.volume_id, h.volume())
        assert h.read(clone.volume_id.value, 4096, 7) == b"payload"
        h.write(clone.volume_id.value, 4096, b"changed")
        assert h.read(source.volume_id.value, 4096, 7) == b"payload"

    def test_an_image_left_by_an_interrupted_copy_is_replaced(self, h: SnapHarness) -> None:
        if h.emulator is None:
            pytest.skip("the in-memory RDS holds no data")
        source = h.made_volume()
        h.write(source.volume_id.value, 0, b"good")
        snapshot_id = sid(source)
        leftover = h.image(source.volume_id.value).with_name(f"{snapshot_id}.img")
        leftover.write_bytes(b"half")  # a copy cut short: an image without its disk
        h.snapshots.create_snapshot(snapshot_id, source)
        assert h.read(snapshot_id.value, 0, 4) == b"good"
        assert h.image(snapshot_id.value).stat().st_size == GIB


@pytest.mark.emulator
@pytest.mark.parametrize("plane", ["ssh", "rest"])
def test_a_slow_copy_is_not_ready_until_it_ends(tmp_path: pathlib.Path, plane: str) -> None:
    """CreateSnapshot over the emulator with a slow copy: not ready, then ready, same time."""
    emulator = start_emulator(tmp_path, rest=plane == "rest")
    backend: StorageBackend
    snapshots: SnapshotBackend
    if plane == "rest":
        rest = emulator_rest_backend(
            emulator_rest_settings(emulator, EMULATOR_BASE, read_timeout=10.0), []
        )
        backend, snapshots = rest, RouterOsRestSnapshots(rest)
    else:
        ssh = emulator_backend(emulator, tmp_path, [])
        backend, snapshots = ssh, RouterOsSnapshots(ssh)
    copies = PendingCopies()
    try:
        h = SnapHarness(backend, snapshots, emulator)
        source = h.made_volume()
        h.write(source.volume_id.value, 0, b"x" * (32 * MIB))
        emulator.state.copy_throughput = 32 * MIB  # about a second for the data written
        create = CreateSnapshot(
            h.snapshots, backend, KeyedLocks(), copies, clock=time.time, ready_wait=0.1
        )
        first = create("slow", str(source.volume_id))
        assert not first.ready
        deadline = time.monotonic() + 30
        again = create("slow", str(source.volume_id))
        while not again.ready and time.monotonic() < deadline:
            time.sleep(0.1)
            again = create("slow", str(source.volume_id))
        assert again.ready
        assert again.created_at == first.created_at
        assert h.read(again.snapshot_id.value, 0, 32 * MIB) == b"x" * (32 * MIB)
    finally:
        copies.close()
        backend.close()
        emulator.stop()


@pytest.mark.emulator
class TestFaults:
    """What a garbled answer, a refusal midway and a dropped connection leave on the RDS."""

    def test_a_garbled_answer_to_a_repeat_keeps_the_snapshot(self, h: SnapHarness) -> None:
        if h.emulator is None:
            pytest.skip("needs the emulator's fault injection")
        source = h.made_volume()
        h.write(source.volume_id.value, 0, b"at the snapshot")
        snapshot_id = sid(source)
        h.snapshots.create_snapshot(snapshot_id, source)
        h.write(source.volume_id.value, 0, b"written later!!")
        h.emulator.faults.garble_next(1, match="snap-")
        with pytest.raises(MalformedOutput):
            h.snapshots.create_snapshot(snapshot_id, source)
        h.snapshots.create_snapshot(snapshot_id, source)  # the retry finds it, copies nothing
        assert h.read(snapshot_id.value, 0, 15) == b"at the snapshot"

    def test_a_refusal_midway_leaves_no_image(self, h: SnapHarness) -> None:
        if h.emulator is None:
            pytest.skip("needs the emulator's fault injection")
        source = h.made_volume()
        snapshot_id = sid(source)
        h.emulator.faults.fail_next(1, "failure: disk error", match="snap-")
        with pytest.raises(BackendError):
            h.snapshots.create_snapshot(snapshot_id, source)
        assert not [e for e in h.emulator.state.files() if snapshot_id.value in e.name]
        assert h.snapshots.create_snapshot(snapshot_id, source).ready

    def test_a_drop_after_the_copy_is_finished_by_the_retry(self, h: SnapHarness) -> None:
        if h.emulator is None:
            pytest.skip("needs the emulator's fault injection")
        source = h.made_volume()
        h.write(source.volume_id.value, 0, b"data")
        snapshot_id = sid(source)
        h.emulator.faults.drop_next(1, after_execute=True, match="snap-")
        made = h.snapshots.create_snapshot(snapshot_id, source)  # the adapter retries the line
        assert made.ready
        assert h.read(snapshot_id.value, 0, 4) == b"data"

    def test_a_refused_add_after_the_copy_leaves_no_image(self, h: SnapHarness) -> None:
        if h.emulator is None:
            pytest.skip("needs the emulator's fault injection")
        source = h.made_volume()
        snapshot_id = sid(source)
        h.emulator.faults.fail_next(1, "failure: disk error", match="/disk add")
        with pytest.raises(BackendError):
            h.snapshots.create_snapshot(snapshot_id, source)
        assert not [e for e in h.emulator.state.files() if snapshot_id.value in e.name]
        with pytest.raises(SnapshotNotFound):
            h.snapshots.get_snapshot(snapshot_id)

    def test_a_refused_restore_leaves_no_volume(self, h: SnapHarness) -> None:
        if h.emulator is None:
            pytest.skip("needs the emulator's fault injection")
        snap = make(h, h.made_volume())
        wanted = h.volume()
        h.emulator.faults.fail_next(1, "failure: disk error", match="/disk add")
        with pytest.raises(BackendError):
            h.snapshots.restore_snapshot(snap.snapshot_id, wanted)
        assert not [e for e in h.emulator.state.files() if wanted.volume_id.value in e.name]
        with pytest.raises(VolumeNotFound):
            h.volumes.get_volume(wanted.volume_id)
