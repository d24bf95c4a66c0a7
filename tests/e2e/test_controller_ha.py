"""
Two controller replicas over one cluster and one RDS: the background reporters elect one
holder through their Leases, so a stale attachment and an orphan disk are each told once;
when the holder stops, the other replica takes over once the Lease expires.

The cluster is the fake Kubernetes port kept in a file (``--kubernetes-state-file``), whose
Leases both processes share under a file lock; the RDS is the emulator over real SSH.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rds_csi.domain import Size
from rds_csi.emulator import Emulator, EmulatorConfig
from rds_csi.emulator.server import ClientFiles
from tests.e2e.conftest import GIB, DriverProcess, start_driver, unique_name


STALE_LEASE = "took the lease rds-csi-stale-attachments"
ORPHAN_LEASE = "took the lease rds-csi-orphans"


@pytest.fixture
def client(tmp_path: pathlib.Path) -> Iterator[ClientFiles]:
    config = EmulatorConfig(data_dir=tmp_path / "rds", pool_size=Size.from_quantity("100Gi"))
    with Emulator(config) as emulator:
        yield emulator.provision_client(tmp_path / "client")


def _events(state: pathlib.Path, reason: str) -> list[dict[str, Any]]:
    path = pathlib.Path(f"{state}.events.jsonl")
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines()]
    return [e for e in events if e["reason"] == reason]


def _controller(workdir: pathlib.Path, client: ClientFiles, state: pathlib.Path) -> DriverProcess:
    return start_driver(
        workdir,
        "--backend", "ssh", "--rds-address", client.host, "--rds-port", str(client.port),
        "--rds-user", client.user, "--rds-ssh-key", str(client.key_file),
        "--rds-known-hosts", str(client.known_hosts_file),
        "--kubernetes", "fake", "--kubernetes-state-file", str(state),
        "--stale-attachment-interval", "0.2", "--orphan-interval", "0.2",
        "--orphan-grace", "0.3", "--log-level", "info",
        mode="controller",
    )  # fmt: skip


def test_two_replicas_elect_one_reporter_and_the_other_takes_over(
    client: ClientFiles, tmp_path: pathlib.Path
) -> None:
    state = tmp_path / "cluster.json"
    state.write_text(json.dumps({"nodes": [{"name": "e2e-node", "ready": True, "csi": True}]}))
    first = _controller(tmp_path / "one", client, state)
    second = _controller(tmp_path / "two", client, state)
    replicas = [first, second]
    try:
        params = {"rdsAddress": client.host}
        held = first.create(unique_name(), GIB, parameters=params).volume_id
        lost = first.create(unique_name(), GIB, parameters=params).volume_id
        # The volume is attached to a node that is gone: a stale attachment. The other disk
        # has no PV: an orphan.
        data = json.loads(state.read_text())
        data["persistent_volumes"] = [
            {
                "name": "pv-held",
                "volume_handle": held,
                "claim_namespace": "apps",
                "claim_name": "data",
            }
        ]
        data["volume_attachments"] = [
            {"name": "va-1", "pv_name": "pv-held", "node_name": "gone", "attached": True}
        ]
        state.write_text(json.dumps(data))
        first.wait_for(
            lambda: bool(_events(state, "StaleAttachment") and _events(state, "OrphanFound")),
            "a stale attachment and an orphan reported",
        )
        time.sleep(1.5)  # several passes of both replicas
        assert len(_events(state, "StaleAttachment")) == 1
        assert [e["about"]["name"] for e in _events(state, "OrphanFound")] == [lost]
        for lease in (STALE_LEASE, ORPHAN_LEASE):
            assert sum(lease in r.log() for r in replicas) == 1, lease

        leader = next(r for r in replicas if ORPHAN_LEASE in r.log())
        follower = second if leader is first else first
        assert leader.stop() == 0
        replicas.remove(leader)
        # The Lease outlives its holder by its duration (2 intervals + 10 s of slack).
        follower.wait_for(
            lambda: len(_events(state, "OrphanFound")) == 2,
            "the other replica to take the orphan reporter over",
            timeout=30,
        )
        assert ORPHAN_LEASE in follower.log()
    finally:
        for replica in replicas:
            replica.stop()
