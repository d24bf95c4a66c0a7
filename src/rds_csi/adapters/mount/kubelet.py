"""
What kubelet has recorded on this node: the ``vol_data.json`` files it writes beside each CSI
volume it stages or publishes, before it calls the driver.

The orphan finder asks it which of our volumes kubelet still counts as here; a connection to
one of them is not an orphan even while nothing is mounted from it (a raw block volume is
staged by connecting it only). Layouts (kubelet 1.2x):

* ``plugins/kubernetes.io/csi/<driver>/<sha256>/vol_data.json`` (a staged filesystem volume;
  ``plugins/kubernetes.io/csi/pv/<pv>/vol_data.json`` on older kubelets),
* ``plugins/kubernetes.io/csi/volumeDevices/<pv>/data/vol_data.json`` (a block volume),
* ``pods/<uid>/volumes/kubernetes.io~csi/<pv>/vol_data.json`` (a published one).
"""

from __future__ import annotations

import json
import logging
import pathlib
from typing import Final

from rds_csi.application.orphans import KubeletVolumes


__all__ = ["KubeletRecords"]

_log = logging.getLogger(__name__)

_PATTERNS: Final = (
    "plugins/kubernetes.io/csi/*/*/vol_data.json",
    "plugins/kubernetes.io/csi/volumeDevices/*/data/vol_data.json",
    "pods/*/volumes/kubernetes.io~csi/*/vol_data.json",
)


class KubeletRecords(KubeletVolumes):
    def __init__(self, kubelet_dir: str, driver_name: str) -> None:
        self._root = pathlib.Path(kubelet_dir)
        self._driver = driver_name

    def volume_handles(self) -> frozenset[str]:
        handles: set[str] = set()
        for pattern in _PATTERNS:
            for path in self._root.glob(pattern):
                try:
                    data = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    # Unreadable: its volume is still guarded by the mount check.
                    _log.warning("cannot read kubelet's %s: %s", path, exc)
                    continue
                if isinstance(data, dict) and data.get("driverName") == self._driver:
                    handle = data.get("volumeHandle")
                    if isinstance(handle, str) and handle:
                        handles.add(handle)
        return frozenset(handles)
