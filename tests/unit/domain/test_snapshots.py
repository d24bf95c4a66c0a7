"""SnapshotId: the Go driver's format, deterministic, and its source readable from it."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rds_csi.domain import (
    InvalidArgument,
    Size,
    Snapshot,
    SnapshotId,
    SnapshotNotFound,
    VolumeId,
    parse_snapshot_reference,
)


names = st.text(min_size=1, max_size=128)
sources = st.uuids().map(lambda u: VolumeId(f"pvc-{u}"))


@given(names, sources)
def test_same_name_and_source_give_the_same_id(name: str, source: VolumeId) -> None:
    assert SnapshotId.for_name(name, source) == SnapshotId.for_name(name, source)


@given(names, sources)
def test_the_id_names_its_source_and_the_go_drivers_tag(name: str, source: VolumeId) -> None:
    sid = SnapshotId.for_name(name, source)
    assert sid.source == source
    tag = str(uuid.uuid5(uuid.NAMESPACE_DNS, name)).replace("-", "")[:10]
    assert sid.value == f"snap-{source.value.removeprefix('pvc-')}-at-{tag}"
    assert SnapshotId.is_valid(sid.value)
    assert parse_snapshot_reference(sid.value) == sid


@given(names, sources, sources)
def test_one_name_on_two_sources_shares_the_tag_only(name: str, a: VolumeId, b: VolumeId) -> None:
    sa, sb = SnapshotId.for_name(name, a), SnapshotId.for_name(name, b)
    assert sa.tag == sb.tag
    assert (sa == sb) == (a == b)


@given(names, names, sources)
def test_different_names_differ(n1: str, n2: str, source: VolumeId) -> None:
    if n1 != n2:
        assert SnapshotId.for_name(n1, source) != SnapshotId.for_name(n2, source)


def test_a_known_value() -> None:
    source = VolumeId("pvc-a1b2c3d4-e5f6-7890-abcd-ef1234567890")
    tag = uuid.uuid5(uuid.NAMESPACE_DNS, "snapshot-1").hex[:10]
    assert str(SnapshotId.for_name("snapshot-1", source)) == (
        f"snap-a1b2c3d4-e5f6-7890-abcd-ef1234567890-at-{tag}"
    )


def test_the_go_drivers_timestamp_ids_are_ours_too() -> None:
    # its older GenerateSnapshotIDFromSource: a 10-digit Unix time in place of the tag
    sid = parse_snapshot_reference("snap-a1b2c3d4-e5f6-7890-abcd-ef1234567890-at-1739800000")
    assert sid.source == VolumeId("pvc-a1b2c3d4-e5f6-7890-abcd-ef1234567890")


@pytest.mark.parametrize(
    "raw",
    [
        "snap-a1b2c3d4-e5f6-7890-abcd-ef1234567890",  # the Go driver's legacy form
        "pvc-a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        "some-other-drivers-snapshot",
    ],
)
def test_foreign_ids_are_not_found(raw: str) -> None:
    with pytest.raises(SnapshotNotFound):
        parse_snapshot_reference(raw)


@pytest.mark.parametrize("raw", ["snap-x;rm -rf", 'a"b', "x" * 200, "a b"])
def test_malformed_ids_are_invalid(raw: str) -> None:
    with pytest.raises(InvalidArgument, match="snapshot_id"):
        parse_snapshot_reference(raw)


def test_empty_is_required() -> None:
    with pytest.raises(InvalidArgument, match="required"):
        parse_snapshot_reference("")


@given(st.text(max_size=80))
def test_only_well_formed_ids_construct(text: str) -> None:
    try:
        sid = SnapshotId(text)
    except InvalidArgument:
        return
    assert sid.value.startswith("snap-")
    assert all(c in "0123456789abcdef-snapt" for c in sid.value)


def test_a_snapshot_must_be_of_the_source_its_id_names() -> None:
    a = VolumeId.from_name("a")
    sid = SnapshotId.for_name("s", a)
    assert Snapshot(sid, a, Size(1 << 30), 1.0).source_volume_id == a
    with pytest.raises(InvalidArgument, match="source_volume_id"):
        Snapshot(sid, VolumeId.from_name("b"), Size(1 << 30), 1.0)
