"""
``rds-csi call snapshot create|list|delete``: CreateSnapshot, ListSnapshots, DeleteSnapshot.

``client.py`` adds ``snapshot_verbs()`` to its verbs; the create flags for a source live in
``client_sources.py``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rds_csi.domain import Size
from rds_csi.entrypoints.client_verbs import Output, Stubs, Verb, as_json
from rds_csi.entrypoints.csi._pb import csi_pb2


__all__ = ["snapshot_verbs"]


def _row(snap: csi_pb2.Snapshot) -> list[str]:
    created = snap.creation_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") + "Z"
    return [
        snap.snapshot_id,
        snap.source_volume_id,
        str(Size(snap.size_bytes)) if snap.size_bytes else "-",
        created,
        "yes" if snap.ready_to_use else "no",
    ]


_HEADER = ["snapshot_id", "source_volume_id", "size", "created", "ready"]


def _create(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.controller.CreateSnapshot(
        csi_pb2.CreateSnapshotRequest(name=a.name, source_volume_id=a.source_volume),
        timeout=s.timeout,
    )
    return Output([_HEADER, _row(resp.snapshot)], as_json(resp))


def _list(s: Stubs, a: argparse.Namespace) -> Output:
    rows = [_HEADER]
    entries: list[object] = []
    token = ""
    while True:
        resp = s.controller.ListSnapshots(
            csi_pb2.ListSnapshotsRequest(
                max_entries=100,
                starting_token=token,
                snapshot_id=a.snapshot_id or "",
                source_volume_id=a.source_volume or "",
            ),
            timeout=s.timeout,
        )
        for entry in resp.entries:
            rows.append(_row(entry.snapshot))
            entries.append(as_json(entry))
        token = resp.next_token
        if not token:
            return Output(rows, {"entries": entries})


def _delete(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.controller.DeleteSnapshot(
        csi_pb2.DeleteSnapshotRequest(snapshot_id=a.snapshot_id), timeout=s.timeout
    )
    return Output(
        [["result", "snapshot_id"], ["deleted", a.snapshot_id]], as_json(resp) or {"ok": True}
    )


def _dispatch(s: Stubs, a: argparse.Namespace) -> Output:
    verbs = {"create": _create, "list": _list, "delete": _delete}
    return verbs[a.snapshot_verb](s, a)


def _snapshot_flags(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="snapshot_verb", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="CreateSnapshot", description="CreateSnapshot")
    create.add_argument("--name", required=True, help="the CSI snapshot name")
    create.add_argument("--source-volume", required=True, metavar="VOLUME_ID")
    listing = sub.add_parser("list", help="ListSnapshots (every page)")
    listing.add_argument("--snapshot-id", help="only this snapshot")
    listing.add_argument("--source-volume", metavar="VOLUME_ID", help="only snapshots of it")
    delete = sub.add_parser("delete", help="DeleteSnapshot", description="DeleteSnapshot")
    delete.add_argument("snapshot_id", metavar="SNAPSHOT_ID")


def snapshot_verbs() -> dict[str, tuple[str, Verb, Callable[[argparse.ArgumentParser], None]]]:
    """``snapshot create|list|delete`` (options such as --json go before ``snapshot``)."""
    text = "CreateSnapshot, ListSnapshots, DeleteSnapshot: snapshot create|list|delete"
    return {"snapshot": (text, _dispatch, _snapshot_flags)}
