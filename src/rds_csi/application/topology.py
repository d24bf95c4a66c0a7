"""
Topology: the CSI segments (``key=value``) that say which nodes can reach this RDS.

Off by default: one RDS reachable from every node needs none. An operator with several RDS
boxes, or nodes that cannot reach the data network, labels each with ``--topology`` and the
driver then advertises VOLUME_ACCESSIBILITY_CONSTRAINTS, reports the segments in NodeGetInfo
and CreateVolume, and refuses to provision for a ``requisite`` it cannot serve.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import attrs

from rds_csi.application.provisioning import CreatedVolume, CreateVolume
from rds_csi.domain import (
    CapacityExhausted,
    CapacityRange,
    ContentSource,
    InvalidArgument,
    VolumeCapability,
)


__all__ = ["CreateVolumeInTopology", "Topology"]

_NAME_RE: Final = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
_PREFIX_RE: Final = re.compile(
    r"(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*"
)


def _check_key(key: str, field: str) -> str:
    prefix, slash, name = key.rpartition("/")
    if slash and _PREFIX_RE.fullmatch(prefix) is None:
        raise InvalidArgument(field, f"{key!r}: the prefix must be a lowercase DNS name")
    if _NAME_RE.fullmatch(name) is None:
        raise InvalidArgument(
            field, f"{key!r}: the name must be 1-63 letters, digits, '-', '_' or '.'"
        )
    return key


@attrs.frozen
class Topology:
    """The segments of this driver instance, validated by the CSI key and value rules."""

    segments: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, pairs: Iterable[str], *, field: str = "topology") -> Topology:
        """Read ``key=value`` strings (``--topology``); every key appears once."""
        found: dict[str, str] = {}
        for pair in pairs:
            key, eq, value = pair.partition("=")
            if not eq:
                raise InvalidArgument(field, f"{pair!r} is not key=value")
            _check_key(key, field)
            if _NAME_RE.fullmatch(value) is None:
                raise InvalidArgument(
                    field, f"{pair!r}: the value must be 1-63 letters, digits, '-', '_' or '.'"
                )
            if key.lower() in {k.lower() for k in found}:
                raise InvalidArgument(field, f"{key!r} is given twice (keys are case-insensitive)")
            found[key] = value
        prefixes = {k.rpartition("/")[0] for k in found if "/" in k}
        if len(prefixes) > 1:
            raise InvalidArgument(field, f"keys must share one prefix, got {sorted(prefixes)}")
        return cls(tuple(sorted(found.items())))

    @property
    def enabled(self) -> bool:
        return bool(self.segments)

    def as_dict(self) -> dict[str, str]:
        return dict(self.segments)

    def admits(self, requisite: Sequence[Mapping[str, str]]) -> bool:
        """
        Whether a volume here is reachable from at least one of the ``requisite`` topologies.
        Keys compare case-insensitively; a key the requirement does not mention matches.
        """
        if not self.enabled or not requisite:
            return True
        ours = {k.lower(): v for k, v in self.segments}
        for wanted in requisite:
            if all(ours.get(k.lower(), v) == v for k, v in wanted.items()):
                return True
        return False


class CreateVolumeInTopology:
    """CreateVolume, refusing a ``requisite`` topology this RDS cannot serve (CSI: 8)."""

    def __init__(self, create: CreateVolume, topology: Topology) -> None:
        self._create = create
        self._topology = topology

    def __call__(
        self,
        name: str,
        capacity: CapacityRange,
        capabilities: Iterable[VolumeCapability],
        parameters: Mapping[str, str],
        requisite: Sequence[Mapping[str, str]] = (),
        *,
        source: ContentSource | None = None,
    ) -> CreatedVolume:
        if not self._topology.admits(requisite):
            raise CapacityExhausted(
                f"accessibility_requirements: this RDS serves {self._topology.as_dict()}, "
                f"none of the requisite topologies {list(map(dict, requisite))}"
            )
        return self._create(name, capacity, capabilities, parameters, source=source)
