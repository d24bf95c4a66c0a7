"""
The loop initiator's record of what it attached: one small JSON file per (NQN, device).

A loop device carries no note of who attached it or for which NQN; its backing file's path is
all the kernel keeps. The record names the NQN, the image (resolved, as the kernel shows it)
and the device, so a disconnect can tell its own devices from those of the same volume ID under
another NQN prefix, and can still find a device whose image the emulator has deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib

import attrs

from rds_csi.domain import BackendError, DomainError, Nqn


__all__ = ["Attachment", "AttachmentRecords"]

_log = logging.getLogger(__name__)


@attrs.frozen
class Attachment:
    nqn: Nqn
    image: str
    device: str


def _prefix(nqn: Nqn) -> str:
    return hashlib.sha256(nqn.value.encode()).hexdigest()[:32]


class AttachmentRecords:
    """``<dir>/<sha256(nqn)>-<device name>.json``, each written atomically."""

    def __init__(self, directory: pathlib.Path) -> None:
        self._dir = directory

    def _path(self, record: Attachment) -> pathlib.Path:
        return self._dir / f"{_prefix(record.nqn)}-{pathlib.PurePosixPath(record.device).name}.json"

    def add(self, record: Attachment) -> None:
        """
        Raises:
            BackendError: it cannot be written.
        """
        path = self._path(record)
        text = json.dumps({"nqn": record.nqn.value, "image": record.image, "device": record.device})
        try:
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(text)
            tmp.replace(path)
        except OSError as exc:
            raise BackendError(f"cannot record the attachment of {record.nqn}", str(exc)) from exc

    def remove(self, record: Attachment) -> None:
        try:
            self._path(record).unlink(missing_ok=True)
        except OSError as exc:
            _log.warning("cannot remove the record of %s: %s", record.device, exc)

    def _read(self, path: pathlib.Path) -> Attachment | None:
        try:
            data = json.loads(path.read_text())
            return Attachment(Nqn(str(data["nqn"])), str(data["image"]), str(data["device"]))
        except (OSError, ValueError, KeyError, TypeError, DomainError) as exc:
            _log.warning("ignoring the unreadable attachment record %s: %s", path, exc)
            return None

    def _glob(self, pattern: str) -> list[Attachment]:
        if not self._dir.is_dir():
            return []
        found = (self._read(p) for p in sorted(self._dir.glob(pattern)))
        return [r for r in found if r is not None]

    def of(self, nqn: Nqn) -> list[Attachment]:
        return [r for r in self._glob(f"{_prefix(nqn)}-*.json") if r.nqn == nqn]

    def all(self) -> list[Attachment]:
        return self._glob("*.json")
