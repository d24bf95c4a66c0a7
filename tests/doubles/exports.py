"""
A stand-in for the RouterOS emulator's side of the loop initiator: sparse disk images and the
``nvme-exports.json`` that names them, written atomically in the emulator's format.

Until the emulator lands this is how the loop initiator's tests get exports; afterwards the same
tests can point at a running emulator's data dir instead.
"""

from __future__ import annotations

import json
import os
import pathlib

import attrs

from rds_csi.domain import Nqn, NvmeTarget, VolumeId


__all__ = ["ExportsDir"]


@attrs.define
class ExportsDir:
    """``<data_dir>/nvme-exports.json`` and the images beside it."""

    data_dir: pathlib.Path
    port: int = 4420

    @property
    def file(self) -> pathlib.Path:
        return self.data_dir / "nvme-exports.json"

    def _read(self) -> dict[str, dict[str, object]]:
        if not self.file.exists():
            return {}
        exports: dict[str, dict[str, object]] = json.loads(self.file.read_text())["exports"]
        return exports

    def _write(self, exports: dict[str, dict[str, object]]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": 1, "exports": exports}, indent=2))
        tmp.replace(self.file)

    def image_of(self, volume_id: VolumeId) -> pathlib.Path:
        return self.data_dir / "disks" / f"{volume_id}.img"

    def export(self, volume_id: VolumeId, size: int) -> NvmeTarget:
        """Make a sparse image of ``size`` bytes and export it under the volume's NQN."""
        image = self.image_of(volume_id)
        image.parent.mkdir(parents=True, exist_ok=True)
        with image.open("ab") as handle:
            handle.truncate(size)
        nqn = Nqn.for_volume(volume_id)
        exports = self._read()
        exports[nqn.value] = {
            "slot": str(volume_id),
            "image": str(image),
            "port": self.port,
            "size": size,
        }
        self._write(exports)
        return NvmeTarget(address="127.0.0.1", port=self.port, nqn=nqn)

    def resize(self, target: NvmeTarget, size: int) -> None:
        exports = self._read()
        entry = exports[target.nqn.value]
        with pathlib.Path(str(entry["image"])).open("ab") as handle:
            handle.truncate(size)
        entry["size"] = size
        self._write(exports)

    def unexport(self, target: NvmeTarget, *, delete_image: bool = False) -> None:
        exports = self._read()
        entry = exports.pop(target.nqn.value, None)
        self._write(exports)
        if entry is not None and delete_image:
            pathlib.Path(str(entry["image"])).unlink(missing_ok=True)
