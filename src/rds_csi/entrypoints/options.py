"""
The options, derived from the ``Settings`` classes: one name each, spelt as a YAML key, a flag
(``--rds-port``) and a variable (``RDS_CSI_RDS_PORT``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from rds_csi.application.topology import Topology
from rds_csi.domain import Size
from rds_csi.entrypoints.endpoint import Endpoint
from rds_csi.entrypoints.settings import CHOICES, ENV_PREFIX, Settings


__all__ = ["OptionSpec", "options"]


@attrs.frozen
class OptionSpec:
    """
    One option: where it lives in ``Settings`` and how the sources spell it.

    Attributes:
        path: (section, field) or (field,) in ``Settings``.
        kind: ``bool`` flags take ``--x/--no-x``; ``list`` flags repeat, and their variable
            holds comma-separated items; ``value`` is one text.
    """

    name: str
    path: tuple[str, ...]
    field: attrs.Attribute[Any]

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def also_env(self) -> tuple[str, ...]:
        also: tuple[str, ...] = self.field.metadata.get("also_env", ())
        return also

    @property
    def help(self) -> str:
        return str(self.field.metadata["help"])

    @property
    def kind(self) -> str:
        declared: object = self.field.type
        if declared is bool:
            return "bool"
        return "list" if declared is Topology else "value"

    def choices(self) -> Sequence[str] | None:
        listing = CHOICES.get(self.field.type)
        return listing() if listing is not None else None

    def shown_default(self) -> str:
        if self.name == "node_id":
            return "the hostname"
        value: object = Settings()
        for part in self.path:
            value = getattr(value, part)
        if isinstance(value, Topology):
            return "none"
        return str(value) if isinstance(value, Endpoint | Size) else repr(value)


def _fields(cls: object) -> tuple[attrs.Attribute[Any], ...]:
    assert isinstance(cls, type)  # noqa: S101 - sections are attrs classes
    attrs.resolve_types(cls)
    return tuple(attrs.fields(cls))


def options() -> Iterator[OptionSpec]:
    """Every option, in ``--help`` order."""
    for top in _fields(Settings):
        if "prefix" in top.metadata:
            for inner in _fields(top.type):
                yield OptionSpec(top.metadata["prefix"] + inner.name, (top.name, inner.name), inner)
        else:
            yield OptionSpec(top.name, (top.name,), top)
