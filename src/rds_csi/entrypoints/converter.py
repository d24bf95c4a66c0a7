"""
The one cattrs converter that structures the option sources into ``Settings``: one hook per
checked field type, the one place each rule is written; errors name the option, not the rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import cattrs

from rds_csi.application.topology import Topology
from rds_csi.domain import DomainError, Size
from rds_csi.domain.identity import check_base_path
from rds_csi.domain.identity import check_nqn_prefix as _check_nqn_prefix
from rds_csi.domain.model import check_host, check_port
from rds_csi.entrypoints.csi.identity import check_driver_name
from rds_csi.entrypoints.endpoint import Endpoint, parse_endpoint, parse_host_port
from rds_csi.entrypoints.settings import (
    AUTO,
    CHOICES,
    AbsolutePath,
    BasePath,
    BasePaths,
    Count,
    DriverName,
    Host,
    HostPort,
    Interval,
    NodeId,
    NqnPrefix,
    Port,
    Positive,
    RestUrl,
    Seconds,
)


__all__ = ["converter"]

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | int | float | str):
        return str(value)
    raise ValueError(f"{value!r} is not a single value")


def _integer(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = _text(value).strip()
    try:
        return int(text, 10)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


def _flag(value: object, _type: object) -> bool:
    if isinstance(value, bool):
        return value
    lowered = _text(value).strip().lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise ValueError(f"{value!r} is not a boolean (true/false)")


def _port(value: object, _type: object) -> Port:
    return Port(check_port(_integer(value), field=""))


def _count(value: object, _type: object) -> Count:
    number = _integer(value)
    if number < 0:
        raise ValueError(f"{number} is negative")
    return Count(number)


def _seconds(value: object, _type: object) -> Seconds:
    try:
        number = float(value) if isinstance(value, int | float) else float(_text(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{number} is not a non-negative number of seconds")
    return Seconds(number)


def _positive(value: object, _type: object) -> Positive:
    number = _integer(value)
    if number < 1:
        raise ValueError(f"{number} is less than 1")
    return Positive(number)


def _interval(value: object, _type: object) -> Interval:
    number = float(_seconds(value, _type))
    if number <= 0:
        raise ValueError("0 is not a positive number of seconds")
    return Interval(number)


def _absolute(value: object, _type: object) -> AbsolutePath:
    text = _text(value)
    if text and not text.startswith("/"):
        raise ValueError(f"{text!r} is not an absolute path")
    return AbsolutePath(text)


def _topology(value: object, _type: object) -> Topology:
    if isinstance(value, Topology):
        return value
    if isinstance(value, Mapping):
        pairs = [f"{k}={v}" for k, v in value.items()]
    elif isinstance(value, list | tuple):
        pairs = [_text(item) for item in value]
    else:
        pairs = [item.strip() for item in _text(value).split(",") if item.strip()]
    return Topology.parse(pairs)


def _endpoint(value: object, _type: object) -> Endpoint:
    return value if isinstance(value, Endpoint) else parse_endpoint(_text(value))


def _size(value: object, _type: object) -> Size:
    return value if isinstance(value, Size) else Size.from_quantity(_text(value), field="pool size")


def _checked_text(check: Callable[[str], object], *, empty_ok: bool = False) -> Any:
    def hook(value: object, _type: object) -> str:
        text = _text(value)
        if text or not empty_ok:
            check(text)
        return text

    return hook


def _one_of(listing: Callable[[], Sequence[str]]) -> Any:
    def hook(value: object, _type: object) -> str:
        text = _text(value)
        allowed = listing()
        if text not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return text

    return hook


def _node_id(text: str) -> None:
    if not 1 <= len(text.encode()) <= 256:  # noqa: PLR2004
        raise ValueError(f"{text!r} must be 1-256 bytes")


def _host_port(text: str) -> None:
    if text != AUTO:
        parse_host_port(text, field="")


def _base_paths(text: str) -> None:
    for item in text.split(","):
        check_base_path(item.strip(), field="")


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(str, lambda value, _type: _text(value))
    hooks: dict[object, Any] = {
        bool: _flag,
        Port: _port,
        Count: _count,
        Seconds: _seconds,
        Positive: _positive,
        Interval: _interval,
        AbsolutePath: _absolute,
        Topology: _topology,
        Endpoint: _endpoint,
        Size: _size,
        Host: _checked_text(lambda text: check_host(text, field=""), empty_ok=True),
        BasePath: _checked_text(lambda text: check_base_path(text, field="")),
        BasePaths: _checked_text(_base_paths, empty_ok=True),
        NqnPrefix: _checked_text(_check_nqn_prefix),
        DriverName: _checked_text(check_driver_name),
        NodeId: _checked_text(_node_id),
        HostPort: _checked_text(_host_port, empty_ok=True),
        RestUrl: _checked_text(_rest_url, empty_ok=True),
        **{kind: _one_of(listing) for kind, listing in CHOICES.items()},
    }
    for kind, hook in hooks.items():
        conv.register_structure_hook(kind, _reasons(hook))
    return conv


def _rest_url(text: str) -> str:
    # Imported when a URL is given: the REST adapter's package brings httpx, which a node
    # (and every flag-less start) should not load (issue 15).
    from rds_csi.adapters.routeros_rest.settings import check_rest_url  # noqa: PLC0415

    return check_rest_url(text)


def _reasons(hook: Callable[[object, object], object]) -> Callable[[object, object], object]:
    """Domain checks name their own field; here the option is named by the caller."""

    def structure(value: object, kind: object) -> object:
        try:
            return hook(value, kind)
        except DomainError as exc:
            raise ValueError(getattr(exc, "problem", str(exc))) from None
        except ValueError as exc:
            # parse_host_port and parse_endpoint prefix the field they were told: drop it.
            raise ValueError(str(exc).removeprefix(": ").removeprefix("endpoint: ")) from None

    return structure


converter: Final = _make_converter()
