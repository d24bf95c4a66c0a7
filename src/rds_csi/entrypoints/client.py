"""
``rds-csi call``: the driver's RPCs from a shell, for operators and the README's demo.

Each verb builds one request (three for ``capabilities``, one per page for ``list``), prints
the answer as a small table or, with ``--json``, as JSON, and prints a failed call as
``CODE: message`` on stderr with exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Final, TextIO

import attrs
import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from rds_csi.domain import InvalidArgument, Size
from rds_csi.entrypoints import client_snapshots
from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc
from rds_csi.entrypoints.serve import EndpointError, parse_endpoint
from rds_csi.entrypoints.settings import DEFAULT_ENDPOINT, ENV_PREFIX


__all__ = ["configure", "run"]

EXIT_RPC_ERROR: Final = 1
EXIT_USAGE: Final = 2

_Cap = csi_pb2.VolumeCapability


@attrs.frozen
class Stubs:
    identity: csi_pb2_grpc.IdentityStub
    controller: csi_pb2_grpc.ControllerStub
    node: csi_pb2_grpc.NodeStub
    timeout: float

    @classmethod
    def over(cls, channel: grpc.Channel, timeout: float) -> Stubs:
        return cls(
            csi_pb2_grpc.IdentityStub(channel),
            csi_pb2_grpc.ControllerStub(channel),
            csi_pb2_grpc.NodeStub(channel),
            timeout,
        )


@attrs.frozen
class Output:
    """What a verb prints: ``rows`` (the first is the header) as a table, or ``doc`` as JSON."""

    rows: list[list[str]]
    doc: object


def _json(message: Message) -> dict[str, object]:
    return MessageToDict(message, preserving_proto_field_name=True)


def _fields(message: Message, rows: Sequence[tuple[str, object]]) -> Output:
    return Output([["field", "value"], *([k, str(v)] for k, v in rows)], _json(message))


def _done(what: str, volume_id: str, message: Message) -> Output:
    return Output([["result", "volume_id"], [what, volume_id]], _json(message) or {"ok": True})


# --- request builders ----------------------------------------------------------------------


def _pairs(items: Sequence[str] | None, flag: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items or ():
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise argparse.ArgumentTypeError(f"{flag}: {item!r} is not key=value")
        found[key] = value
    return found


def _capability(args: argparse.Namespace) -> csi_pb2.VolumeCapability:
    mode = _Cap.AccessMode(mode=_Cap.AccessMode.Mode.Value(args.access_mode))
    if args.block:
        return _Cap(access_mode=mode, block=_Cap.BlockVolume())
    return _Cap(access_mode=mode, mount=_Cap.MountVolume(fs_type=args.fs_type))


def _size(text: str) -> int:
    try:
        return Size.parse(text, field="--size").bytes
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --- verbs -----------------------------------------------------------------------------------


def _probe(s: Stubs, _a: argparse.Namespace) -> Output:
    resp = s.identity.Probe(csi_pb2.ProbeRequest(), timeout=s.timeout)
    ready = resp.ready.value if resp.HasField("ready") else True
    return _fields(resp, [("ready", str(ready).lower())])


def _info(s: Stubs, _a: argparse.Namespace) -> Output:
    resp = s.identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=s.timeout)
    return _fields(resp, [("name", resp.name), ("vendor_version", resp.vendor_version)])


def _capabilities(s: Stubs, _a: argparse.Namespace) -> Output:
    rows: list[list[str]] = [["service", "capability"]]
    doc: dict[str, object] = {}
    plugin = s.identity.GetPluginCapabilities(
        csi_pb2.GetPluginCapabilitiesRequest(), timeout=s.timeout
    )
    doc["plugin"] = _json(plugin)
    for cap in plugin.capabilities:
        if cap.HasField("service"):
            rows.append(["plugin", csi_pb2.PluginCapability.Service.Type.Name(cap.service.type)])
        else:
            kind = csi_pb2.PluginCapability.VolumeExpansion.Type.Name(cap.volume_expansion.type)
            rows.append(["plugin", f"VOLUME_EXPANSION_{kind}"])
    calls: list[tuple[str, Callable[[], Message]]] = [
        (
            "controller",
            lambda: s.controller.ControllerGetCapabilities(
                csi_pb2.ControllerGetCapabilitiesRequest(), timeout=s.timeout
            ),
        ),
        (
            "node",
            lambda: s.node.NodeGetCapabilities(
                csi_pb2.NodeGetCapabilitiesRequest(), timeout=s.timeout
            ),
        ),
    ]
    for service, call in calls:
        try:
            resp = call()
        except grpc.RpcError as exc:
            rows.append([service, f"(unavailable: {exc.code().name})"])
            doc[service] = {"error": exc.code().name}
            continue
        doc[service] = _json(resp)
        for entry in resp.capabilities:  # type: ignore[attr-defined]
            rpc_type = type(entry).RPC.Type  # ControllerServiceCapability / NodeServiceCapability
            rows.append([service, rpc_type.Name(entry.rpc.type)])
    return Output(rows, doc)


def _volume_rows(volume: csi_pb2.Volume) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [
        ("volume_id", volume.volume_id),
        ("capacity", f"{volume.capacity_bytes} ({Size(volume.capacity_bytes)})"),
    ]
    rows += [(f"context.{k}", v) for k, v in sorted(volume.volume_context.items())]
    return rows


def _create(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.controller.CreateVolume(
        csi_pb2.CreateVolumeRequest(
            name=a.name,
            capacity_range=csi_pb2.CapacityRange(required_bytes=a.size),
            volume_capabilities=[_capability(a)],
            parameters=_pairs(a.param, "--param"),
            volume_content_source=client_snapshots.content_source(a),
        ),
        timeout=s.timeout,
    )
    return _fields(resp, _volume_rows(resp.volume))


def _list(s: Stubs, _a: argparse.Namespace) -> Output:
    rows = [["volume_id", "capacity"]]
    entries: list[object] = []
    token = ""
    while True:
        resp = s.controller.ListVolumes(
            csi_pb2.ListVolumesRequest(max_entries=100, starting_token=token), timeout=s.timeout
        )
        for entry in resp.entries:
            rows.append([entry.volume.volume_id, str(Size(entry.volume.capacity_bytes))])
            entries.append(_json(entry))
        token = resp.next_token
        if not token:
            return Output(rows, {"entries": entries})


def _delete(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.controller.DeleteVolume(
        csi_pb2.DeleteVolumeRequest(volume_id=a.volume_id), timeout=s.timeout
    )
    return _done("deleted", a.volume_id, resp)


def _capacity(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.controller.GetCapacity(
        csi_pb2.GetCapacityRequest(parameters=_pairs(a.param, "--param")), timeout=s.timeout
    )
    return _fields(
        resp,
        [
            ("available", f"{resp.available_capacity} ({Size(resp.available_capacity)})"),
            ("maximum_volume_size", resp.maximum_volume_size.value),
            ("minimum_volume_size", resp.minimum_volume_size.value),
        ],
    )


def _get(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.controller.ControllerGetVolume(
        csi_pb2.ControllerGetVolumeRequest(volume_id=a.volume_id), timeout=s.timeout
    )
    return _fields(resp, _volume_rows(resp.volume))


def _expand(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.controller.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(
            volume_id=a.volume_id, capacity_range=csi_pb2.CapacityRange(required_bytes=a.size)
        ),
        timeout=s.timeout,
    )
    return _fields(
        resp,
        [
            ("capacity", f"{resp.capacity_bytes} ({Size(resp.capacity_bytes)})"),
            ("node_expansion_required", str(resp.node_expansion_required).lower()),
        ],
    )


def _stage(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=a.volume_id,
            staging_target_path=a.staging_path,
            volume_capability=_capability(a),
            volume_context=_pairs(a.context, "--context"),
        ),
        timeout=s.timeout,
    )
    return _done("staged", a.volume_id, resp)


def _publish(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=a.volume_id,
            staging_target_path=a.staging_path,
            target_path=a.target_path,
            volume_capability=_capability(a),
            readonly=a.readonly,
            volume_context=_pairs(a.context, "--context"),
        ),
        timeout=s.timeout,
    )
    return _done("published", a.volume_id, resp)


def _unpublish(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.node.NodeUnpublishVolume(
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=a.volume_id, target_path=a.target_path),
        timeout=s.timeout,
    )
    return _done("unpublished", a.volume_id, resp)


def _unstage(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=a.volume_id, staging_target_path=a.staging_path),
        timeout=s.timeout,
    )
    return _done("unstaged", a.volume_id, resp)


def _stats(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.node.NodeGetVolumeStats(
        csi_pb2.NodeGetVolumeStatsRequest(volume_id=a.volume_id, volume_path=a.volume_path),
        timeout=s.timeout,
    )
    rows = [["unit", "total", "used", "available"]]
    rows += [
        [csi_pb2.VolumeUsage.Unit.Name(u.unit), str(u.total), str(u.used), str(u.available)]
        for u in resp.usage
    ]
    condition = resp.volume_condition
    rows.append(
        ["condition", "abnormal" if condition.abnormal else "normal", condition.message, ""]
    )
    return Output(rows, _json(resp))


# --- argparse --------------------------------------------------------------------------------

Verb = Callable[[Stubs, argparse.Namespace], Output]


def _add_capability_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--block", action="store_true", help="a raw block volume (default: mount)")
    p.add_argument("--fs-type", default="", help="filesystem for a mount volume (default ext4)")
    p.add_argument(
        "--access-mode",
        default="SINGLE_NODE_WRITER",
        choices=[n for n in _Cap.AccessMode.Mode.keys() if n != "UNKNOWN"],  # noqa: SIM118 - protobuf enum
        help="CSI access mode",
    )


def _volume_id_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("volume_id", metavar="ID")


def _create_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="the CSI volume name (a PVC's pvc-<uid>)")
    p.add_argument("--size", type=_size, required=True, help="e.g. 1G, 512M, 10GiB")
    p.add_argument("--param", action="append", metavar="K=V", help="StorageClass parameter")
    client_snapshots.add_source_flags(p)
    _add_capability_flags(p)


def _capacity_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param", action="append", metavar="K=V", help="StorageClass parameter")


def _expand_flags(p: argparse.ArgumentParser) -> None:
    _volume_id_flags(p)
    p.add_argument("--size", type=_size, required=True, help="the new size, e.g. 2G")


def _stage_flags(p: argparse.ArgumentParser) -> None:
    _volume_id_flags(p)
    p.add_argument("--staging-path", required=True)
    p.add_argument("--context", action="append", metavar="K=V", help="volume_context entry")
    _add_capability_flags(p)


def _publish_flags(p: argparse.ArgumentParser) -> None:
    _stage_flags(p)
    p.add_argument("--target-path", required=True)
    p.add_argument("--readonly", action="store_true")


def _unpublish_flags(p: argparse.ArgumentParser) -> None:
    _volume_id_flags(p)
    p.add_argument("--target-path", required=True)


def _unstage_flags(p: argparse.ArgumentParser) -> None:
    _volume_id_flags(p)
    p.add_argument("--staging-path", required=True)


def _stats_flags(p: argparse.ArgumentParser) -> None:
    _volume_id_flags(p)
    p.add_argument("--volume-path", required=True)


def _no_flags(_p: argparse.ArgumentParser) -> None:
    return None


VERBS: Final[dict[str, tuple[str, Verb, Callable[[argparse.ArgumentParser], None]]]] = {
    "probe": ("Probe: is the driver ready?", _probe, _no_flags),
    "info": ("GetPluginInfo: name and version", _info, _no_flags),
    "capabilities": ("plugin, controller and node capabilities", _capabilities, _no_flags),
    "create": ("CreateVolume", _create, _create_flags),
    "list": ("ListVolumes (every page)", _list, _no_flags),
    "delete": ("DeleteVolume", _delete, _volume_id_flags),
    "capacity": ("GetCapacity", _capacity, _capacity_flags),
    "get": ("ControllerGetVolume", _get, _volume_id_flags),
    "expand": ("ControllerExpandVolume", _expand, _expand_flags),
    "stage": ("NodeStageVolume", _stage, _stage_flags),
    "publish": ("NodePublishVolume", _publish, _publish_flags),
    "unpublish": ("NodeUnpublishVolume", _unpublish, _unpublish_flags),
    "unstage": ("NodeUnstageVolume", _unstage, _unstage_flags),
    "stats": ("NodeGetVolumeStats", _stats, _stats_flags),
}


def _default_endpoint(environ: Mapping[str, str]) -> str:
    return environ.get(ENV_PREFIX + "ENDPOINT") or environ.get("CSI_ENDPOINT") or DEFAULT_ENDPOINT


def configure(parser: argparse.ArgumentParser) -> None:
    """The ``call`` subcommand's flags and verbs."""
    parser.add_argument(
        "--endpoint",
        default=_default_endpoint(os.environ),
        help="the driver's endpoint (env RDS_CSI_ENDPOINT, CSI_ENDPOINT; "
        f"default {DEFAULT_ENDPOINT})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, (text, verb, add_flags) in VERBS.items():
        sub = verbs.add_parser(name, help=text, description=text)
        add_flags(sub)
        sub.set_defaults(call_verb=verb)
    client_snapshots.register(verbs)


def _print_table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        out.write("\n")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Call the verb; 0 on success, 1 on a gRPC error (``CODE: message``), 2 on bad usage."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        endpoint = parse_endpoint(args.endpoint)
    except EndpointError as exc:
        err.write(f"{exc}\n")
        return EXIT_USAGE
    with grpc.insecure_channel(endpoint.grpc_target) as channel:
        stubs = Stubs.over(channel, args.timeout)
        try:
            output: Output = args.call_verb(stubs, args)
        except grpc.RpcError as exc:
            err.write(f"{exc.code().name}: {exc.details()}\n")
            return EXIT_RPC_ERROR
        except argparse.ArgumentTypeError as exc:
            err.write(f"{exc}\n")
            return EXIT_USAGE
    if args.json:
        out.write(json.dumps(output.doc, indent=2, sort_keys=True) + "\n")
    else:
        _print_table(output.rows, out)
    return 0
