"""
The ``rds-csi`` command: ``controller``, ``node``, ``all``, ``call``, ``doctor``, ``orphans``,
``emulator``, ``version``.

A subcommand is one ``Command`` in ``COMMANDS``: a name, a help line, a function adding its
flags and a function running it (returning the exit code). Exit codes: 0 success, 1 a
runtime or RPC failure, 2 bad usage or configuration.

Subcommands load lazily (issue 15): ``main`` configures only the subcommand it runs, and each
one's module is imported when it is configured, so ``rds-csi node`` never imports the
emulator, the doctor or the SSH stack, and ``rds-csi call`` never imports the server.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from rds_csi import __version__
from rds_csi.entrypoints.logs import configure_logging
from rds_csi.entrypoints.settings import Mode


__all__ = ["COMMANDS", "Command", "build_parser", "main"]


@attrs.frozen
class Command:
    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _lazy(module: str, name: str) -> Callable[[Any], Any]:
    """``module.name``, imported on the first call (a subcommand's module costs only its run)."""

    def call(arg: Any) -> Any:
        return getattr(importlib.import_module(module), name)(arg)

    return call


def _serve(mode: Mode, args: argparse.Namespace) -> int:
    from rds_csi.entrypoints.config import SettingsError, resolve_settings  # noqa: PLC0415
    from rds_csi.entrypoints.serve import EXIT_CONFIG, serve  # noqa: PLC0415 - lazy: see top

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
        _lazy("rds_csi.entrypoints.config", "add_serve_arguments"),
        functools.partial(_serve, Mode.CONTROLLER),
    ),
    Command(
        "node",
        "serve CSI Identity + Node",
        _lazy("rds_csi.entrypoints.config", "add_serve_arguments"),
        functools.partial(_serve, Mode.NODE),
    ),
    Command(
        "all",
        "serve Identity, Controller and Node in one process (single-node trial)",
        _lazy("rds_csi.entrypoints.config", "add_serve_arguments"),
        functools.partial(_serve, Mode.ALL),
    ),
    Command(
        "call",
        "call the driver's RPCs (operators, demos)",
        _lazy("rds_csi.entrypoints.client", "configure"),
        _lazy("rds_csi.entrypoints.client", "run"),
    ),
    Command(
        "doctor",
        "check what the driver needs, with the fix for what is wrong (controller or node)",
        _lazy("rds_csi.entrypoints.doctor", "configure"),
        _lazy("rds_csi.entrypoints.doctor", "run"),
    ),
    Command(
        "orphans",
        "list or remove disks and NVMe/TCP sessions of the driver that nobody owns",
        _lazy("rds_csi.entrypoints.orphans_cli", "configure"),
        _lazy("rds_csi.entrypoints.orphans_cli", "run"),
    ),
    Command(
        "emulator",
        "run the RouterOS (RDS) emulator: SSH on loopback, disks as sparse files",
        _lazy("rds_csi.emulator.cli", "add_arguments"),
        _lazy("rds_csi.emulator.cli", "run"),
    ),
    Command("version", "print the version", _no_flags, _version),
]


def build_parser(
    commands: Sequence[Command] = COMMANDS, *, only: str | None = None
) -> argparse.ArgumentParser:
    """
    Every subcommand, with its flags; with ``only``, the flags of that one alone (the others
    are listed in ``--help`` but not configured, so their modules are not imported).
    """
    parser = argparse.ArgumentParser(
        prog="rds-csi", description="CSI driver for MikroTik ROSE Data Server (RDS)"
    )
    parser.add_argument("--version", action="version", version=f"rds-csi {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands:
        sub = subcommands.add_parser(command.name, help=command.help, description=command.help)
        if only is None or command.name == only:
            command.configure(sub)
            sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The subcommand is the first word: the top level takes only --help and --version.
    chosen = next((word for word in argv if not word.startswith("-")), None)
    names = {command.name for command in COMMANDS}
    args = build_parser(only=chosen if chosen in names else None).parse_args(argv)
    try:
        code: int = args.run(args)
    except BrokenPipeError:
        # `rds-csi call list | head`: the reader left; that is not our failure.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code
