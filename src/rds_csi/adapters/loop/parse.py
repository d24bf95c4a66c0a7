"""
Pure readers for the loop initiator: ``losetup --list --json`` and the emulator's exports file.

The exports file is the RouterOS emulator's contract with us (``<data-dir>/nvme-exports.json``,
rewritten atomically on every change)::

    {"version": 1,
     "exports": {"<nqn>": {"slot": "pvc-...", "image": "/abs/path.img", "port": 4420,
                           "size": 1073741824}}}
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Final

import attrs

from rds_csi.domain import MalformedOutput


__all__ = ["EXPORTS_VERSION", "Export", "LoopDevice", "parse_exports", "parse_loop_devices"]

EXPORTS_VERSION: Final = 1
_DELETED: Final = " (deleted)"


@attrs.frozen
class LoopDevice:
    """
    One attached loop device.

    Attributes:
        back_file: The backing file's path as the kernel recorded it at attach time.
        deleted: The backing file has been unlinked since (losetup appends ``(deleted)``).
        autoclear: The device detaches itself on last close; set by ``losetup -d`` on a busy
            device, so for us it means "detach requested".
    """

    name: str
    back_file: str
    deleted: bool = False
    autoclear: bool = False


def _as_bool(value: Any) -> bool:
    # util-linux prints JSON booleans; older versions printed "0"/"1" strings.
    if isinstance(value, str):
        return value.strip() in {"1", "true"}
    return bool(value)


def parse_loop_devices(stdout: str) -> list[LoopDevice]:
    """
    ``losetup --list --json --output NAME,BACK-FILE,AUTOCLEAR``. Empty output means no devices
    (older util-linux prints nothing at all then).

    Raises:
        MalformedOutput: anything else that is not that JSON.
    """
    if not stdout.strip():
        return []
    try:
        data = json.loads(stdout)
    except ValueError:
        raise MalformedOutput("losetup --json printed something that is not JSON", stdout) from None
    entries = data.get("loopdevices") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise MalformedOutput("losetup --json has no 'loopdevices' list", stdout)
    devices: list[LoopDevice] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise MalformedOutput("a losetup entry has no 'name'", stdout)
        back = entry.get("back-file")
        if not isinstance(back, str) or not back:
            continue  # a device being set up or torn down: no file, nothing of ours
        deleted = back.endswith(_DELETED)
        devices.append(
            LoopDevice(
                name=entry["name"],
                back_file=back.removesuffix(_DELETED) if deleted else back,
                deleted=deleted,
                autoclear=_as_bool(entry.get("autoclear", False)),
            )
        )
    return devices


@attrs.frozen
class Export:
    """One NQN the emulator exports, and the disk image behind it."""

    nqn: str
    image: str
    slot: str = ""
    port: int = 4420
    size: int = 0


def parse_exports(text: str, *, source: str) -> dict[str, Export]:
    """
    The emulator's ``nvme-exports.json``, keyed by NQN.

    Raises:
        MalformedOutput: not that JSON, an unknown version, or an export without an absolute
            image path (named after ``source``).
    """
    try:
        data = json.loads(text)
    except ValueError:
        raise MalformedOutput(f"{source} is not JSON", text) from None
    if not isinstance(data, dict) or data.get("version") != EXPORTS_VERSION:
        raise MalformedOutput(f"{source} is not a version {EXPORTS_VERSION} exports file", text)
    exports = data.get("exports")
    if not isinstance(exports, dict):
        raise MalformedOutput(f"{source} has no 'exports' object", text)
    parsed: dict[str, Export] = {}
    for nqn, entry in exports.items():
        image = entry.get("image") if isinstance(entry, dict) else None
        if not isinstance(image, str) or not pathlib.PurePosixPath(image).is_absolute():
            raise MalformedOutput(f"{source}: the export of {nqn!r} has no absolute 'image'", text)
        port, size = entry.get("port", 4420), entry.get("size", 0)
        parsed[nqn] = Export(
            nqn=nqn,
            image=image,
            slot=str(entry.get("slot", "")),
            port=port if isinstance(port, int) else 4420,
            size=size if isinstance(size, int) else 0,
        )
    return parsed
