"""
The ``rds-csi`` command: ``controller``, ``node``, ``all``, ``call``, ``doctor``, ``orphans``,
``emulator``, ``version``.

A subcommand is one ``Command`` in ``COMMANDS``: a name, a help line, a function adding its
flags and a function running it (returning the exit code). Exit codes: 0 success, 1 a
runtime or RPC failure, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence

import attrs

from rds_csi import __version__
from rds_csi.emulator import cli as emulator_cli
from rds_csi.entrypoints import client, doctor, orphans_cli
from rds_csi.entrypoints.config import SettingsError, add_serve_arguments, resolve_settings
from rds_csi.entrypoints.logs import configure_logging
from rds_csi.entrypoints.serve import EXIT_CONFIG, Mode, serve


__all__ = ["COMMANDS", "Command", "build_parser", "main"]


@attrs.frozen
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _serve(mode: Mode, args: argparse.Namespace) -> int:
    try:
        settings = resolve_settings(args)
    except SettingsError as exc:
        configure_logging()
        sys.stderr.write(f"rds-csi {mode.value}: {exc}\n")
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.log_format)
    return serve(settings, mode)


def _version(_args: argparse.Namespace) -> int:
    sys.stdout.write(f"rds-csi {__version__}\n")
    return 0


def _no_flags(_parser: argparse.ArgumentParser) -> None:
    return None


COMMANDS: list[Command] = [
    Command(
        "controller",
        "serve CSI Identity + Controller",
        add_serve_arguments,
        functools.partial(_serve, Mode.CONTROLLER),
    ),
    Command(
        "node",
        "serve CSI Identity + Node",
        add_serve_arguments,
        functools.partial(_serve, Mode.NODE),
    ),
    Command(
        "all",
        "serve Identity, Controller and Node in one process (single-node trial)",
        add_serve_arguments,
        functools.partial(_serve, Mode.ALL),
    ),
    Command("call", "call the driver's RPCs (operators, demos)", client.configure, client.run),
    Command(
        "doctor",
        "check what the driver needs, with the fix for what is wrong (controller or node)",
        doctor.configure,
        doctor.run,
    ),
    Command(
        "orphans",
        "list or remove disks and NVMe/TCP sessions of the driver that nobody owns",
        orphans_cli.configure,
        orphans_cli.run,
    ),
    Command(
        "emulator",
        "run the RouterOS (RDS) emulator: SSH on loopback, disks as sparse files",
        emulator_cli.add_arguments,
        emulator_cli.run,
    ),
    Command("version", "print the version", _no_flags, _version),
]


def build_parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rds-csi", description="CSI driver for MikroTik ROSE Data Server (RDS)"
    )
    parser.add_argument("--version", action="version", version=f"rds-csi {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands:
        sub = subcommands.add_parser(command.name, help=command.help, description=command.help)
        command.configure(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except BrokenPipeError:
        # `rds-csi call list | head`: the reader left; that is not our failure.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code
