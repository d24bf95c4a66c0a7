"""
``rds-csi call snapshot create|list|delete`` and ``create --from-snapshot|--from-volume``.

Kept apart from ``client.py``, which registers these through two hooks: ``register`` adds the
``snapshot`` verb, ``add_source_flags``/``content_source`` extend ``create``.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from rds_csi.domain import Size
from rds_csi.entrypoints.csi._pb import csi_pb2


if TYPE_CHECKING:
    from rds_csi.entrypoints.client import Output, Stubs


__all__ = ["add_source_flags", "content_source", "register"]

_Src = csi_pb2.VolumeContentSource


def add_source_flags(p: argparse.ArgumentParser) -> None:
    """``create``'s optional source: at most one of the two."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--from-snapshot", metavar="SNAPSHOT_ID", help="restore this snapshot")
    group.add_argument("--from-volume", metavar="VOLUME_ID", help="clone this volume")


def content_source(args: argparse.Namespace) -> _Src | None:
    if getattr(args, "from_snapshot", None):
        return _Src(snapshot=_Src.SnapshotSource(snapshot_id=args.from_snapshot))
    if getattr(args, "from_volume", None):
        return _Src(volume=_Src.VolumeSource(volume_id=args.from_volume))
    return None


def _json(message: Message) -> dict[str, object]:
    return MessageToDict(message, preserving_proto_field_name=True)


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
    from rds_csi.entrypoints.client import Output  # noqa: PLC0415 - client imports this module

    resp = s.controller.CreateSnapshot(
        csi_pb2.CreateSnapshotRequest(name=a.name, source_volume_id=a.source_volume),
        timeout=s.timeout,
    )
    return Output([_HEADER, _row(resp.snapshot)], _json(resp))


def _list(s: Stubs, a: argparse.Namespace) -> Output:
    from rds_csi.entrypoints.client import Output  # noqa: PLC0415

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
            entries.append(_json(entry))
        token = resp.next_token
        if not token:
            return Output(rows, {"entries": entries})


def _delete(s: Stubs, a: argparse.Namespace) -> Output:
    from rds_csi.entrypoints.client import Output  # noqa: PLC0415

    resp = s.controller.DeleteSnapshot(
        csi_pb2.DeleteSnapshotRequest(snapshot_id=a.snapshot_id), timeout=s.timeout
    )
    return Output(
        [["result", "snapshot_id"], ["deleted", a.snapshot_id]], _json(resp) or {"ok": True}
    )


def _dispatch(s: Stubs, a: argparse.Namespace) -> Output:
    verbs = {"create": _create, "list": _list, "delete": _delete}
    return verbs[a.snapshot_verb](s, a)


def register(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``snapshot create|list|delete`` to ``rds-csi call``."""
    text = "CreateSnapshot, ListSnapshots, DeleteSnapshot"
    parser = verbs.add_parser("snapshot", help=text, description=text)
    parser.set_defaults(call_verb=_dispatch)
    sub = parser.add_subparsers(dest="snapshot_verb", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="CreateSnapshot", description="CreateSnapshot")
    create.add_argument("--name", required=True, help="the CSI snapshot name")
    create.add_argument("--source-volume", required=True, metavar="VOLUME_ID")
    listing = sub.add_parser("list", help="ListSnapshots (every page)")
    listing.add_argument("--snapshot-id", help="only this snapshot")
    listing.add_argument("--source-volume", metavar="VOLUME_ID", help="only snapshots of it")
    delete = sub.add_parser("delete", help="DeleteSnapshot", description="DeleteSnapshot")
    delete.add_argument("snapshot_id", metavar="SNAPSHOT_ID")
