"""
What RouterOS's REST JSON means, and the JSON bodies we send: pure functions.

REST answers carry every value as a JSON string (``"4420"``, ``"true"``, ``"*1A"``), sizes as
raw bytes (FACTS section 4). A record that is ours but unreadable raises ``MalformedOutput``
with the raw text; a record that is not ours is ``None``. Booleans are read in both spellings
(``true``/``yes``) and written as ``true``/``false``. Every value in a body comes from a domain
object and is checked again here (safe characters only) before it is encoded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

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


__all__ = [
    "Record",
    "capacity_from",
    "create_body",
    "export_body",
    "file_name",
    "item_id",
    "records",
    "resize_body",
    "volume_from",
]

Record = Mapping[str, object]

_SAFE: Final = re.compile(r"[A-Za-z0-9._:/@+-]{1,255}")
_DIGITS: Final = re.compile(r"[0-9]{1,24}")
_ITEM_ID: Final = re.compile(r"\*[0-9A-Fa-f]{1,16}")
_BOOLS: Final = {"true": True, "yes": True, "false": False, "no": False}


def records(doc: object, raw: str) -> list[Record]:
    """A ``GET`` of a menu: a JSON list of objects."""
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise MalformedOutput("the RDS answered a listing with something not a list", raw)
    return list(doc)


def one_record(doc: object, raw: str) -> Record:
    """A ``PUT``/``PATCH``/``GET`` of one item: a JSON object."""
    if not isinstance(doc, dict):
        raise MalformedOutput("the RDS answered with something not an item", raw)
    return doc


def _text(record: Record, key: str, raw: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedOutput(f"{key}={value!r} is not a string, as RouterOS writes values", raw)
    return value


def _need(record: Record, key: str, raw: str) -> str:
    value = _text(record, key, raw)
    if value is None:
        raise MalformedOutput(f"an item has no {key}", raw)
    return value


def _bytes(record: Record, key: str, raw: str) -> int:
    value = _need(record, key, raw)
    if _DIGITS.fullmatch(value) is None:
        raise MalformedOutput(f"{key}={value!r} is not a byte count", raw)
    return int(value)


def _boolean(text: str, key: str, raw: str) -> bool:
    if text not in _BOOLS:
        raise MalformedOutput(f"{key}={text!r} is not true or false", raw)
    return _BOOLS[text]


def item_id(record: Record, raw: str) -> str:
    """The item's ``.id`` (``*1A``), checked: it goes into a URL path."""
    value = _need(record, ".id", raw)
    if _ITEM_ID.fullmatch(value) is None:
        raise MalformedOutput(f".id={value!r} is not a RouterOS item id", raw)
    return value


def volume_from(record: Record, raw: str) -> Volume | None:
    """
    The volume a ``/disk`` object describes, or None when it is not a disk of this driver (its
    slot is not one of our IDs, it is not a file disk, or its file is not ``<base>/<slot>.img``).
    A disk whose export is off is a volume with ``exported=False``; its export fields may be
    absent.

    Raises:
        MalformedOutput: it is ours, but a field we need is missing or unreadable.
    """
    slot = _text(record, "slot", raw)
    if slot is None or not VolumeId.is_valid(slot):
        return None
    if _need(record, "type", raw) != "file":
        return None
    volume_id = VolumeId(slot)
    path_text = _text(record, "file-path", raw) or _need(record, "model", raw)
    try:
        path = DiskPath.parse(path_text if path_text.startswith("/") else "/" + path_text)
    except InvalidArgument:
        return None
    if path.volume_id != volume_id:
        return None
    size = _bytes(record, "size" if "size" in record else "file-size", raw)
    export_text = _text(record, "nvme-tcp-export", raw)
    exported = _boolean(export_text, "nvme-tcp-export", raw) if export_text else False
    nqn_text = _text(record, "nvme-tcp-server-nqn", raw)
    port_text = _text(record, "nvme-tcp-server-port", raw)
    try:
        if exported and not nqn_text:
            raise MalformedOutput(f"disk {slot} is exported but has no nvme-tcp-server-nqn", raw)
        nqn = Nqn(nqn_text) if nqn_text else Nqn.for_volume(volume_id)
        if port_text is None or port_text == "":
            if exported:
                raise MalformedOutput(f"disk {slot} is exported but has no port", raw)
            port = DEFAULT_NVME_PORT
        elif port_text.isdigit() and len(port_text) <= 5:  # noqa: PLR2004 - 65535
            port = check_port(int(port_text), field="nvme-tcp-server-port")
        else:
            raise MalformedOutput(f"nvme-tcp-server-port={port_text!r} is not a port", raw)
        return Volume(volume_id, Size(size), path, nqn, nvme_port=port, exported=exported)
    except InvalidArgument as exc:
        raise MalformedOutput(f"disk {slot}: {exc}", raw) from None


def capacity_from(found: Sequence[Record], raw: str, pool: str) -> CapacityReport:
    """The pool's ``size`` and ``free`` from the ``/disk`` item mounted at ``pool``."""
    if len(found) != 1:
        raise MalformedOutput(f"expected one disk mounted at {pool!r}, got {len(found)}", raw)
    total = _bytes(found[0], "size", raw)
    free = _bytes(found[0], "free", raw)
    if free > total:
        raise MalformedOutput(f"free space {free} exceeds the pool's size {total}", raw)
    return CapacityReport(total=Size(total), free=Size(free))


# --- bodies and query values ------------------------------------------------------------------


def safe(value: object, *, field: str) -> str:
    """A string value for a body or query: letters, digits and ``. _ : / @ + -`` only."""
    if not isinstance(value, str) or _SAFE.fullmatch(value) is None:
        shown = value[:64] if isinstance(value, str) else type(value).__name__
        raise InvalidArgument(field, f"{shown!r} cannot be sent to RouterOS")
    return value


def slot(volume_id: VolumeId) -> str:
    if not isinstance(volume_id, VolumeId):
        raise InvalidArgument("volume_id", f"{volume_id!r} is not a VolumeId")
    return safe(volume_id.value, field="volume_id")


def file_name(path: DiskPath) -> str:
    """``/file`` names and REST ``file-path``s carry no leading slash (FACTS sections 1, 3)."""
    return safe(path.value.lstrip("/"), field="path")


def _size(size: object) -> str:
    if not isinstance(size, Size) or size.bytes <= 0:
        raise InvalidArgument("size", f"{size!r} is not a positive size")
    return str(size.bytes)


def export_body(volume: Volume) -> dict[str, str]:
    """Switch the export on: the fields ``PATCH /rest/disk/<.id>`` sets."""
    return {
        "nvme-tcp-export": "true",
        "nvme-tcp-server-port": str(check_port(volume.nvme_port, field="nvme_port")),
        "nvme-tcp-server-nqn": safe(volume.nqn.value, field="nqn"),
    }


def create_body(volume: Volume) -> dict[str, str]:
    """
    ``PUT /rest/disk``: the file disk, exported in the same add (one ``/disk add`` with the
    export fields worked on hardware over the CLI: FACTS section 9).
    """
    return {
        "type": "file",
        "file-path": file_name(volume.path),
        "file-size": _size(volume.size),
        "slot": slot(volume.volume_id),
        # never let the RDS mount the filesystem a node puts on the disk
        "mount-filesystem": "false",
        **export_body(volume),
    }


def resize_body(size: Size) -> dict[str, str]:
    return {"file-size": _size(size)}
