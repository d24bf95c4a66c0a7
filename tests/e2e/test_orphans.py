"""
Orphan disks end to end: ``rds-csi all`` on the emulator (over real SSH) with the fake
Kubernetes port kept in a file reports a disk no PV names (an ``OrphanFound`` Event and the
``rds_csi_orphans`` gauge) and deletes nothing; ``rds-csi orphans list`` and ``clean`` (a dry
run, then ``--yes``) run as an operator runs them, against the same RDS and cluster.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from rds_csi.domain import Size
from rds_csi.emulator import Emulator, EmulatorConfig
from rds_csi.emulator.server import ClientFiles
from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e.conftest import GIB, DriverProcess, start_driver, unique_name


@pytest.fixture
def client(tmp_path: pathlib.Path) -> Iterator[ClientFiles]:
    config = EmulatorConfig(data_dir=tmp_path / "rds", pool_size=Size.from_quantity("100Gi"))
    with Emulator(config) as emulator:
        yield emulator.provision_client(tmp_path / "client")


def _rds(client: ClientFiles) -> list[str]:
    return [
        "--backend", "ssh", "--rds-address", client.host, "--rds-port", str(client.port),
        "--rds-user", client.user, "--rds-ssh-key", str(client.key_file),
        "--rds-known-hosts", str(client.known_hosts_file),
    ]  # fmt: skip


def _cluster(path: pathlib.Path, pvs: list[str]) -> None:
    data = {
        "persistent_volumes": [{"name": f"pv-{v}", "volume_handle": v} for v in pvs],
        "nodes": [{"name": "e2e-node", "ready": True, "csi": True}],
    }
    path.write_text(json.dumps(data))


def orphans(
    client: ClientFiles, state: pathlib.Path, *args: str
) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable, "-m", "rds_csi", "orphans", *args, *_rds(client),
        "--kubernetes", "fake", "--kubernetes-state-file", str(state),
        "--orphan-grace", "0.2",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("RDS_CSI_")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)


def _volume_ids(driver: DriverProcess) -> set[str]:
    listed = driver.controller.ListVolumes(csi_pb2.ListVolumesRequest(), timeout=10)
    return {e.volume.volume_id for e in listed.entries}


def test_the_reconciler_reports_and_the_cli_cleans(
    client: ClientFiles, tmp_path: pathlib.Path
) -> None:
    state = tmp_path / "cluster.json"
    _cluster(state, [])
    driver = start_driver(
        tmp_path / "driver",
        *_rds(client),
        "--kubernetes", "fake", "--kubernetes-state-file", str(state),
        "--orphan-interval", "0.2", "--orphan-grace", "0.5",
    )  # fmt: skip
    try:
        params = {"rdsAddress": client.host}
        owned = driver.create(unique_name(), GIB, parameters=params).volume_id
        _cluster(state, [owned])  # the provisioner made its PV
        lost = driver.create(unique_name(), GIB, parameters=params).volume_id
        driver.wait_for(
            lambda: driver.sample("rds_csi_orphans", kind="disk") == 1,
            "the reconciler to count the orphan disk",
        )
        events = [
            json.loads(line)
            for line in pathlib.Path(f"{state}.events.jsonl").read_text().splitlines()
        ]
        found = [e for e in events if e["reason"] == "OrphanFound"]
        assert found
        assert {e["about"]["name"] for e in found} == {lost}
        assert _volume_ids(driver) == {owned, lost}  # reported, not deleted

        listed = orphans(client, state, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [(o["kind"], o["name"]) for o in json.loads(listed.stdout)] == [("disk", lost)]
        assert "looking again" in listed.stderr

        dry = orphans(client, state, "clean")
        assert dry.returncode == 0, dry.stderr
        assert "would remove" in dry.stdout
        assert lost in dry.stdout
        assert _volume_ids(driver) == {owned, lost}

        cleaned = orphans(client, state, "clean", "--yes", "--json")
        assert cleaned.returncode == 0, cleaned.stderr
        assert [(o["name"], o["action"]) for o in json.loads(cleaned.stdout)] == [(lost, "removed")]
        assert _volume_ids(driver) == {owned}
        assert orphans(client, state, "list").stdout == "no orphans\n"
        driver.wait_for(
            lambda: driver.sample("rds_csi_orphans", kind="disk") == 0,
            "the gauge to drop once the orphan is gone",
        )
    finally:
        assert driver.stop() == 0
