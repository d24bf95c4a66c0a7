"""
The StorageBackend in the half-finished states a real RDS can be left in (issue 11): a disk
whose export was switched off, an image whose disk entry is gone. Run where the emulator (under
each dialect) lets the test put the RDS in that state; skipped elsewhere.
"""

from __future__ import annotations

import attrs
import pytest

from rds_csi.domain import DiskPath, VolumeNotFound
from rds_csi.emulator import Emulator

from .conftest import BackendHarness


def _emulator(harness: BackendHarness) -> Emulator:
    if harness.emulator is None:
        pytest.skip("needs the emulator to put the RDS in a half-finished state")
    return harness.emulator


def _sh(emulator: Emulator, line: str) -> None:
    text, ok = emulator.console.run(line)
    assert ok, text


class TestHalfFinishedStates:
    def test_an_unexported_disk_does_not_break_the_listing_and_can_be_deleted(
        self, harness: BackendHarness
    ) -> None:
        emulator = _emulator(harness)
        off = harness.backend.create_volume(harness.volume())
        on = harness.backend.create_volume(harness.volume())
        _sh(emulator, f'/disk set [find slot="{off.volume_id}"] nvme-tcp-export=no')
        listed = {v.volume_id: v for v in harness.backend.list_volumes()}
        assert listed[on.volume_id] == on
        assert listed[off.volume_id].exported is False
        harness.backend.delete_volume(off.volume_id)
        with pytest.raises(VolumeNotFound):
            harness.backend.get_volume(off.volume_id)

    def test_a_delete_interrupted_between_its_removals_leaves_no_image_under_a_volume_path(
        self, harness: BackendHarness
    ) -> None:
        emulator = _emulator(harness)
        wanted = harness.volume()
        wanted = attrs.evolve(wanted, path=DiskPath("/storage-pool/custom-sc", wanted.volume_id))
        made = harness.backend.create_volume(wanted)
        image = emulator.state.data_dir / made.path.value.lstrip("/")
        _sh(emulator, f'/disk remove [find slot="{made.volume_id}"]')
        assert image.exists()
        harness.backend.delete_volume(made.volume_id)
        assert not image.exists()
