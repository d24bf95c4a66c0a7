"""
The loop initiator (``initiator: loop``): the emulator's disk images as loop devices.

Where the kernel has no NVMe/TCP (CI, a laptop, this build host) the driver still runs end to
end: the RouterOS emulator keeps each disk as a sparse image file and publishes which NQN is
which image in ``nvme-exports.json``; "connecting" an NQN attaches its image with ``losetup``,
and the rest of the node (mkfs, mount, bind, resize) works on a real block device.

Answers are re-derived from ``losetup --list`` and the exports file, so a restarted node finds
what it attached before. Each attachment is also recorded (``AttachmentRecords``: NQN, image,
device) so that ``disconnect`` detaches only what was attached for that exact NQN, never a
device of the same volume ID under another NQN prefix, and still finds a device whose image the
emulator deleted while it was attached (the NQN is then no longer exported). Other loop devices
on the host are not ours and are never touched.

With ``own_records`` (a records directory of this node's own) the initiator plays one node of
several on the host: it sees, reuses and detaches only the devices it recorded, and attaches a
device of its own even when another "node" has the same image attached (losetup allows several
devices on one file), as two hosts each have their own NVMe/TCP connection to one target.
"""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Sequence

from rds_csi.adapters.loop.parse import Export, LoopDevice, parse_exports, parse_loop_devices
from rds_csi.adapters.loop.records import Attachment, AttachmentRecords
from rds_csi.adapters.process import ToolTimeout, describe, run_tool
from rds_csi.application.ports import NvmeInitiator
from rds_csi.domain import (
    BackendError,
    BackendUnavailable,
    InvalidArgument,
    Nqn,
    NvmeTarget,
    VolumeId,
    VolumeNotFound,
)


__all__ = ["LoopInitiator"]

_log = logging.getLogger(__name__)


class LoopInitiator(NvmeInitiator):
    """
    Args:
        exports_file: The emulator's ``<data-dir>/nvme-exports.json``.
        losetup: The ``losetup`` executable.
        command_timeout: Seconds any one losetup call may take.
        records_dir: Where attachments are recorded; default ``.loop-initiator`` beside the
            exports file.
        own_records: Only the devices recorded in ``records_dir`` are this initiator's (one
            node of several on a host); else any device on an exported image is.
    """

    def __init__(
        self,
        exports_file: str | pathlib.Path,
        *,
        losetup: str = "losetup",
        command_timeout: float = 30.0,
        records_dir: str | pathlib.Path | None = None,
        own_records: bool = False,
    ) -> None:
        self._own_records = own_records
        self._exports_file = pathlib.Path(exports_file)
        self._losetup = losetup
        self._timeout = command_timeout
        self._records = AttachmentRecords(
            pathlib.Path(records_dir)
            if records_dir is not None
            else self._exports_file.parent / ".loop-initiator"
        )

    # --- what is exported, what is attached --------------------------------------------------

    def _exports(self) -> dict[str, Export]:
        try:
            text = self._exports_file.read_text()
        except FileNotFoundError:
            return {}  # the emulator has not exported anything yet
        except OSError as exc:
            raise BackendError(f"cannot read {self._exports_file}", str(exc)) from exc
        return parse_exports(text, source=str(self._exports_file))

    def _export(self, nqn: Nqn) -> Export | None:
        return self._exports().get(nqn.value)

    def _run(self, *args: str) -> tuple[bool, str, str]:
        argv = [self._losetup, *args]
        try:
            result = run_tool(argv, timeout=self._timeout)
        except ToolTimeout as exc:
            raise BackendError(f"{describe(argv)} hung", str(exc)) from None
        return result.ok, result.stdout, result.detail()

    def _devices(self) -> list[LoopDevice]:
        ok, stdout, detail = self._run("--list", "--json", "--output", "NAME,BACK-FILE,AUTOCLEAR")
        if not ok:
            raise BackendError("cannot list loop devices", detail)
        return parse_loop_devices(stdout)

    @staticmethod
    def _same_file(device: LoopDevice, image: str) -> bool:
        return device.back_file == os.path.realpath(image)

    def _mine(self, device: LoopDevice, recorded: set[str] | None) -> bool:
        return recorded is None or device.name in recorded

    def _recorded_names(self) -> set[str] | None:
        """With ``own_records``, the devices recorded here; else None (every device counts)."""
        return {r.device for r in self._records.all()} if self._own_records else None

    def _attached(self, image: str, devices: list[LoopDevice] | None = None) -> list[LoopDevice]:
        """Loop devices serving ``image`` now (not the detached-on-close or stale ones)."""
        recorded = self._recorded_names()
        return sorted(
            (
                d
                for d in (self._devices() if devices is None else devices)
                if self._same_file(d, image)
                and not d.deleted
                and not d.autoclear
                and self._mine(d, recorded)
            ),
            key=lambda d: d.name,
        )

    @staticmethod
    def _listed(record: Attachment, devices: list[LoopDevice]) -> LoopDevice | None:
        """The device ``record`` names, if it is still on the recorded image (even deleted)."""
        for device in devices:
            if device.name == record.device and device.back_file == record.image:
                return device
        return None

    def _serving(self, record: Attachment, devices: list[LoopDevice]) -> LoopDevice | None:
        """As ``_listed``, but not a device only waiting for its last close to detach."""
        device = self._listed(record, devices)
        return None if device is None or device.autoclear else device

    def lingering(self, volume_id: VolumeId) -> Sequence[str]:
        devices = self._devices()
        found = (
            self._listed(r, devices) for r in self._records.all() if r.nqn.volume_id == volume_id
        )
        return sorted({d.name for d in found if d is not None and d.autoclear})

    def _recorded(self, nqn: Nqn, devices: list[LoopDevice]) -> list[LoopDevice]:
        found = (self._serving(r, devices) for r in self._records.of(nqn))
        return [d for d in found if d is not None]

    def device_for(self, nqn: Nqn) -> str | None:
        export = self._export(nqn)
        if export is not None:
            attached = self._attached(export.image)
            return attached[0].name if attached else None
        # No longer exported (the disk was deleted) but still attached here: still ours.
        recorded = self._recorded(nqn, self._devices())
        return recorded[0].name if recorded else None

    def connections(self) -> Sequence[Nqn]:
        by_image = {os.path.realpath(e.image): nqn for nqn, e in self._exports().items()}
        devices = self._devices()
        recorded = self._recorded_names()
        found: set[Nqn] = set()
        for device in devices:
            nqn = by_image.get(device.back_file)
            if nqn is None or device.deleted or device.autoclear:
                continue
            if not self._mine(device, recorded):
                continue
            try:
                found.add(Nqn(nqn))
            except InvalidArgument:
                continue
        found.update(r.nqn for r in self._records.all() if self._serving(r, devices))
        return sorted(found)

    # --- connect, disconnect, rescan ---------------------------------------------------------

    def connect(self, target: NvmeTarget) -> str:
        export = self._export(target.nqn)
        if export is None:
            raise VolumeNotFound(target.nqn.value, f"{self._exports_file} does not export it")
        if not pathlib.Path(export.image).is_file():
            raise BackendError(
                f"the image of {target.nqn} is missing", f"{export.image} is not a file"
            )
        image = os.path.realpath(export.image)
        attached = self._attached(export.image)
        if attached:
            _log.info("%s is already attached as %s; reusing it", target.nqn, attached[0].name)
            self._records.add(Attachment(target.nqn, image, attached[0].name))
            return attached[0].name
        ok, stdout, detail = self._run("--find", "--show", "--", export.image)
        if not ok:
            raise BackendError(f"cannot attach the image of {target.nqn}", detail)
        device = stdout.strip()
        if not (device.startswith("/dev/") and pathlib.Path(device).exists()):
            raise BackendUnavailable(
                f"losetup attached the image of {target.nqn} but printed {device!r}, "
                "which is no device node"
            )
        try:
            self._records.add(Attachment(target.nqn, image, device))
        except BackendError:
            self._run("--detach", device)  # unrecorded, it would never be detached again
            raise
        _log.info("%s attached as %s (%s)", target.nqn, device, export.image)
        return device

    def disconnect(self, nqn: Nqn) -> None:
        # Only this exact NQN's: its exported image's devices, and the devices recorded for
        # it (one whose image was deleted since is no longer exported, but is still ours).
        # Never a device of the same volume ID under another NQN prefix.
        devices = self._devices()
        export = self._export(nqn)
        mine = self._attached(export.image, devices) if export else []
        mine += [d for d in self._recorded(nqn, devices) if d not in mine]
        for device in mine:
            ok, _, detail = self._run("--detach", device.name)
            if ok:
                _log.info("%s: detached %s", nqn, device.name)
                continue
            still = [d for d in self._devices() if d.name == device.name and d == device]
            if still:
                raise BackendError(f"cannot detach {device.name} ({nqn})", detail)
        # A busy device detaches on its last close: its record stays until then (lingering).
        devices = self._devices()
        for record in self._records.of(nqn):
            if self._listed(record, devices) is None:
                self._records.remove(record)

    def rescan(self, nqn: Nqn) -> None:
        export = self._export(nqn)
        attached = self._attached(export.image) if export else []
        if not attached:
            raise VolumeNotFound(nqn.value, "not attached on this node")
        for device in attached:
            ok, _, detail = self._run("--set-capacity", device.name)
            if not ok:
                raise BackendError(f"cannot refresh the size of {device.name} ({nqn})", detail)
