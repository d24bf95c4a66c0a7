"""
What ``/disk print detail`` records mean: volumes of this driver, and the pool's capacity.

Pure ``Record -> value`` functions. A record that is ours but unreadable raises
``MalformedOutput`` with the raw text; a record that is not ours is ``None``. Only the fields
RouterOS is known to print are required: display-only fields (``file-size``) and the export
fields an unexported disk omits never make a disk unreadable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from rds_csi.adapters.routeros_ssh.parse import Record
from rds_csi.domain import (
    CapacityReport,
    DiskPath,
    InvalidArgument,
    MalformedOutput,
    Nqn,
    Size,
    Volume,
    VolumeId,
)
from rds_csi.domain.model import DEFAULT_NVME_PORT, check_port


__all__ = ["capacity_from_records", "parse_bytes", "volume_from_record"]

_DIGITS: Final = re.compile(r"[0-9]+( [0-9]+)*")
_MAX_DIGITS: Final = 24
_BOOLS: Final = {"yes": True, "true": True, "no": False, "false": False}
# The properties a volume is read from. The export flag and the server fields print together
# (or not at all, A8), so one without the other is a misread, never an unexported disk.
_READ: Final = (
    "slot",
    "type",
    "file-path",
    "model",
    "size",
    "nvme-tcp-export",
    "nvme-tcp-server-nqn",
    "nvme-tcp-server-port",
)
_EXPORT_FIELDS: Final = ("nvme-tcp-server-nqn", "nvme-tcp-server-port")


def parse_bytes(text: str, *, field: str, raw: str) -> int:
    """RouterOS's grouped byte counts (``1 099 511 627 776``)."""
    if _DIGITS.fullmatch(text) is None or len(text) > _MAX_DIGITS + _MAX_DIGITS // 3:
        raise MalformedOutput(f"{field}={text!r} is not a byte count", raw)
    return int(text.replace(" ", ""))


def _need(record: Record, key: str, raw: str) -> str:
    value = record.fields.get(key)
    if value is None:
        raise MalformedOutput(f"item {record.number} has no {key}", raw)
    return value


def _check_names(record: Record, raw: str) -> None:
    """
    Refuse a record where a property we read seems cut in its name: ``n`` + ``vme-tcp-export``
    joined as a value tail and a key ``vme-tcp-export``. The tail of the name shows up as a key
    while the whole name is missing; reading on would take the disk for unexported.
    """
    for key in record.fields:
        for name in _READ:
            if name != key and name.endswith(key) and name not in record.fields:
                raise MalformedOutput(
                    f"item {record.number}: {key!r} looks like a cut {name!r}", raw
                )
    if "nvme-tcp-export" not in record.fields and any(f in record.fields for f in _EXPORT_FIELDS):
        raise MalformedOutput(f"item {record.number} has export fields but no nvme-tcp-export", raw)


def _boolean(record: Record, key: str, raw: str) -> bool:
    value = _need(record, key, raw)
    if value not in _BOOLS:
        raise MalformedOutput(f"{key}={value!r} is not yes or no", raw)
    return _BOOLS[value]


def _port(text: str, raw: str) -> int:
    if not text.isdigit() or len(text) > 5:  # noqa: PLR2004 - 65535 has five digits
        raise MalformedOutput(f"nvme-tcp-server-port={text!r} is not a port", raw)
    try:
        return check_port(int(text), field="nvme-tcp-server-port")
    except InvalidArgument as exc:
        raise MalformedOutput(str(exc), raw) from None


def volume_from_record(record: Record, raw: str) -> Volume | None:
    """
    The volume a ``/disk`` record describes, or None when it is not a disk of this driver
    (its slot is not one of our IDs, it is not a file disk, or its file is not
    ``<base>/<slot>.img``). A disk whose export is off (and so prints no ``nvme-tcp-server-*``
    fields) is a volume with ``exported=False``, so it can still be listed and deleted.

    Raises:
        MalformedOutput: it is ours, but a field we need is missing or unreadable.
    """
    slot = _need(record, "slot", raw)
    if not VolumeId.is_valid(slot):
        return None
    _check_names(record, raw)
    if _need(record, "type", raw) != "file":
        return None
    volume_id = VolumeId(slot)
    path_text = record.fields.get("file-path") or _need(record, "model", raw)
    model = record.fields.get("model")
    if model is not None and model.lstrip("/") != path_text.lstrip("/"):
        # a file disk shows its file twice; two readings that disagree mean a misread line
        raise MalformedOutput(f"disk {slot}: file-path {path_text!r} but model {model!r}", raw)
    try:
        path = DiskPath.parse(path_text)
    except InvalidArgument:
        return None
    if path.volume_id != volume_id:
        return None
    # ``size`` (bytes) is the truth; the humanized ``file-size`` is display only and never
    # vetoes a disk: whether RouterOS rounds or truncates it is unverified (assumption A29)
    size = parse_bytes(_need(record, "size", raw), field="size", raw=raw)
    exported = (
        _boolean(record, "nvme-tcp-export", raw) if "nvme-tcp-export" in record.fields else False
    )
    try:
        if exported or "nvme-tcp-server-nqn" in record.fields:
            nqn = Nqn(_need(record, "nvme-tcp-server-nqn", raw))
        else:  # an unexported disk prints no export fields (A8): what re-exporting would use
            nqn = Nqn.for_volume(volume_id)
        port_text = record.fields.get("nvme-tcp-server-port")
        if exported and port_text is None:
            raise MalformedOutput(f"item {record.number} has no nvme-tcp-server-port", raw)
        port = DEFAULT_NVME_PORT if port_text is None else _port(port_text, raw)
        return Volume(volume_id, Size(size), path, nqn, nvme_port=port, exported=exported)
    except InvalidArgument as exc:
        raise MalformedOutput(f"disk {slot}: {exc}", raw) from None


def capacity_from_records(records: Sequence[Record], raw: str, pool: str) -> CapacityReport:
    """The pool's size and free space from ``/disk print detail where mount-point=<pool>``."""
    if len(records) != 1:
        raise MalformedOutput(f"expected one disk mounted at {pool!r}, got {len(records)}", raw)
    record = records[0]
    total = parse_bytes(_need(record, "size", raw), field="size", raw=raw)
    free = parse_bytes(_need(record, "free", raw), field="free", raw=raw)
    if free > total:
        raise MalformedOutput(f"free space {free} exceeds the pool's size {total}", raw)
    return CapacityReport(total=Size(total), free=Size(free))
