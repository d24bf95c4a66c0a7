"""Console values: item ids, and how RouterOS prints, compares and tests values."""

from __future__ import annotations

import re
from typing import Final

import attrs

from rds_csi.emulator.disks import DISK_ATTRS, Disk, FileEntry
from rds_csi.emulator.state import RosFailure


__all__ = [
    "BOOLS",
    "ItemId",
    "coerce_word",
    "compare",
    "disk_value",
    "file_key",
    "length",
    "show",
    "truthy",
]

BOOLS: Final = {"yes": True, "true": True, "no": False, "false": False}


@attrs.frozen
class ItemId:
    """An internal item id (``*1A``)."""

    menu: str
    key: int

    def __str__(self) -> str:
        return f"*{self.key:X}"


def show(value: object) -> str:
    """How ``:put`` prints a value (A25 for lists)."""
    match value:
        case None:
            return ""
        case bool():
            return "true" if value else "false"
        case list() | tuple():
            return ";".join(show(v) for v in value)
        case dict():
            return ";".join(f"{k}={show(v)}" for k, v in value.items())
    return str(value)


def coerce_word(word: str) -> object:
    if re.fullmatch(r"-?[0-9]+", word):
        return int(word)
    return word


def length(value: object) -> int:
    if isinstance(value, list | tuple | str | dict):
        return len(value)
    return 0 if value is None else 1


def truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    return bool(value)


def compare(op: str, left: object, right: object) -> bool:
    if op == "~":
        try:
            return re.search(show(right), show(left)) is not None
        except re.error:
            raise RosFailure("failure: invalid regular expression") from None
    if isinstance(left, bool):
        right = BOOLS.get(show(right), right)
    elif isinstance(left, int) and not isinstance(right, int):
        text = show(right)
        right = int(text) if re.fullmatch(r"-?[0-9]+", text) else text
    elif isinstance(left, str) or isinstance(right, str):
        left, right = show(left), show(right)
    if op == "=":
        return left == right
    if op == "!=":
        return left != right
    if isinstance(left, int) and isinstance(right, int):
        return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
    return False


_MAX_PORT: Final = 65535


def disk_value(key: str, raw: str) -> object:
    """A writable ``/disk`` property's text as the emulator keeps it (console and REST alike)."""
    kind = type(getattr(Disk(id=0, slot="", file_path=""), DISK_ATTRS[key]))
    if kind is bool:
        if raw not in BOOLS:
            raise RosFailure(f"input does not match any value of {key}")
        return BOOLS[raw]
    if kind is int:
        if not re.fullmatch(r"[0-9]{1,10}", raw):
            raise RosFailure(f"invalid value for argument {key}")
        value = int(raw)
        if key == "nvme-tcp-server-port" and not 1 <= value <= _MAX_PORT:
            raise RosFailure(f"value of {key} out of range (1..{_MAX_PORT})")
        return value
    return raw


def file_key(entry: FileEntry) -> int:
    """A ``/file`` row's stable number (its inode): its ``.id`` and its console item key."""
    return entry.path.lstat().st_ino if entry.path.exists() else 0
