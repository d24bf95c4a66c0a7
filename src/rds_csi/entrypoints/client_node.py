"""
``rds-csi call``'s Node verbs. Stage and publish fill the volume context the way the driver
would have written it (the NQN from the volume ID, the addresses and port from the driver's
configuration), so a volume made by ``call create`` stages without copying its context.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping

from rds_csi.domain.parameters import C_NQN, C_NVME_ADDRESS, C_NVME_PORT, C_RDS_ADDRESS
from rds_csi.entrypoints.client_state import CallState
from rds_csi.entrypoints.client_verbs import (
    SIZE_HELP,
    Output,
    Stubs,
    Verb,
    add_capability_flags,
    as_json,
    capability,
    done,
    endpoint_key,
    fields,
    pairs,
    parse_size,
    shown,
    volume_id_flag,
)
from rds_csi.entrypoints.csi._pb import csi_pb2
from rds_csi.entrypoints.settings import Settings


__all__ = ["fill_context", "node_verbs"]

# What the node cannot stage without, and how an operator supplies each.
_REQUIRED = {
    C_NQN: "--context nqn=<prefix>:<volume id>",
    C_NVME_ADDRESS: "--context nvmeAddress=IP (or rdsAddress), or RDS_CSI_NVME_ADDRESS / "
    "nvme_address in the driver's --config",
}


def driver_settings(config: str | None, environ: Mapping[str, str]) -> Settings:
    """The driver's settings as it reads them (``--config`` file, ``RDS_CSI_*``), flags aside."""
    # Imported here: reading settings costs cattrs, YAML and the converter's hooks, which
    # only the verbs that fill a volume context need (issue 15: `call probe` stays quick).
    from rds_csi.entrypoints.config import SettingsError, resolve_settings  # noqa: PLC0415

    try:
        return resolve_settings(argparse.Namespace(config=config), environ)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(f"the driver's settings: {exc}") from None


def fill_context(volume_id: str, given: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """
    ``given`` over what CreateVolume would have written with these settings' defaults.

    Raises:
        argparse.ArgumentTypeError: keys still missing, every one named with how to set it.
    """
    rds = settings.rds.address
    filled = {
        C_NQN: f"{settings.controller.nqn_prefix}:{volume_id}",
        C_RDS_ADDRESS: rds,
        C_NVME_ADDRESS: settings.controller.nvme_address or rds,
        C_NVME_PORT: str(settings.controller.nvme_port),
    }
    context = {**{k: v for k, v in filled.items() if v}, **given}
    if not context.get(C_NVME_ADDRESS) and context.get(C_RDS_ADDRESS):
        context[C_NVME_ADDRESS] = context[C_RDS_ADDRESS]
    missing = [f"{key} ({how})" for key, how in _REQUIRED.items() if not context.get(key)]
    if missing:
        raise argparse.ArgumentTypeError("volume_context is missing: " + "; ".join(missing))
    return context


def _context(a: argparse.Namespace) -> dict[str, str]:
    given = pairs(a.context, "--context")
    return fill_context(a.volume_id, given, driver_settings(a.config, os.environ))


def _with_context(what: str, volume_id: str, context: Mapping[str, str], doc: object) -> Output:
    rows = [["result", "volume_id"], [what, volume_id]]
    rows += [[f"context.{k}", v] for k, v in sorted(context.items())]
    return Output(rows, doc or {"ok": True, "volume_context": dict(context)})


def _stage(s: Stubs, a: argparse.Namespace) -> Output:
    context = _context(a)
    resp = s.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=a.volume_id,
            staging_target_path=a.staging_path,
            volume_capability=capability(a),
            volume_context=context,
        ),
        timeout=s.timeout,
    )
    CallState.default().staged(endpoint_key(a), a.volume_id, a.staging_path)
    return _with_context("staged", a.volume_id, context, as_json(resp))


def _publish(s: Stubs, a: argparse.Namespace) -> Output:
    context = _context(a)
    resp = s.node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=a.volume_id,
            staging_target_path=a.staging_path,
            target_path=a.target_path,
            volume_capability=capability(a),
            readonly=a.readonly,
            volume_context=context,
        ),
        timeout=s.timeout,
    )
    CallState.default().published(endpoint_key(a), a.volume_id, a.target_path)
    return _with_context("published", a.volume_id, context, as_json(resp))


def _unpublish(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.node.NodeUnpublishVolume(
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=a.volume_id, target_path=a.target_path),
        timeout=s.timeout,
    )
    CallState.default().unpublished(endpoint_key(a), a.volume_id, a.target_path)
    return done("unpublished", a.volume_id, resp)


def _unstage(s: Stubs, a: argparse.Namespace) -> Output:
    resp = s.node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=a.volume_id, staging_target_path=a.staging_path),
        timeout=s.timeout,
    )
    CallState.default().unstaged(endpoint_key(a), a.volume_id, a.staging_path)
    return done("unstaged", a.volume_id, resp)


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
    return Output(rows, as_json(resp))


def _node_expand(s: Stubs, a: argparse.Namespace) -> Output:
    request = csi_pb2.NodeExpandVolumeRequest(
        volume_id=a.volume_id,
        volume_path=a.volume_path,
        staging_target_path=a.staging_path or "",
    )
    if a.size:
        request.capacity_range.CopyFrom(csi_pb2.CapacityRange(required_bytes=a.size))
    if a.block or a.fs_type:
        request.volume_capability.CopyFrom(capability(a))
    resp = s.node.NodeExpandVolume(request, timeout=s.timeout)
    return fields(resp, [("volume_id", a.volume_id), ("capacity", shown(resp.capacity_bytes))])


def _node_info(s: Stubs, _a: argparse.Namespace) -> Output:
    resp = s.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=s.timeout)
    rows: list[tuple[str, object]] = [
        ("node_id", resp.node_id),
        ("max_volumes_per_node", resp.max_volumes_per_node or "(no limit)"),
    ]
    rows += [(f"topology.{k}", v) for k, v in sorted(resp.accessible_topology.segments.items())]
    return fields(resp, rows)


def _stage_flags(p: argparse.ArgumentParser) -> None:
    volume_id_flag(p)
    p.add_argument("--staging-path", required=True)
    p.add_argument(
        "--context",
        action="append",
        metavar="K=V",
        help="volume_context entry, over the ones filled in: nqn from the ID; rdsAddress, "
        "nvmeAddress, nvmePort from the driver's settings (--config, RDS_CSI_*)",
    )
    add_capability_flags(p)


def _publish_flags(p: argparse.ArgumentParser) -> None:
    _stage_flags(p)
    p.add_argument("--target-path", required=True)
    p.add_argument("--readonly", action="store_true")


def _unpublish_flags(p: argparse.ArgumentParser) -> None:
    volume_id_flag(p)
    p.add_argument("--target-path", required=True)


def _unstage_flags(p: argparse.ArgumentParser) -> None:
    volume_id_flag(p)
    p.add_argument("--staging-path", required=True)


def _stats_flags(p: argparse.ArgumentParser) -> None:
    volume_id_flag(p)
    p.add_argument("--volume-path", required=True)


def _node_expand_flags(p: argparse.ArgumentParser) -> None:
    volume_id_flag(p)
    p.add_argument("--volume-path", required=True, help="where the volume is published (or staged)")
    p.add_argument("--staging-path", help="its staging path, when known")
    p.add_argument("--size", type=parse_size, help="the size it was grown to: " + SIZE_HELP)
    add_capability_flags(p)


def _no_flags(_p: argparse.ArgumentParser) -> None:
    return None


def node_verbs() -> dict[str, tuple[str, Verb, Callable[[argparse.ArgumentParser], None]]]:
    """Node verbs: name -> (help, verb, flags)."""
    return {
        "stage": ("NodeStageVolume (volume context filled in)", _stage, _stage_flags),
        "publish": ("NodePublishVolume (volume context filled in)", _publish, _publish_flags),
        "unpublish": ("NodeUnpublishVolume", _unpublish, _unpublish_flags),
        "unstage": ("NodeUnstageVolume", _unstage, _unstage_flags),
        "stats": ("NodeGetVolumeStats", _stats, _stats_flags),
        "node-expand": (
            "NodeExpandVolume: grow the filesystem after expand",
            _node_expand,
            _node_expand_flags,
        ),
        "node-info": ("NodeGetInfo: node ID, volume limit, topology", _node_info, _no_flags),
    }
