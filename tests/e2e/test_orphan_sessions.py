"""
Orphan sessions on a node, on real loop devices (root): ``rds-csi orphans --side node`` lists
and disconnects only a connection under our NQN prefix that kubelet has no record of; a
connection under any other NQN (here a foreign target exported beside ours) and one kubelet
still counts as staged are never listed nor touched.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from rds_csi.adapters.loop import LoopInitiator
from rds_csi.domain import Nqn, NvmeTarget, VolumeId
from rds_csi.domain.size import MIB
from rds_csi.entrypoints.csi.identity import DEFAULT_DRIVER_NAME
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


def _volume() -> VolumeId:
    return VolumeId.from_name(f"orphan-{uuid.uuid4()}")


def _foreign(exports: ExportsDir) -> NvmeTarget:
    """Someone else's target: its NQN ends in a volume ID of our shape; its prefix is not ours."""
    vid = _volume()
    target = exports.export(vid, 8 * MIB)
    data = json.loads(exports.file.read_text())
    foreign = Nqn(f"nqn.2019-01.io.example.other:{vid}")
    data["exports"][foreign.value] = data["exports"].pop(target.nqn.value)
    exports.file.write_text(json.dumps(data))
    return NvmeTarget(address="127.0.0.1", port=4420, nqn=foreign)


def test_the_cli_disconnects_only_our_unused_session(janitor: Janitor) -> None:
    exports = ExportsDir(janitor.root / "rds")
    records = janitor.root / "node" / "loop-records"
    kubelet = janitor.root / "node" / "kubelet"
    kubelet.mkdir(parents=True)
    node = LoopInitiator(exports.file, records_dir=records, own_records=True)
    lost, staged = _volume(), _volume()
    lost_target = exports.export(lost, 8 * MIB)
    staged_target = exports.export(staged, 8 * MIB)
    foreign_target = _foreign(exports)
    devices = {t.nqn: node.connect(t) for t in (lost_target, staged_target, foreign_target)}
    record = kubelet / "plugins/kubernetes.io/csi/volumeDevices/pv-staged/data"
    record.mkdir(parents=True)
    (record / "vol_data.json").write_text(
        json.dumps({"driverName": DEFAULT_DRIVER_NAME, "volumeHandle": str(staged)})
    )

    def orphans(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [
            sys.executable, "-m", "rds_csi", "orphans", *args, "--side", "node",
            "--initiator", "loop", "--loop-exports-file", str(exports.file),
            "--loop-records-dir", str(records), "--kubelet-dir", str(kubelet),
            "--orphan-grace", "0", "--json",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("RDS_CSI_")}
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=120, env=env, check=False
        )

    listed = orphans("list")
    assert listed.returncode == 0, listed.stderr
    assert [(o["kind"], o["name"]) for o in json.loads(listed.stdout)] == [
        ("session", lost_target.nqn.value)
    ]
    assert all(d in janitor.loop_devices() for d in devices.values())  # list changes nothing

    cleaned = orphans("clean", "--yes")
    assert cleaned.returncode == 0, cleaned.stderr
    assert [o["action"] for o in json.loads(cleaned.stdout)] == ["removed"]
    left = janitor.loop_devices()
    assert devices[lost_target.nqn] not in left
    assert devices[staged_target.nqn] in left
    assert devices[foreign_target.nqn] in left  # never another NQN's
