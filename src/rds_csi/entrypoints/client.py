"""
``rds-csi call``: the driver's RPCs from a shell, for operators and the README's demo.

Each verb builds one request (three for ``capabilities``, one per page for ``list``), prints
the answer as a small table or, with ``--json``, as JSON, and prints a failed call as
``CODE: message`` on stderr with exit code 1. The shared options (``--endpoint``, ``--json``,
``--timeout``, ``--config``) go before or after the verb. The verbs themselves live in
``client_verbs`` (Identity, Controller) and ``client_node`` (Node).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import Final, TextIO

import grpc

from rds_csi.entrypoints.client_node import node_verbs
from rds_csi.entrypoints.client_snapshots import snapshot_verbs
from rds_csi.entrypoints.client_verbs import Output, Stubs, Verb, controller_verbs
from rds_csi.entrypoints.endpoint import Endpoint, EndpointError, parse_endpoint
from rds_csi.entrypoints.settings import DEFAULT_ENDPOINT, ENV_PREFIX


__all__ = ["VERBS", "configure", "run"]

EXIT_RPC_ERROR: Final = 1
EXIT_USAGE: Final = 2
# Where the manifests' driver containers serve: `call` run inside a pod wants this one.
POD_ENDPOINT: Final = "unix:///csi/csi.sock"

VERBS: Final[dict[str, tuple[str, Verb, Callable[[argparse.ArgumentParser], None]]]] = {
    **controller_verbs(),
    **node_verbs(),
    **snapshot_verbs(),
}


def _default_endpoint(environ: Mapping[str, str]) -> str:
    return environ.get(ENV_PREFIX + "ENDPOINT") or environ.get("CSI_ENDPOINT") or DEFAULT_ENDPOINT


def _shared_options(parser: argparse.ArgumentParser, *, after_verb: bool) -> None:
    """
    The options every verb shares. After the verb their defaults are SUPPRESSed, so that
    one given before the verb is not overwritten by the verb's own default.
    """

    def default(value: object, /) -> object:
        return argparse.SUPPRESS if after_verb else value

    parser.add_argument(
        "--endpoint",
        default=default(_default_endpoint(os.environ)),
        help="the driver's endpoint (env RDS_CSI_ENDPOINT, CSI_ENDPOINT; "
        f"default {DEFAULT_ENDPOINT}, as `rds-csi all`; in the driver's pods {POD_ENDPOINT})",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default(False),  # noqa: FBT003 - a value, not a switch
        help="print JSON, not a table",
    )
    parser.add_argument("--timeout", type=float, default=default(30.0), help="seconds per call")
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default(os.environ.get(ENV_PREFIX + "CONFIG")),
        help="the driver's YAML settings, whose defaults fill a stage or publish volume "
        "context (env RDS_CSI_CONFIG)",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    """The ``call`` subcommand's flags and verbs."""
    _shared_options(parser, after_verb=False)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, (text, verb, add_flags) in VERBS.items():
        sub = verbs.add_parser(name, help=text, description=text)
        add_flags(sub)
        _shared_options(sub, after_verb=True)
        sub.set_defaults(call_verb=verb)


def _print_table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")


def _not_running(endpoint: Endpoint) -> str:
    """What to say when nothing answers at ``endpoint``: probably no driver there."""
    where = (
        f"{endpoint.unix_path} does not exist"
        if endpoint.unix_path is not None and not endpoint.unix_path.exists()
        else "nothing answers there"
    )
    return (
        f"no driver at {endpoint}: {where}. Is the driver running? Start one with "
        f"`rds-csi all --endpoint {endpoint}`, or point --endpoint (or RDS_CSI_ENDPOINT) at "
        f"the running one's socket ({POD_ENDPOINT} inside the driver's pods)."
    )


def _rpc_error(exc: grpc.RpcError, endpoint: Endpoint) -> str:
    message = f"{exc.code().name}: {exc.details()}"
    if exc.code() is grpc.StatusCode.UNAVAILABLE and "failed to connect" in (exc.details() or ""):
        message += f"\n{_not_running(endpoint)}"
    return message


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Call the verb; 0 on success, 1 on a gRPC error (``CODE: message``), 2 on bad usage."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        endpoint = parse_endpoint(args.endpoint)
    except EndpointError as exc:
        err.write(f"{exc}\n")
        return EXIT_USAGE
    if endpoint.unix_path is not None and not endpoint.unix_path.exists():
        err.write(f"{_not_running(endpoint)}\n")
        return EXIT_RPC_ERROR
    with grpc.insecure_channel(endpoint.grpc_target) as channel:
        stubs = Stubs.over(channel, args.timeout)
        try:
            output: Output = args.call_verb(stubs, args)
        except grpc.RpcError as exc:
            err.write(f"{_rpc_error(exc, endpoint)}\n")
            return EXIT_RPC_ERROR
        except argparse.ArgumentTypeError as exc:
            err.write(f"{exc}\n")
            return EXIT_USAGE
    if args.json:
        out.write(json.dumps(output.doc, indent=2, sort_keys=True) + "\n")
    else:
        _print_table(output.rows, out)
    return 0 if output.ok else EXIT_RPC_ERROR
