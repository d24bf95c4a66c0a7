"""
Pure readers for what nvme-cli prints and what the kernel writes into sysfs. No I/O here.

Facts they encode (nvme-cli 2.x / libnvme 1.x on Linux 6.x):

* ``nvme connect -o json`` prints ``{"device":"nvme0"}`` on success, but some versions exit 1
  even then, so the exit status is never the only evidence; sysfs is.
* A refused connect prints libnvme's line ``could not add new controller: <reason>`` after
  ``Failed to write to /dev/nvme-fabrics: <strerror>``; nvme-cli's own duplicate check prints
  ``already connected``. An NQN the target does not export comes back as an I/O error (the kernel
  turns the target's "Connect Invalid Parameters" into EIO; newer kernels, EINVAL).
* sysfs: ``/sys/class/nvme-subsystem/nvme-subsysN/subsysnqn``; with native multipath the block
  device ``nvme<subsys>n<head>`` sits in the subsystem directory, next to the char device
  ``ng<N>n<head>`` and the controller links ``nvme<ctrl>``; the per-path ``nvme<S>c<C>n<head>``
  nodes are hidden (no /dev entry). ``<head>`` is the namespace head's instance within its
  subsystem, not the NSID: when a connection was lost past ctrl-loss-tmo while a mount still
  held the device, the subsystem stays, empty, and the reconnected namespace is ``nvme0n2``
  (seen on Linux 6.1). Without multipath the block device sits under the controller. A
  controller's ``address`` reads ``traddr=...,trsvcid=...[,src_addr=...]``.
"""

from __future__ import annotations

import enum
import json
import re
from typing import Final

from rds_csi.domain import InvalidArgument, MalformedOutput, Nqn


__all__ = [
    "ConnectFailure",
    "classify_connect_failure",
    "is_controller_name",
    "namespace_order",
    "parse_address",
    "parse_connect_output",
    "parse_disconnect_output",
    "parse_discovery_log",
    "parse_host_id",
    "parse_host_nqn",
]

_HEAD_NAMESPACE_RE: Final = re.compile(r"nvme([0-9]+)n([0-9]+)")
_CONTROLLER_RE: Final = re.compile(r"nvme([0-9]+)")
_DISCONNECTED_RE: Final = re.compile(r"disconnected ([0-9]+) controller")
_UUID_RE: Final = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def namespace_order(name: str) -> tuple[int, int] | None:
    """
    ``(subsystem instance, head instance)`` for a block namespace name (``nvme0n1``), or None
    for anything else:
    the hidden per-path ``nvme0c0n1``, the generic char device ``ng0n1``, partitions
    ``nvme0n1p1``, controllers, attribute files.
    """
    match = _HEAD_NAMESPACE_RE.fullmatch(name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def is_controller_name(name: str) -> bool:
    return _CONTROLLER_RE.fullmatch(name) is not None


def parse_address(text: str) -> dict[str, str]:
    """``traddr=10.0.0.5,trsvcid=4420,src_addr=10.0.0.9`` -> a dict (unknown keys kept)."""
    fields: dict[str, str] = {}
    for part in re.split(r"[,\s]+", text.strip()):
        key, sep, value = part.partition("=")
        if sep and key:
            fields[key] = value
    return fields


def parse_connect_output(stdout: str) -> str | None:
    """
    The controller name from ``nvme connect -o json`` (``{"device":"nvme3"}``), or None when the
    output is empty or not that JSON. Informational only: sysfs decides whether we connected.
    """
    text = stdout.strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    device = data.get("device") if isinstance(data, dict) else None
    if isinstance(device, str) and is_controller_name(device):
        return device
    return None


class ConnectFailure(enum.Enum):
    """What a failed ``nvme connect`` tells us, from its stderr."""

    ALREADY_CONNECTED = "already connected"
    UNREACHABLE = "target unreachable"
    REJECTED = "target refused the connection"
    UNKNOWN = "unrecognised failure"


_ALREADY: Final = ("already connected", "operation already in progress")
_UNREACHABLE: Final = (
    "connection refused",
    "no route to host",
    "network is unreachable",
    "timed out",
    "host is down",
    "failed to resolve host",
    "cannot assign requested address",
    "connection reset",
)
_REJECTED: Final = ("input/output error", "invalid argument", "invalid arguments/configuration")


def classify_connect_failure(stderr: str) -> ConnectFailure:
    text = stderr.lower()
    if any(s in text for s in _ALREADY):
        return ConnectFailure.ALREADY_CONNECTED
    if any(s in text for s in _UNREACHABLE):
        return ConnectFailure.UNREACHABLE
    if any(s in text for s in _REJECTED):
        return ConnectFailure.REJECTED
    return ConnectFailure.UNKNOWN


def parse_discovery_log(stdout: str) -> frozenset[str]:
    """
    The subsystem NQNs in ``nvme discover -o json`` output
    (``{"genctr":N,"records":[{"subnqn":...,"subtype":"nvme subsystem",...}]}``), without
    referrals to other discovery controllers.

    Raises:
        MalformedOutput: not that JSON.
    """
    try:
        data = json.loads(stdout)
    except ValueError:
        raise MalformedOutput("nvme discover printed no discovery log JSON", stdout) from None
    records = data.get("records") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise MalformedOutput("nvme discover JSON has no 'records' list", stdout)
    nqns: set[str] = set()
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("subnqn"), str):
            raise MalformedOutput("a discovery record has no 'subnqn'", stdout)
        if "discovery" not in str(record.get("subtype", "")):
            nqns.add(record["subnqn"])
    return frozenset(nqns)


def parse_disconnect_output(stdout: str) -> int | None:
    """How many controllers ``NQN:<nqn> disconnected N controller(s)`` reports, if it says."""
    match = _DISCONNECTED_RE.search(stdout)
    return int(match.group(1)) if match else None


def parse_host_nqn(text: str, *, source: str) -> Nqn:
    """
    The content of ``/etc/nvme/hostnqn``.

    Raises:
        InvalidArgument: it is not an NQN (named after ``source``).
    """
    value = text.strip()
    try:
        return Nqn(value)
    except InvalidArgument as exc:
        raise InvalidArgument(source, exc.problem) from None


def parse_host_id(text: str, *, source: str) -> str:
    """
    The content of ``/etc/nvme/hostid``: a UUID.

    Raises:
        InvalidArgument: it is not one.
    """
    value = text.strip()
    if _UUID_RE.fullmatch(value) is None:
        raise InvalidArgument(source, f"{value[:64]!r} is not a UUID")
    return value
