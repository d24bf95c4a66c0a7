"""
Snapshots: their IDs (the RDS slot of the copy) and what a snapshot is.

The ID is the Go driver's (``pkg/utils/snapshotid.go``, ``GenerateSnapshotID``):
``snap-<source volume uuid>-at-<first 10 hex digits of uuid5(DNS, snapshot name)>``. It names
the source, so a snapshot's source is known from its slot alone, and it is deterministic, so
a retried CreateSnapshot finds the copy it made before; the same name on another source gives
another ID with the same ``-at-`` tag, which is how a clash is found (ALREADY_EXISTS).
"""

from __future__ import annotations

import re
import uuid
from typing import Final

import attrs

from rds_csi.domain.errors import InvalidArgument, SnapshotNotFound
from rds_csi.domain.identity import VOLUME_ID_PREFIX, VolumeId
from rds_csi.domain.size import Size


__all__ = [
    "SNAPSHOT_ID_PREFIX",
    "ContentSource",
    "Snapshot",
    "SnapshotId",
    "name_tag",
    "parse_snapshot_reference",
]

SNAPSHOT_ID_PREFIX: Final = "snap-"
_UUID: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_TAG_LEN: Final = 10
_SNAPSHOT_ID_RE: Final = re.compile(rf"snap-({_UUID})-at-([0-9a-f]{{{_TAG_LEN}}})")
# What a CO may send and still be answered "not ours" rather than "malformed".
_FOREIGN_ID_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_SHOWN: Final = 64


def name_tag(name: str) -> str:
    """The ``-at-`` part for a CSI snapshot name: 10 hex digits of uuid5(DNS, name)."""
    return uuid.uuid5(uuid.NAMESPACE_DNS, name).hex[:_TAG_LEN]


@attrs.frozen(order=True)
class SnapshotId:
    """A snapshot of ours; also the slot of its file disk on the RDS."""

    value: str = attrs.field()

    @value.validator
    def _check(self, _attr: attrs.Attribute[str], value: str) -> None:
        if _SNAPSHOT_ID_RE.fullmatch(value) is None:
            raise InvalidArgument(
                "snapshot_id",
                f"{value!r} is not a snapshot ID of this driver "
                "(snap-<source uuid>-at-<10 hex digits>)",
            )

    @classmethod
    def for_name(cls, name: str, source: VolumeId) -> SnapshotId:
        """The ID CreateSnapshot ``name`` of ``source`` gets (the Go driver's)."""
        source_uuid = source.value.removeprefix(VOLUME_ID_PREFIX)
        return cls(f"{SNAPSHOT_ID_PREFIX}{source_uuid}-at-{name_tag(name)}")

    @staticmethod
    def is_valid(text: str) -> bool:
        return _SNAPSHOT_ID_RE.fullmatch(text) is not None

    @property
    def source(self) -> VolumeId:
        """The volume this snapshot was taken of (its UUID is in the ID)."""
        match = _SNAPSHOT_ID_RE.fullmatch(self.value)
        assert match is not None  # noqa: S101 - the validator guarantees it
        return VolumeId(VOLUME_ID_PREFIX + match.group(1))

    @property
    def tag(self) -> str:
        """The name's part: equal tags on two sources mean one name used twice."""
        return self.value[-_TAG_LEN:]

    def __str__(self) -> str:
        return self.value


def parse_snapshot_reference(raw: str, *, field: str = "snapshot_id") -> SnapshotId:
    """
    Resolve a snapshot ID a CO sent: empty is missing (InvalidArgument); a well-formed ID not
    of our format names nothing of ours (SnapshotNotFound); other characters are malformed.
    """
    if not raw:
        raise InvalidArgument(field, "is required")
    if SnapshotId.is_valid(raw):
        return SnapshotId(raw)
    if _FOREIGN_ID_RE.fullmatch(raw) is None:
        shown = raw if len(raw) <= _SHOWN else raw[:_SHOWN] + "..."
        raise InvalidArgument(
            field, f"{shown!r} has characters no snapshot ID may contain (letters, digits, -._)"
        )
    raise SnapshotNotFound(raw)


def _source_matches(instance: Snapshot, _attr: object, value: VolumeId) -> None:
    if instance.snapshot_id.source != value:
        raise InvalidArgument(
            "source_volume_id",
            f"snapshot {instance.snapshot_id} is of {instance.snapshot_id.source}, not {value}",
        )


@attrs.frozen
class Snapshot:
    """
    A point-in-time copy of a volume: a file disk on the RDS whose slot is the snapshot ID,
    not exported, independent of its source (deleting the source keeps it usable).

    Attributes:
        size: The source's size when the copy was made; a restore is at least this big.
        created_at: Seconds since the epoch when it was cut.
        ready: False while the copy is still being made (``ready_to_use``).
    """

    snapshot_id: SnapshotId
    source_volume_id: VolumeId = attrs.field(validator=_source_matches)
    size: Size
    created_at: float
    ready: bool = True


@attrs.frozen
class ContentSource:
    """
    What a new volume is made from (CreateVolume's ``volume_content_source``): exactly one
    of a snapshot ID or a volume ID, as the CO sent them (resolved by the use case).
    """

    snapshot_id: str = ""
    volume_id: str = ""

    def __attrs_post_init__(self) -> None:
        if bool(self.snapshot_id) == bool(self.volume_id):
            raise InvalidArgument(
                "volume_content_source", "must name exactly one snapshot or one volume"
            )
