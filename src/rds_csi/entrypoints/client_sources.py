"""
``rds-csi call create --from-snapshot|--from-volume``: the content source of a new volume.

Apart from ``client_verbs.py`` (two hook lines there) so the snapshot work touches it little.
"""

from __future__ import annotations

import argparse

from rds_csi.entrypoints.csi._pb import csi_pb2


__all__ = ["add_source_flags", "content_source"]

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
