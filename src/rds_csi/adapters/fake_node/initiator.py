"""A fake NVMe/TCP initiator: connections by NQN, each a device in the DeviceTable."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from rds_csi.adapters.fake_node.devices import DeviceTable
from rds_csi.adapters.fake_rds import FaultPlan
from rds_csi.application.ports import NvmeInitiator, StorageBackend
from rds_csi.domain import Nqn, NvmeTarget, VolumeId, VolumeNotFound
from rds_csi.domain.size import GIB


__all__ = ["FakeNvmeInitiator"]

_UNLINKED_SIZE = 10 * GIB


class FakeNvmeInitiator(NvmeInitiator):
    """
    ``nvme connect`` in memory.

    With ``exports`` (a StorageBackend, the in-memory RDS in ``rds-csi all``), a connect
    succeeds only for an NQN that backend exports, and the device has the disk's size; a
    rescan picks up a size the controller grew. Without it every NQN connects, at 10 GiB.

    Attributes:
        faults: ``faults.fail_next(1, lambda: BackendUnavailable(...), operations={"connect"})``
            makes the next connect fail (operations: connect, disconnect, rescan).
    """

    def __init__(self, devices: DeviceTable, exports: StorageBackend | None = None) -> None:
        self._devices = devices
        self._exports = exports
        # Connections live in the DeviceTable (the node's kernel), not here: a new instance
        # over the same table finds them, as a restarted node plugin does on a real node.
        self._lock = threading.Lock()
        self.faults = FaultPlan()

    def _exported_size(self, nqn: Nqn) -> int:
        if self._exports is None:
            return _UNLINKED_SIZE
        # Our NQNs end in the volume ID, the disk's slot: one lookup, not a full listing.
        volume_id = nqn.volume_id
        missing = VolumeNotFound(str(volume_id or nqn), f"the target exports no {nqn}")
        if volume_id is None:
            raise missing
        try:
            volume = self._exports.get_volume(volume_id)
        except VolumeNotFound:
            raise missing from None
        if volume.nqn != nqn or not volume.exported:
            raise missing
        return volume.size.bytes

    def connect(self, target: NvmeTarget) -> str:
        self.faults.before("connect")
        existing = self.device_for(target.nqn)
        if existing is not None:
            return existing
        size = self._exported_size(target.nqn)
        with self._lock:
            existing = self.device_for(target.nqn)
            if existing is not None:
                return existing
            medium = self._devices.medium_of(target.nqn)
            return self._devices.attach(size, medium, nqn=target.nqn).path

    def disconnect(self, nqn: Nqn) -> None:
        self.faults.before("disconnect")
        with self._lock:
            path = self.device_for(nqn)
            if path is not None:
                self._devices.detach(path)

    def device_for(self, nqn: Nqn) -> str | None:
        device = self._devices.of_subsystem(nqn)
        return device.path if device is not None else None

    def connections(self) -> Sequence[Nqn]:
        return self._devices.subsystems()

    def lingering(self, volume_id: VolumeId) -> Sequence[str]:  # noqa: ARG002 - none linger
        # A fake device leaves the DeviceTable on disconnect; its mounts then name no device.
        return ()

    def bounce(self, nqn: Nqn, *, same_name: bool = False) -> str:
        """
        For tests: the connection drops and comes back (ctrl-loss-tmo expired, then a
        reconnect), as another device; with ``same_name`` under the old path but a new
        number. Mounts of the old device are left stale. Returns the new device path.
        """
        with self._lock:
            device = self._devices.of_subsystem(nqn)
            if device is None:
                raise VolumeNotFound(str(nqn.volume_id or nqn), f"{nqn} is not connected")
            self._devices.detach(device.path)
            new = self._devices.attach(
                device.size, device.medium, name=device.path if same_name else None, nqn=nqn
            )
            return new.path

    def rescan(self, nqn: Nqn) -> None:
        self.faults.before("rescan")
        device = self._devices.of_subsystem(nqn)
        if device is None:
            raise VolumeNotFound(str(nqn.volume_id or nqn), f"{nqn} is not connected")
        device.size = self._exported_size(nqn)
