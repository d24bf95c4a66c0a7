"""
The loop initiator beyond the port contract (root): how it reads the emulator's exports file and
which loop devices it will and will not touch.
"""

from __future__ import annotations

import os
import pathlib
import time
import uuid
from collections.abc import Iterator

import pytest

from rds_csi.adapters.loop import LoopInitiator
from rds_csi.domain import MalformedOutput, Nqn, NvmeTarget, VolumeId, VolumeNotFound
from rds_csi.domain.size import MIB
from tests.doubles.exports import ExportsDir
from tests.support.root import Janitor, require_root


pytestmark = pytest.mark.root


@pytest.fixture
def janitor(tmp_path: pathlib.Path) -> Iterator[Janitor]:
    require_root("losetup")
    janitor = Janitor(tmp_path)
    try:
        yield janitor
    finally:
        janitor.cleanup()


@pytest.fixture
def exports(janitor: Janitor) -> ExportsDir:
    return ExportsDir(janitor.root / "emulator")


def _volume() -> VolumeId:
    return VolumeId.from_name(f"loop-{uuid.uuid4()}")


def test_no_exports_file_yet_means_nothing_is_exported(exports: ExportsDir) -> None:
    initiator = LoopInitiator(exports.file)
    target = ExportsDir(exports.data_dir / "elsewhere").export(_volume(), MIB)
    with pytest.raises(VolumeNotFound, match="does not export it"):
        initiator.connect(target)
    assert list(initiator.connections()) == []


def test_a_garbled_exports_file_is_an_error_not_an_empty_list(exports: ExportsDir) -> None:
    target = exports.export(_volume(), 8 * MIB)
    exports.file.write_text('{"version": 1, "exports": {"nqn.2000-02.x:y": {}}}')
    with pytest.raises(MalformedOutput, match=r"nvme-exports\.json"):
        LoopInitiator(exports.file).connect(target)


def test_loop_devices_of_other_files_are_never_touched(
    exports: ExportsDir, janitor: Janitor
) -> None:
    stranger = janitor.root / "someone-elses.img"
    stranger.write_bytes(b"\0" * MIB)
    theirs = janitor.attach(stranger)
    initiator = LoopInitiator(exports.file)
    target = exports.export(_volume(), 8 * MIB)
    ours = initiator.connect(target)
    assert ours != theirs
    assert list(initiator.connections()) == [target.nqn]
    initiator.disconnect(target.nqn)
    assert theirs in janitor.loop_devices()
    assert ours not in janitor.loop_devices()


def test_disconnect_still_detaches_after_the_emulator_deleted_the_disk(
    exports: ExportsDir, janitor: Janitor
) -> None:
    initiator = LoopInitiator(exports.file)
    target = exports.export(_volume(), 8 * MIB)
    device = initiator.connect(target)
    exports.unexport(target, delete_image=True)
    # Still attached, so still a connection: NodeUnstage finds it there and disconnects it.
    restarted = LoopInitiator(exports.file)
    assert restarted.device_for(target.nqn) == device
    assert target.nqn in restarted.connections()
    restarted.disconnect(target.nqn)
    assert device not in janitor.loop_devices()
    assert target.nqn not in restarted.connections()


def test_the_same_volume_under_another_nqn_prefix_is_not_detached(
    exports: ExportsDir, janitor: Janitor
) -> None:
    initiator = LoopInitiator(exports.file)
    volume = _volume()
    target = exports.export(volume, 8 * MIB)
    device = initiator.connect(target)
    other = Nqn.for_volume(volume, prefix="nqn.2000-02.com.example")
    with pytest.raises(VolumeNotFound):
        initiator.connect(NvmeTarget(address="127.0.0.1", port=4420, nqn=other))
    initiator.disconnect(other)  # what a failed NodeStage cleans up with
    assert device in janitor.loop_devices()
    assert initiator.device_for(target.nqn) == device
    assert initiator.device_for(other) is None
    assert list(initiator.connections()) == [target.nqn]


def test_a_device_whose_image_was_replaced_is_not_reused(
    exports: ExportsDir, janitor: Janitor
) -> None:
    initiator = LoopInitiator(exports.file)
    volume = _volume()
    target = exports.export(volume, 8 * MIB)
    stale = initiator.connect(target)
    exports.unexport(target, delete_image=True)
    target = exports.export(volume, 8 * MIB)  # same NQN, same path, a new file
    fresh = initiator.connect(target)
    assert fresh != stale
    assert initiator.device_for(target.nqn) == fresh
    initiator.disconnect(target.nqn)
    assert not {stale, fresh} & set(janitor.loop_devices())


def test_a_busy_device_is_detached_on_last_close(exports: ExportsDir, janitor: Janitor) -> None:
    initiator = LoopInitiator(exports.file)
    target = exports.export(_volume(), 8 * MIB)
    device = initiator.connect(target)
    volume = target.nqn.volume_id
    assert volume is not None
    with pathlib.Path(device).open("rb"):
        initiator.disconnect(target.nqn)  # losetup -d on a busy device: autoclear
        assert initiator.device_for(target.nqn) is None
        assert target.nqn not in initiator.connections()
        # Still the volume's (a mount of it is a stale mount of the volume), no one else's.
        assert list(initiator.lingering(volume)) == [device]
        assert list(initiator.lingering(_volume())) == []
    # After the last close the kernel lets it go (some kernels do it from a work queue).
    for _ in range(100):
        if device not in janitor.loop_devices():
            break
        time.sleep(0.05)
    assert device not in janitor.loop_devices()
    assert list(initiator.lingering(volume)) == []


def test_two_nodes_with_own_records_each_attach_their_own_device(
    exports: ExportsDir, janitor: Janitor
) -> None:
    # Two node processes on one host play two hosts: each its own device on the shared image.
    node_a = LoopInitiator(exports.file, records_dir=janitor.root / "a", own_records=True)
    node_b = LoopInitiator(exports.file, records_dir=janitor.root / "b", own_records=True)
    target = exports.export(_volume(), 8 * MIB)
    device_a = node_a.connect(target)
    device_b = node_b.connect(target)
    assert device_a != device_b
    assert node_a.connect(target) == device_a  # idempotent: its own device again
    assert node_a.device_for(target.nqn) == device_a
    assert node_b.device_for(target.nqn) == device_b
    assert list(node_a.connections()) == list(node_b.connections()) == [target.nqn]
    with open(device_a, "r+b", buffering=0) as a:  # noqa: PTH123 - a block device
        a.write(b"written on a".ljust(4096, b"\0"))
        os.fsync(a.fileno())
    with open(device_b, "rb", buffering=0) as b:  # noqa: PTH123
        assert b.read(12) == b"written on a"  # one disk behind both
    node_a.disconnect(target.nqn)
    assert device_a not in janitor.loop_devices()
    assert device_b in janitor.loop_devices()  # the other node's device stays
    assert list(node_a.connections()) == []
    assert list(node_b.connections()) == [target.nqn]
    node_b.disconnect(target.nqn)
    assert device_b not in janitor.loop_devices()


def test_a_shared_initiator_reuses_the_device_another_attached(
    exports: ExportsDir, janitor: Janitor
) -> None:
    # The default (no own records): one host, one device per image, whoever attached it.
    target = exports.export(_volume(), 8 * MIB)
    first = LoopInitiator(exports.file).connect(target)
    assert LoopInitiator(exports.file, records_dir=janitor.root / "other").connect(target) == first
    LoopInitiator(exports.file).disconnect(target.nqn)
    assert first not in janitor.loop_devices()
