"""
The SSH backend against the emulator's console in-process, under every dialect.

Each test here reproduces one of issue 11's findings: a place where a real RDS could answer
differently from the emulator's old defaults and the backend broke. The console runs in the
test's thread (no SSH): what is under test is the command lines and the reading of answers.
"""

from __future__ import annotations

import pathlib

import attrs
import pytest

from rds_csi.adapters.routeros_ssh.backend import RetryPolicy, RouterOsSshBackend
from rds_csi.adapters.routeros_ssh.connection import CommandOutput, Counters
from rds_csi.domain import DiskPath, Nqn, Size, Volume, VolumeId, VolumeNotFound
from rds_csi.domain.deadline import Deadline
from rds_csi.domain.size import GIB, MIB
from rds_csi.emulator import DIALECTS, Dialect
from rds_csi.emulator.console import Console
from rds_csi.emulator.dataplane import JsonExportsDataPlane
from rds_csi.emulator.state import PoolState


DEFAULT_BASE = "/storage-pool/metal-csi"
CUSTOM_BASE = "/storage-pool/custom-sc"


@attrs.define
class ConsoleRunner:
    """A ``CommandRunner`` that hands each line to an in-process console."""

    console: Console
    counters: Counters = attrs.field(factory=Counters)

    def run(self, command: str, deadline: Deadline | None = None) -> CommandOutput:  # noqa: ARG002
        self.counters.bump("round_trips")
        text, ok = self.console.run(command)
        return CommandOutput(text, 0 if ok else self.console.dialect.error_exit_status)

    def close(self) -> None:
        pass


@attrs.define
class Rig:
    console: Console
    backend: RouterOsSshBackend

    def sh(self, line: str) -> str:
        text, ok = self.console.run(line)
        assert ok, text
        return text

    def image(self, volume: Volume) -> pathlib.Path:
        return self.console.state.data_dir / volume.path.value.lstrip("/")


def _rig(tmp_path: pathlib.Path, dialect: Dialect, **backend: object) -> Rig:
    state = PoolState(
        tmp_path,
        pool_name="storage-pool",
        pool_size=Size.from_quantity("100Gi"),
        data_plane=JsonExportsDataPlane(tmp_path / "nvme-exports.json"),
    )
    console = Console(state, dialect=dialect)
    runner = ConsoleRunner(console)
    made = RouterOsSshBackend(
        runner,
        base_path=DEFAULT_BASE,
        pool="storage-pool",
        retry=RetryPolicy(attempts=1, sleep=lambda _s: None),
        **backend,  # type: ignore[arg-type]
    )
    return Rig(console, made)


@pytest.fixture(params=sorted(DIALECTS))
def dialect(request: pytest.FixtureRequest) -> Dialect:
    return DIALECTS[request.param]


@pytest.fixture
def rig(tmp_path: pathlib.Path, dialect: Dialect) -> Rig:
    return _rig(tmp_path, dialect)


def _volume(name: str, base: str = DEFAULT_BASE, size: int = GIB) -> Volume:
    vid = VolumeId.from_name(name)
    return Volume(vid, Size(size), DiskPath(base, vid), Nqn.for_volume(vid))


class TestEmptyFind:
    def test_create_works_when_the_rds_refuses_an_empty_find(
        self, tmp_path: pathlib.Path, dialect: Dialect
    ) -> None:
        """Fix 1: an empty [find] passed to remove may be "no such item" (A13)."""
        rig = _rig(tmp_path, attrs.evolve(dialect, empty_find="no-such-item"))
        wanted = _volume("fresh")
        made = rig.backend.create_volume(wanted)
        assert made == wanted
        assert rig.image(wanted).exists()
        rig.backend.delete_volume(wanted.volume_id)
        rig.backend.delete_volume(wanted.volume_id)
        assert not rig.image(wanted).exists()


class TestUnexportedDisk:
    def test_a_disk_whose_export_was_switched_off_is_listed_deleted_and_re_exported(
        self, rig: Rig
    ) -> None:
        """Fix 2: such a row prints no nvme-tcp-server-* fields (A8)."""
        a = rig.backend.create_volume(_volume("a"))
        b = rig.backend.create_volume(_volume("b"))
        rig.sh(f'/disk set [find slot="{a.volume_id}"] nvme-tcp-export=no')
        listed = {v.volume_id: v for v in rig.backend.list_volumes()}
        assert listed[a.volume_id].exported is False
        assert listed[b.volume_id] == b
        assert rig.backend.get_volume(a.volume_id).exported is False
        assert rig.backend.create_volume(a) == a  # a repeated create exports it again
        rig.sh(f'/disk set [find slot="{a.volume_id}"] nvme-tcp-export=no')
        rig.backend.delete_volume(a.volume_id)
        with pytest.raises(VolumeNotFound):
            rig.backend.get_volume(a.volume_id)
        assert not rig.image(a).exists()


class TestSizeDisplay:
    def test_a_truncated_file_size_display_leaves_the_disk_readable(
        self, tmp_path: pathlib.Path, dialect: Dialect
    ) -> None:
        """Fix 3: 1500 MiB shown as 1.4GiB if RouterOS truncates (A29)."""
        rig = _rig(tmp_path, attrs.evolve(dialect, size_display="truncate"))
        wanted = _volume("odd-size", size=1500 * MIB)
        assert rig.backend.create_volume(wanted) == wanted
        assert rig.backend.get_volume(wanted.volume_id) == wanted
        assert wanted in rig.backend.list_volumes()


class TestInterruptedDelete:
    def test_an_image_under_a_storage_class_path_is_removed_when_its_disk_is_gone(
        self, rig: Rig
    ) -> None:
        """Fix 4: the state between the two removals of a delete, with volumePath set."""
        made = rig.backend.create_volume(_volume("custom", base=CUSTOM_BASE))
        rig.sh(f'/disk remove [find slot="{made.volume_id}"]')
        assert rig.image(made).exists()
        rig.backend.delete_volume(made.volume_id)
        assert not rig.image(made).exists()

    def test_a_restarted_controller_finds_the_image_under_a_configured_base(
        self, tmp_path: pathlib.Path, dialect: Dialect
    ) -> None:
        first = _rig(tmp_path, dialect)
        made = first.backend.create_volume(_volume("custom", base=CUSTOM_BASE))
        first.sh(f'/disk remove [find slot="{made.volume_id}"]')
        restarted = RouterOsSshBackend(
            ConsoleRunner(first.console),
            base_path=DEFAULT_BASE,
            pool="storage-pool",
            known_bases=[CUSTOM_BASE],
        )
        restarted.delete_volume(made.volume_id)
        assert not first.image(made).exists()
