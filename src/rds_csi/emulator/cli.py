"""
``rds-csi emulator``: run an emulated RDS until interrupted.

    rds-csi emulator --listen 127.0.0.1:2222 --data-dir /var/lib/rds-emu --pool-size 100Gi \\
        --user admin --authorized-key ~/.ssh/id_ed25519.pub [--data-plane nvmet] \\
        [--rest-listen 127.0.0.1:8443 --password-file pw]

The password may come from ``--password-file`` or ``RDS_EMULATOR_PASSWORD`` (``--password`` shows
in ``ps``); an empty one is refused. An address that gives ``--login-failures`` wrong passwords
within a minute is refused for ``--login-lockout`` seconds. On start it prints the address and the
``known_hosts`` line of its host key; with ``--rest-listen`` also the REST API's URL and its
certificate's fingerprint (the PEM is ``DIR/www-ssl.pem``, the CA file a REST client trusts).
REST logins need the password.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import attrs

from rds_csi.domain import InvalidArgument, Size
from rds_csi.domain.size import GIB
from rds_csi.emulator.dialect import (
    DIALECTS,
    EMPTY_FINDS,
    HEADER_WRAPS,
    POOL_ROWS,
    SIZE_DISPLAYS,
    WRAP_STYLES,
    Dialect,
)
from rds_csi.emulator.faults import FaultKind
from rds_csi.emulator.logins import LoginLimit
from rds_csi.emulator.nvmet_plane import DATA_PLANES, check_data_address
from rds_csi.emulator.server import Emulator, EmulatorConfig, EmulatorUser


__all__ = ["add_arguments", "dialect_from", "main", "parse_listen"]

PASSWORD_ENV = "RDS_EMULATOR_PASSWORD"  # noqa: S105 - a variable name


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:2222``, ``[::1]:2222`` or ``localhost:0``."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:  # noqa: PLR2004
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _size(text: str) -> Size:
    try:
        return Size.from_quantity(text, field="--pool-size")
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _share(text: str) -> float:
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share within 0-1")
    return share


def _ip(text: str) -> str:
    try:
        return check_data_address(text, field="--data-address")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen", type=parse_listen, default=("127.0.0.1", 2222), metavar="HOST:PORT"
    )
    parser.add_argument(
        "--rest-listen",
        type=parse_listen,
        default=None,
        metavar="HOST:PORT",
        help="also serve the REST API over HTTPS here (self-signed certificate in DIR)",
    )
    parser.add_argument(
        "--data-dir",
        type=pathlib.Path,
        required=True,
        metavar="DIR",
        help="disk table, exports file, host key and the pool's sparse images",
    )
    parser.add_argument("--pool-size", type=_size, default=Size(100 * GIB), metavar="SIZE")
    parser.add_argument(
        "--pool-name",
        default="storage-pool",
        help="mount point of the pool; disks live under /<pool-name>/",
    )
    parser.add_argument("--user", default="admin")
    parser.add_argument(
        "--password", default=None, help="prefer --password-file or $" + PASSWORD_ENV
    )
    parser.add_argument("--password-file", type=pathlib.Path, default=None)
    parser.add_argument(
        "--login-failures",
        type=int,
        default=LoginLimit().failures,
        metavar="N",
        help="wrong passwords an address may give within a minute before it is locked out; "
        "0: no limit",
    )
    parser.add_argument(
        "--login-lockout",
        type=float,
        default=LoginLimit().lockout,
        metavar="SECONDS",
        help="how long a locked-out address is refused, even with the right password",
    )
    parser.add_argument(
        "--authorized-key",
        type=pathlib.Path,
        action="append",
        default=[],
        metavar="FILE",
        help="OpenSSH public key file(s) the user may log in with",
    )
    parser.add_argument(
        "--host-key",
        type=pathlib.Path,
        default=None,
        metavar="FILE",
        help="server private key; made on first start (default DIR/ssh_host_ecdsa_key)",
    )
    _add_dialect_arguments(parser)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every command")
    parser.add_argument("--jitter", type=float, default=0.0, help="up to this much more, at random")
    parser.add_argument(
        "--rtt", type=float, default=0.0, help="emulated network round trip, seconds"
    )
    parser.add_argument(
        "--data-plane",
        choices=DATA_PLANES,
        default="json",
        help="json: exports only described in DIR/nvme-exports.json (for the loop initiator); "
        "nvmet: also served over NVMe/TCP by the kernel target (root, nvmet modules); "
        "auto: nvmet where the kernel has it",
    )
    parser.add_argument(
        "--data-address",
        type=_ip,
        default=None,
        metavar="IP",
        help="where the kernel target listens (default: the --listen host)",
    )
    parser.add_argument(
        "--drop-rate",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="testing: this share (0-1) of commands lose their connection, before or after running",
    )
    parser.add_argument(
        "--garble-rate",
        type=_share,
        default=0.0,
        metavar="SHARE",
        help="testing: this share (0-1) of answers come back with junk in the middle",
    )
    parser.add_argument(
        "--copy-throughput",
        type=int,
        default=0,
        metavar="BYTES_PER_S",
        help="speed of /file copy and copy-from (A32, A33); 0: as fast as the host, reflink "
        "where it can",
    )
    parser.add_argument("--log-level", default="INFO")


def _add_dialect_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for each unverified behaviour (see ``assumptions.py``); a preset, then overrides."""
    group = parser.add_argument_group("dialect (how to answer where RouterOS is unverified)")
    group.add_argument(
        "--dialect",
        choices=tuple(DIALECTS),
        default="today",
        help="preset: today (the emulator's defaults), strict (every guess the hostile way), "
        "wide (the real capture's style); the flags below override it",
    )
    group.add_argument(
        "--width", type=int, default=None, help="output width unless the login names one (A1)"
    )
    group.add_argument("--wrap-style", choices=WRAP_STYLES, default=None, help="A2")
    group.add_argument("--header-wrap", choices=HEADER_WRAPS, default=None, help="A6")
    group.add_argument("--error-exit-status", type=int, choices=(0, 1), default=None, help="A14")
    group.add_argument("--empty-find", choices=EMPTY_FINDS, default=None, help="A13")
    group.add_argument(
        "--first-number", type=int, default=None, help="number of the first /disk item (A3)"
    )
    group.add_argument("--size-display", choices=SIZE_DISPLAYS, default=None, help="A29")
    group.add_argument("--pool-row", choices=POOL_ROWS, default=None, help="A20")


def dialect_from(args: argparse.Namespace) -> Dialect:
    """The preset named by ``--dialect`` with every flag given on top."""
    names = (
        "width",
        "wrap_style",
        "header_wrap",
        "error_exit_status",
        "empty_find",
        "first_number",
        "size_display",
        "pool_row",
    )
    changes = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    return attrs.evolve(DIALECTS[args.dialect], **changes)


def _password(args: argparse.Namespace) -> str | None:
    if args.password_file is not None:
        password = str(args.password_file.read_text().rstrip("\n"))
        source = f"--password-file {args.password_file}"
    elif args.password is not None:
        password, source = str(args.password), "--password"
    else:
        return os.environ.get(PASSWORD_ENV) or None
    if not password:
        raise ValueError(
            f"{source} gives an empty password, which would let anyone log in: "
            "give a non-empty one, or log in with --authorized-key only"
        )
    return password


def config_from(args: argparse.Namespace) -> EmulatorConfig:
    keys: list[str] = []
    for path in args.authorized_key:
        keys += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return EmulatorConfig(
        data_dir=args.data_dir,
        pool_size=args.pool_size,
        pool_name=args.pool_name,
        listen=args.listen,
        users=(EmulatorUser(args.user, _password(args), keys),),
        host_key_file=args.host_key,
        dialect=dialect_from(args),
        data_plane=args.data_plane,
        data_address=args.data_address,
        login_limit=LoginLimit(failures=args.login_failures, lockout=args.login_lockout),
        rest_listen=args.rest_listen,
        copy_throughput=args.copy_throughput,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rds-csi emulator", description=__doc__.split("\n")[1])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT (``rds-csi emulator`` registers this)."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        config = config_from(args)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"rds-csi emulator: {exc}\n")
        return 2
    if config.users[0].password is None and not config.users[0].authorized_keys:
        sys.stderr.write(
            "rds-csi emulator: nobody could log in: give --authorized-key, --password-file "
            f"or ${PASSWORD_ENV}\n"
        )
        return 2
    try:
        emulator = Emulator(config)
    except ValueError as exc:
        sys.stderr.write(f"rds-csi emulator: {exc}\n")
        return 2
    emulator.latency.command = args.latency
    emulator.latency.command_jitter = args.jitter
    emulator.latency.rtt = args.rtt
    # Half of the drops close the connection before the command runs, half after.
    emulator.faults.rate(FaultKind.DROP_BEFORE, args.drop_rate / 2)
    emulator.faults.rate(FaultKind.DROP_AFTER, args.drop_rate / 2)
    emulator.faults.rate(FaultKind.GARBLE, args.garble_rate)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host, port = emulator.start()
    sys.stdout.write(f"RDS emulator listening on {host}:{port}\n")
    sys.stdout.write(f"known_hosts: {emulator.known_hosts_line()}\n")
    if emulator.rest is not None:
        sys.stdout.write(f"REST API on {emulator.rest.url}/rest\n")
        sys.stdout.write(
            f"REST certificate: {emulator.rest.fingerprint} ({emulator.rest.cert_file})\n"
        )
    sys.stdout.flush()
    try:
        stop.wait()
    finally:
        emulator.close()
    return 0
