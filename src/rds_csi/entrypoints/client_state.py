"""
What ``rds-csi call`` itself staged and published, per endpoint, so that ``call delete`` can
refuse to delete a volume this CLI left staged: the controller cannot tell yet (that comes
with attachment tracking), and a deleted disk under a staged volume leaves the node holding
a device of a disk that is gone. Kept in ``$XDG_STATE_HOME/rds-csi/call-staged.json``; a
record is a hint, never the truth: ``--force`` overrides it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
from collections.abc import Mapping

import attrs


__all__ = ["CallState"]


def _default_path(environ: Mapping[str, str]) -> pathlib.Path:
    base = environ.get("XDG_STATE_HOME") or str(pathlib.Path.home() / ".local" / "state")
    return pathlib.Path(base) / "rds-csi" / "call-staged.json"


@attrs.define
class CallState:
    path: pathlib.Path

    @classmethod
    def default(cls, environ: Mapping[str, str] | None = None) -> CallState:
        return cls(_default_path(os.environ if environ is None else environ))

    def _load(self) -> dict[str, dict[str, dict[str, list[str]]]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, data: Mapping[str, object]) -> None:
        # A state we cannot write only loses the hint; the call itself succeeded.
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(self.path)

    def _update(self, endpoint: str, volume_id: str, kind: str, path: str, *, add: bool) -> None:
        data = self._load()
        volume = data.setdefault(endpoint, {}).setdefault(volume_id, {})
        paths = [p for p in volume.get(kind, []) if p != path] + ([path] if add else [])
        volume[kind] = paths
        if not any(volume.values()):
            del data[endpoint][volume_id]
        self._save(data)

    def staged(self, endpoint: str, volume_id: str, path: str) -> None:
        self._update(endpoint, volume_id, "staged", path, add=True)

    def unstaged(self, endpoint: str, volume_id: str, path: str) -> None:
        self._update(endpoint, volume_id, "staged", path, add=False)

    def published(self, endpoint: str, volume_id: str, path: str) -> None:
        self._update(endpoint, volume_id, "published", path, add=True)

    def unpublished(self, endpoint: str, volume_id: str, path: str) -> None:
        self._update(endpoint, volume_id, "published", path, add=False)

    def forget(self, endpoint: str, volume_id: str) -> None:
        data = self._load()
        if data.get(endpoint, {}).pop(volume_id, None) is not None:
            self._save(data)

    def held(self, endpoint: str, volume_id: str) -> dict[str, list[str]]:
        """Where this CLI staged or published the volume and did not undo it."""
        volume = self._load().get(endpoint, {}).get(volume_id, {})
        return {kind: list(paths) for kind, paths in volume.items() if paths}
