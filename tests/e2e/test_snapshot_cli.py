"""``rds-csi call snapshot create|list|delete`` and ``create --from-snapshot|--from-volume``."""

from __future__ import annotations

import json

from tests.e2e.conftest import DriverProcess, unique_name
from tests.e2e.test_lifecycle import call


def test_snapshot_verbs_and_restore_from_the_command_line(driver: DriverProcess) -> None:
    made = call(driver, "--json", "create", unique_name(), "--size", "2Gi")
    assert made.returncode == 0, made.stderr
    source = json.loads(made.stdout)["volume"]["volume_id"]

    snap = call(
        driver, "--json", "snapshot", "create", "--name", "nightly", "--source-volume", source
    )
    assert snap.returncode == 0, snap.stderr
    snapshot = json.loads(snap.stdout)["snapshot"]
    assert snapshot["source_volume_id"] == source
    assert snapshot["ready_to_use"] is True

    listed = call(driver, "snapshot", "list", "--source-volume", source)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["snapshot_id", "source_volume_id", "size", "created", "ready"]
    assert row.split()[0] == snapshot["snapshot_id"]
    assert row.split()[-1] == "yes"

    restored = call(
        driver, "--json", "create", unique_name(), "--size", "1Gi",
        "--from-snapshot", snapshot["snapshot_id"],
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    volume = json.loads(restored.stdout)["volume"]
    assert volume["capacity_bytes"] == str(2 << 30)  # at least the snapshot's size
    assert volume["content_source"]["snapshot"]["snapshot_id"] == snapshot["snapshot_id"]

    cloned = call(
        driver, "--json", "create", unique_name(), "--size", "2Gi", "--from-volume", source
    )
    assert cloned.returncode == 0, cloned.stderr
    assert json.loads(cloned.stdout)["volume"]["content_source"]["volume"]["volume_id"] == source

    both = call(
        driver, "create", "x", "--size", "1Gi", "--from-volume", source, "--from-snapshot", "s"
    )
    assert both.returncode == 2  # argparse: not allowed together

    deleted = call(driver, "snapshot", "delete", snapshot["snapshot_id"])
    assert deleted.returncode == 0, deleted.stderr
    gone = call(driver, "--json", "snapshot", "list", "--snapshot-id", snapshot["snapshot_id"])
    assert json.loads(gone.stdout) == {"entries": []}
