"""SPEC-CHECKLIST.md §4: the snapshot rows (CreateSnapshot, DeleteSnapshot, ListSnapshots,
CreateVolume from a source, DeleteVolume with snapshots), over gRPC on the in-memory RDS."""

from __future__ import annotations

import pytest

from rds_csi.domain import SnapshotId, VolumeId
from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e.checklist.support import (
    GIB,
    TIB,
    UNKNOWN_ID,
    C,
    DriverProcess,
    Row,
    check_error_row,
    cr,
    rng,
    unique_name,
)


Src = csi_pb2.VolumeContentSource
UNKNOWN_SNAPSHOT = str(SnapshotId.for_name("nobody cut this", VolumeId.from_name("x")))


def snap(d: DriverProcess, source: str, name: str = "") -> csi_pb2.Snapshot:
    return d.controller.CreateSnapshot(
        csi_pb2.CreateSnapshotRequest(name=name or unique_name(), source_volume_id=source),
        timeout=10,
    ).snapshot


def from_snapshot(snapshot_id: str) -> Src:
    return Src(snapshot=Src.SnapshotSource(snapshot_id=snapshot_id))


def from_volume(volume_id: str) -> Src:
    return Src(volume=Src.VolumeSource(volume_id=volume_id))


def _same_name_other_source(d: DriverProcess) -> None:
    name = unique_name()
    snap(d, d.create().volume_id, name)
    snap(d, d.create().volume_id, name)


def _restore_smaller_than_snapshot(d: DriverProcess) -> None:
    s = snap(d, d.create(size=3 * GIB).volume_id)
    d.controller.CreateVolume(
        cr(capacity_range=rng(GIB, 2 * GIB), volume_content_source=from_snapshot(s.snapshot_id))
    )


def _snapshot_without_room(d: DriverProcess) -> None:
    # the in-memory pool is 10 TiB: no room for a second copy of a 6 TiB volume
    big = d.create(size=6 * TIB).volume_id
    try:
        snap(d, big)
    finally:
        d.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=big))


ERROR_ROWS = [
    Row(
        "CreateSnapshot: source_volume_id missing -> 3",
        lambda d: d.controller.CreateSnapshot(csi_pb2.CreateSnapshotRequest(name="x")),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateSnapshot: name missing -> 3",
        lambda d: d.controller.CreateSnapshot(
            csi_pb2.CreateSnapshotRequest(source_volume_id=UNKNOWN_ID)
        ),
        C.INVALID_ARGUMENT,
    ),
    Row("CreateSnapshot: same name, other source -> 6", _same_name_other_source, C.ALREADY_EXISTS),
    Row(
        "CreateSnapshot: unknown source -> 5",
        lambda d: snap(d, UNKNOWN_ID),
        C.NOT_FOUND,
    ),
    Row("CreateSnapshot: out of space -> 8", _snapshot_without_room, C.RESOURCE_EXHAUSTED),
    Row(
        "DeleteSnapshot: snapshot_id missing -> 3",
        lambda d: d.controller.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest()),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "ListSnapshots: bad starting_token -> 10",
        lambda d: d.controller.ListSnapshots(
            csi_pb2.ListSnapshotsRequest(starting_token="not-a-token")
        ),
        C.ABORTED,
    ),
    Row(
        "CreateVolume: source snapshot not found -> 5",
        lambda d: d.controller.CreateVolume(
            cr(volume_content_source=from_snapshot(UNKNOWN_SNAPSHOT))
        ),
        C.NOT_FOUND,
    ),
    Row(
        "CreateVolume: foreign snapshot ID -> 5",
        lambda d: d.controller.CreateVolume(cr(volume_content_source=from_snapshot("snap-1"))),
        C.NOT_FOUND,
    ),
    Row(
        "CreateVolume: source volume not found -> 5",
        lambda d: d.controller.CreateVolume(cr(volume_content_source=from_volume(UNKNOWN_ID))),
        C.NOT_FOUND,
    ),
    Row(
        "CreateVolume: source incompatible (empty source) -> 3",
        lambda d: d.controller.CreateVolume(cr(volume_content_source=Src())),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: smaller than the source -> 11",
        _restore_smaller_than_snapshot,
        C.OUT_OF_RANGE,
    ),
]


@pytest.mark.parametrize("row", ERROR_ROWS, ids=[r.row for r in ERROR_ROWS])
def test_error_row(driver: DriverProcess, row: Row) -> None:
    check_error_row(driver, row)


def test_create_snapshot_returns_every_required_field(driver: DriverProcess) -> None:
    source = driver.create(size=2 * GIB).volume_id
    s = snap(driver, source)
    assert s.snapshot_id.startswith("snap-")
    assert s.source_volume_id == source
    assert s.creation_time.seconds > 0
    assert s.ready_to_use
    assert s.size_bytes == 2 * GIB


def test_create_snapshot_repeat_returns_the_same_id_and_time(driver: DriverProcess) -> None:
    source = driver.create().volume_id
    name = unique_name()
    assert snap(driver, source, name) == snap(driver, source, name)


def test_delete_snapshot_unknown_foreign_and_repeated_are_ok(driver: DriverProcess) -> None:
    s = snap(driver, driver.create().volume_id)
    for sid in (s.snapshot_id, s.snapshot_id, UNKNOWN_SNAPSHOT, "someone-elses"):
        driver.controller.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest(snapshot_id=sid))
    listed = driver.controller.ListSnapshots(
        csi_pb2.ListSnapshotsRequest(snapshot_id=s.snapshot_id)
    )
    assert list(listed.entries) == []


def test_list_snapshots_filters_and_pages(driver: DriverProcess) -> None:
    a = driver.create().volume_id
    made = {snap(driver, a).snapshot_id for _ in range(3)}
    by_source = driver.controller.ListSnapshots(csi_pb2.ListSnapshotsRequest(source_volume_id=a))
    assert {e.snapshot.snapshot_id for e in by_source.entries} == made
    one = next(iter(made))
    by_id = driver.controller.ListSnapshots(csi_pb2.ListSnapshotsRequest(snapshot_id=one))
    assert [e.snapshot.snapshot_id for e in by_id.entries] == [one]
    for nothing in (
        csi_pb2.ListSnapshotsRequest(snapshot_id=UNKNOWN_SNAPSHOT),
        csi_pb2.ListSnapshotsRequest(snapshot_id="foreign"),
        csi_pb2.ListSnapshotsRequest(source_volume_id=UNKNOWN_ID),
    ):
        assert list(driver.controller.ListSnapshots(nothing).entries) == []
    seen: list[str] = []
    token = ""
    while True:
        page = driver.controller.ListSnapshots(
            csi_pb2.ListSnapshotsRequest(max_entries=1, starting_token=token)
        )
        assert len(page.entries) <= 1
        seen += [e.snapshot.snapshot_id for e in page.entries]
        token = page.next_token
        if not token:
            break
    assert len(seen) == len(set(seen))
    assert made <= set(seen)


def test_restore_echoes_the_source_and_may_be_larger(driver: DriverProcess) -> None:
    s = snap(driver, driver.create(size=2 * GIB).volume_id)
    source = from_snapshot(s.snapshot_id)
    same = driver.controller.CreateVolume(cr(volume_content_source=source))  # asks 1 GiB
    assert same.volume.capacity_bytes == 2 * GIB
    assert same.volume.content_source == source
    bigger = driver.controller.CreateVolume(
        cr(capacity_range=rng(4 * GIB), volume_content_source=source)
    )
    assert bigger.volume.capacity_bytes == 4 * GIB


def test_clone_echoes_the_source(driver: DriverProcess) -> None:
    origin = driver.create(size=2 * GIB).volume_id
    source = from_volume(origin)
    clone = driver.controller.CreateVolume(cr(volume_content_source=source))
    assert clone.volume.capacity_bytes == 2 * GIB
    assert clone.volume.content_source == source
    assert clone.volume.volume_id != origin


def test_delete_volume_with_snapshots_keeps_them_usable(driver: DriverProcess) -> None:
    origin = driver.create().volume_id
    s = snap(driver, origin)
    driver.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=origin))
    listed = driver.controller.ListSnapshots(
        csi_pb2.ListSnapshotsRequest(snapshot_id=s.snapshot_id)
    )
    assert [e.snapshot.ready_to_use for e in listed.entries] == [True]
    restored = driver.controller.CreateVolume(
        cr(volume_content_source=from_snapshot(s.snapshot_id))
    )
    assert restored.volume.volume_id
