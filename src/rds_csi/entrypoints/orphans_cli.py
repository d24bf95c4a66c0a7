"""
``rds-csi orphans list|clean``: what the driver made that nobody owns, for an operator.

It takes the driver's own settings (flags, ``RDS_CSI_*``, ``--config``: run it where the
controller or node plugin runs, e.g. ``kubectl exec``) and ``--side``: ``controller`` looks
for disks (the RDS and the PersistentVolumes), ``node`` for sessions (this node's NVMe/TCP
connections under our NQN prefix), ``all`` for both. A candidate is an orphan only if it is
still one ``--orphan-grace`` seconds later (it looks twice), so a volume being created is
never listed. ``clean`` is a dry run unless ``--yes``; each removal checks once more first.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Final

import attrs

from rds_csi.application.orphans import FindOrphans, Orphan, Sightings
from rds_csi.domain import DomainError
from rds_csi.entrypoints.config import SettingsError, add_serve_arguments, resolve_settings
from rds_csi.entrypoints.container import Container
from rds_csi.entrypoints.logs import configure_logging
from rds_csi.entrypoints.settings import Mode


__all__ = ["configure", "run"]

EXIT_FAILED: Final = 1
EXIT_CONFIG: Final = 2


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list orphans (changes nothing)")
    clean = actions.add_parser("clean", help="remove orphans (a dry run unless --yes)")
    what = clean.add_mutually_exclusive_group()
    what.add_argument(
        "--dry-run",
        dest="yes",
        action="store_false",
        help="say what would be removed, remove nothing (the default)",
    )
    what.add_argument("--yes", dest="yes", action="store_true", help="remove them")
    clean.set_defaults(yes=False)
    for sub in (listing, clean):
        sub.add_argument(
            "--side",
            choices=[m.value for m in Mode],
            default=Mode.CONTROLLER.value,
            help="controller: orphan disks on the RDS; node: orphan NVMe/TCP sessions on "
            "this node; all: both (default controller)",
        )
        sub.add_argument("--json", action="store_true", help="print JSON, not a table")
        add_serve_arguments(sub)


def _print(rows: list[dict[str, str]], *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    if not rows:
        sys.stdout.write("no orphans\n")
        return
    keys = list(rows[0])
    widths = [max(len(k), *(len(r[k]) for r in rows)) for k in keys]
    for line in [{k: k.upper() for k in keys}, *rows]:
        cells = (line[k].ljust(w) for k, w in zip(keys, widths, strict=True))
        sys.stdout.write("  ".join(cells).rstrip() + "\n")


def _find(container: Container) -> list[Orphan]:
    find: FindOrphans = container.orphans.find()
    sightings: Sightings = container.orphans.sightings()
    kinds = find.kinds
    candidates = find.candidates(kinds)
    confirmed = sightings.confirm(candidates, kinds)
    if candidates and sightings.grace > 0:
        sys.stderr.write(
            f"{len(candidates)} candidate(s); looking again in {sightings.grace:.0f}s "
            "(--orphan-grace): a volume being created is not an orphan\n"
        )
        container.clock().sleep(sightings.grace)
        confirmed = sightings.confirm(find.candidates(kinds), kinds)
    return confirmed


def run(args: argparse.Namespace) -> int:
    try:
        settings = resolve_settings(args)
    except SettingsError as exc:
        sys.stderr.write(f"rds-csi orphans: {exc}\n")
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    container = Container()
    container.settings.override(settings)
    container.mode.override(Mode(args.side))
    try:
        orphans = _find(container)
        if args.action == "list":
            _print([_row(o) for o in orphans], as_json=args.json)
            return 0
        if not args.yes:
            _print([{**_row(o), "action": "would remove"} for o in orphans], as_json=args.json)
            return 0
        results = container.orphans.clean()(orphans)
        _print(
            [{**_row(r.orphan), "action": r.error or "removed"} for r in results], as_json=args.json
        )
        return EXIT_FAILED if any(r.error for r in results) else 0
    except DomainError as exc:
        sys.stderr.write(f"rds-csi orphans: {exc}\n")
        return EXIT_FAILED
    finally:
        container.shutdown_resources()


def _row(orphan: Orphan) -> dict[str, str]:
    return {k: str(v) for k, v in attrs.asdict(orphan).items()}
