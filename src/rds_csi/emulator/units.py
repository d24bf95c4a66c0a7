"""RouterOS's size spellings: ``10G`` and ``10GiB`` are binary, ``10GB`` decimal (btrfs)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

from rds_csi.domain import InvalidArgument, Size
from rds_csi.domain.size import GIB, KIB, MIB, TIB


__all__ = ["humanize", "parse_routeros_size"]

_PIB: Final = 1024 * TIB
_UNITS: Final[dict[str, int]] = {
    "": 1,
    "b": 1,
    "k": KIB,
    "kib": KIB,
    "m": MIB,
    "mib": MIB,
    "g": GIB,
    "gib": GIB,
    "t": TIB,
    "tib": TIB,
    "p": _PIB,
    "pib": _PIB,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "pb": 1000**5,
}
_SIZE_RE: Final = re.compile(r"(?P<num>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]{0,3})")
# RouterOS shows a 1T file disk as `file-size=1024.0GiB`: its display stops at GiB.
_SHOW_UNITS: Final = (("GiB", GIB), ("MiB", MIB), ("KiB", KIB))
# Far beyond any pool; stops "9" * 10_000 from becoming a huge integer.
_MAX_DIGITS: Final = 24


def parse_routeros_size(text: str, *, field: str = "size") -> Size:
    """
    A size as RouterOS writes or reads it: ``10G``, ``10GiB``, ``512M``, ``1024.0GiB``,
    ``4096`` and ``16 003 143 565 312`` (digits grouped with spaces). Fractions must come out
    to whole bytes.
    """
    compact = text.strip()
    if re.fullmatch(r"[0-9]{1,3}( [0-9]{3})+", compact):
        compact = compact.replace(" ", "")
    match = _SIZE_RE.fullmatch(compact)
    if match is None:
        raise InvalidArgument(field, f"{text!r} is not a size (examples: 10G, 512MiB, 4096)")
    number, unit = match["num"], match["unit"].lower()
    if len(number) > _MAX_DIGITS:
        raise InvalidArgument(field, f"{text!r} is too large")
    multiplier = _UNITS.get(unit)
    if multiplier is None:
        raise InvalidArgument(field, f"{text!r} has an unknown unit {match['unit']!r}")
    exact = Decimal(number) * multiplier
    if exact != exact.to_integral_value():
        raise InvalidArgument(field, f"{text!r} is not a whole number of bytes")
    return Size(int(exact))


def humanize(size: Size) -> str:
    """RouterOS's display form with one decimal (``1024.0GiB``), as ``print`` shows it."""
    for suffix, unit in _SHOW_UNITS:
        if size.bytes >= unit:
            return f"{size.bytes / unit:.1f}{suffix}"
    return str(size.bytes)
