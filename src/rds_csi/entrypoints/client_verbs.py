"""
``rds-csi call``'s Identity and Controller verbs, and what every verb shares: the stubs, the
output (a table or a JSON document) and the flags describing a volume capability.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Final

import attrs
import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from rds_csi.domain import InvalidArgument, Size
from rds_csi.entrypoints.client_sources import add_source_flags, content_source
from rds_csi.entrypoints.client_state import CallState
from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc
from rds_csi.entrypoints.csi.identity import NOT_READY_REASON_KEY
from rds_csi.entrypoints.endpoint import parse_endpoint


__all__ = [
    "Output",
    "Stubs",
    "Verb",
    "add_capability_flags",
    "capability",
    "controller_verbs",
    "pairs",
    "parse_size",
]

_Cap = csi_pb2.VolumeCapability
SIZE_HELP: Final = "a Kubernetes quantity: 1Gi, 512Mi (binary), 10G (decimal), bytes"


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
    """
    What a verb prints: ``rows`` (the first is the header) as a table, or ``doc`` as JSON;
    ``ok`` false makes the exit status 1 though the call itself succeeded (a driver not ready).
    """

    rows: list[list[str]]
    doc: object
    ok: bool = True


Verb = Callable[[Stubs, argparse.Namespace], Output]


def as_json(message: Message) -> dict[str, object]:
    return MessageToDict(message, preserving_proto_field_name=True)


def fields(message: Message, rows: Sequence[tuple[str, object]]) -> Output:
    return Output([["field", "value"], *([k, str(v)] for k, v in rows)], as_json(message))


def done(what: str, volume_id: str, message: Message) -> Output:
    return Output([["result", "volume_id"], [what, volume_id]], as_json(message) or {"ok": True})


def pairs(items: Sequence[str] | None, flag: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items or ():
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise argparse.ArgumentTypeError(f"{flag}: {item!r} is not key=value")
        found[key] = value
    return found


def capability(args: argparse.Namespace) -> csi_pb2.VolumeCapability:
    mode = _Cap.AccessMode(mode=_Cap.AccessMode.Mode.Value(args.access_mode))
    if args.block:
        return _Cap(access_mode=mode, block=_Cap.BlockVolume())
    return _Cap(access_mode=mode, mount=_Cap.MountVolume(fs_type=args.fs_type))


def parse_size(text: str) -> int:
    """A Kubernetes quantity (``1Gi``, ``500M``), as a PVC's ``storage`` request is written."""
    try:
        size = Size.from_quantity(text, field="--size").bytes
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None  # argparse names --size
    if size == 0:
        raise argparse.ArgumentTypeError("must be more than 0 (e.g. 1Gi)")
    return size


def shown(size: int) -> str:
    return f"{size} ({Size(size)})"


def add_capability_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--block", action="store_true", help="a raw block volume (default: mount)")
    p.add_argument("--fs-type", default="", help="filesystem for a mount volume (default ext4)")
    p.add_argument(
        "--access-mode",
        default="SINGLE_NODE_WRITER",
        choices=[n for n in _Cap.AccessMode.Mode.keys() if n != "UNKNOWN"],  # noqa: SIM118 - protobuf enum
        help="CSI access mode",
    )


def volume_id_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("volume_id", metavar="ID")


def no_flags(_p: argparse.ArgumentParser) -> None:
    return None


# --- Identity ----------------------------------------------------------------------------------


def _reason(call: grpc.Call) -> str:
    for key, value in call.trailing_metadata() or ():
        if key == NOT_READY_REASON_KEY:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return ""


def _probe(s: Stubs, _a: argparse.Namespace) -> Output:
    resp, call = s.identity.Probe.with_call(csi_pb2.ProbeRequest(), timeout=s.timeout)
    ready = resp.ready.value if resp.HasField("ready") else True
    rows: list[tuple[str, object]] = [("ready", str(ready).lower())]
    doc = as_json(resp)
    if not ready:
        reason = _reason(call) or "(the driver gave no reason; see its log)"
        rows.append(("reason", reason))
        doc["reason"] = reason
    out = fields(resp, rows)
    return Output(out.rows, doc, ok=ready)


def _info(s: Stubs, _a: argparse.Namespace) -> Output:
    resp = s.identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=s.timeout)
    return fields(resp, [("name", resp.name), ("vendor_version", resp.vendor_version)])


def _capabilities(s: Stubs, _a: argparse.Namespace) -> Output:
    rows: list[list[str]] = [["service", "capability"]]
    doc: dict[str, object] = {}
    plugin = s.identity.GetPluginCapabilities(
        csi_pb2.GetPluginCapabilitiesRequest(), timeout=s.timeout
    )
    doc["plugin"] = as_json(plugin)
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
        doc[service] = as_json(resp)
        for entry in resp.capabilities:  # type: ignore[attr-defined]
            rpc_type = type(entry).RPC.Type  # ControllerServiceCapability / NodeServiceCapability
            rows.append([service, rpc_type.Name(entry.rpc.type)])
    return Output(rows, doc)


# --- Controller --------------------------------------------------------------------------------


def _volume_rows(volume: csi_pb2.Volume) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [
        ("volume_id", volume.volume_id),
        ("capacity", shown(volume.capacity_bytes)),
    ]
    rows += [(f"context.{k}", v) for k, v in sorted(volume.volume_context.items())]
    return rows


def _create(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.controller.CreateVolume(
        csi_pb2.CreateVolumeRequest(
            name=a.name,
            capacity_range=csi_pb2.CapacityRange(required_bytes=a.size),
            volume_capabilities=[capability(a)],
            parameters=pairs(a.param, "--param"),
            volume_content_source=content_source(a),
        ),
        timeout=s.timeout,
    )
    return fields(resp, _volume_rows(resp.volume))


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
            entries.append(as_json(entry))
        token = resp.next_token
        if not token:
            return Output(rows, {"entries": entries})


def endpoint_key(a: argparse.Namespace) -> str:
    """The endpoint as one spelling, for what this CLI remembers about it."""
    return str(parse_endpoint(a.endpoint))


def _delete(s: Stubs, a: argparse.Namespace) -> Output:
    state = CallState.default()
    held = state.held(endpoint_key(a), a.volume_id)
    if held and not a.force:
        undo = [
            f"rds-csi call unpublish {a.volume_id} --target-path {path}"
            for path in held.get("published", [])
        ] + [
            f"rds-csi call unstage {a.volume_id} --staging-path {path}"
            for path in held.get("staged", [])
        ]
        raise argparse.ArgumentTypeError(
            f"not deleting {a.volume_id}: this CLI {' and '.join(sorted(held, reverse=True))} it "
            "and has not undone that; a deleted disk leaves the node holding its device. First: "
            + "; ".join(undo)
            + " (or --force)"
        )
    resp = s.controller.DeleteVolume(
        csi_pb2.DeleteVolumeRequest(volume_id=a.volume_id), timeout=s.timeout
    )
    state.forget(endpoint_key(a), a.volume_id)
    return done("deleted", a.volume_id, resp)


def _delete_flags(p: argparse.ArgumentParser) -> None:
    volume_id_flag(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="delete even if this CLI staged or published the volume and did not undo it",
    )


def _capacity(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.controller.GetCapacity(
        csi_pb2.GetCapacityRequest(parameters=pairs(a.param, "--param")), timeout=s.timeout
    )
    return fields(
        resp,
        [
            ("available", shown(resp.available_capacity)),
            ("maximum_volume_size", resp.maximum_volume_size.value),
            ("minimum_volume_size", resp.minimum_volume_size.value),
        ],
    )


def _get(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.controller.ControllerGetVolume(
        csi_pb2.ControllerGetVolumeRequest(volume_id=a.volume_id), timeout=s.timeout
    )
    return fields(resp, _volume_rows(resp.volume))


def _expand(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.controller.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(
            volume_id=a.volume_id, capacity_range=csi_pb2.CapacityRange(required_bytes=a.size)
        ),
        timeout=s.timeout,
    )
    rows: list[tuple[str, object]] = [
        ("capacity", shown(resp.capacity_bytes)),
        ("node_expansion_required", str(resp.node_expansion_required).lower()),
    ]
    if resp.node_expansion_required:
        rows.append(("next", "rds-csi call node-expand ID --volume-path PATH (where it is used)"))
    return fields(resp, rows)


def _create_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="the CSI volume name (a PVC's pvc-<uid>)")
    p.add_argument("--size", type=parse_size, required=True, help=SIZE_HELP)
    p.add_argument("--param", action="append", metavar="K=V", help="StorageClass parameter")
    add_source_flags(p)
    add_capability_flags(p)


def _capacity_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--param", action="append", metavar="K=V", help="StorageClass parameter")


def _expand_flags(p: argparse.ArgumentParser) -> None:
    volume_id_flag(p)
    p.add_argument("--size", type=parse_size, required=True, help="the new size: " + SIZE_HELP)


def controller_verbs() -> dict[str, tuple[str, Verb, Callable[[argparse.ArgumentParser], None]]]:
    """Identity and Controller verbs: name -> (help, verb, flags)."""
    return {
        "probe": ("Probe: is the driver ready? (exit 1 and the reason when not)", _probe, no_flags),
        "info": ("GetPluginInfo: name and version", _info, no_flags),
        "capabilities": ("plugin, controller and node capabilities", _capabilities, no_flags),
        "create": ("CreateVolume", _create, _create_flags),
        "list": ("ListVolumes (every page)", _list, no_flags),
        "delete": ("DeleteVolume (refused while this CLI has it staged)", _delete, _delete_flags),
        "capacity": ("GetCapacity", _capacity, _capacity_flags),
        "get": ("ControllerGetVolume", _get, volume_id_flag),
        "expand": ("ControllerExpandVolume", _expand, _expand_flags),
    }
