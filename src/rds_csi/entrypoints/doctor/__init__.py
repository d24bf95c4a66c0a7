"""
``rds-csi doctor controller|node``: what the driver needs from its surroundings, checked one
line at a time with the fix; exit 0 when nothing failed, 1 when a check failed, 2 when the
configuration itself cannot be read. It reads the same settings as the driver.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Final, TextIO

from rds_csi.entrypoints.config import SettingsError, add_serve_arguments, resolve_settings
from rds_csi.entrypoints.doctor.controller import check_controller
from rds_csi.entrypoints.doctor.node import NodeHost, check_node
from rds_csi.entrypoints.doctor.report import Findings, fail, render
from rds_csi.entrypoints.logs import configure_logging


__all__ = ["configure", "run"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_CONFIG: Final = 2


def configure(parser: argparse.ArgumentParser) -> None:
    flavours = parser.add_subparsers(dest="flavour", metavar="ROLE", required=True)
    for name, text in (
        ("controller", "the RDS: key, host key, reach, login, RouterOS, pool, space, paths"),
        ("node", "this node: NVMe/TCP modules, host NQN, nvme-cli, fs tools, kubelet dir"),
    ):
        sub = flavours.add_parser(name, help=text, description=text)
        add_serve_arguments(sub)
        sub.add_argument("--json", action="store_true", help="print JSON instead of lines")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    # The adapters' own warnings would interleave with the findings; failures are findings.
    configure_logging("error")
    findings = Findings()
    try:
        settings = resolve_settings(args)
    except SettingsError as exc:
        findings.add(fail("configuration", str(exc), "fix the setting named, where it came from"))
        render(findings, out, as_json=args.json)
        return EXIT_CONFIG
    if args.flavour == "node":
        check_node(
            settings, findings, NodeHost(kubelet_dir=pathlib.Path(settings.node.kubelet_dir))
        )
    else:
        check_controller(settings, findings)
    render(findings, out, as_json=args.json)
    return EXIT_FAILED if findings.failed else EXIT_OK
