"""Byte sizes, RouterOS's unit spellings, and the allocation rules for a volume."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

import attrs

from rds_csi.domain.errors import InvalidArgument, OutOfRange


__all__ = [
    "GIB",
    "KIB",
    "MAX_VOLUME_SIZE",
    "MIB",
    "MIN_VOLUME_SIZE",
    "TIB",
    "CapacityRange",
    "Size",
]

KIB: Final = 1024
MIB: Final = 1024**2
GIB: Final = 1024**3
TIB: Final = 1024**4
PIB: Final = 1024**5

# The RDS allocates file disks in whole MiB in our commands; rounding up to it keeps the size we
# ask for exactly the size RouterOS reports back.
ALLOCATION_GRANULARITY: Final = MIB
# The Go driver's limits, kept so a StorageClass behaves the same under either driver.
MIN_VOLUME_SIZE: Final = GIB
MAX_VOLUME_SIZE: Final = 16 * TIB

# RouterOS writes binary units both as `G` (input) and `GiB` (output); `GB` is decimal (btrfs).
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
    "p": PIB,
    "pib": PIB,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "pb": 1000**5,
}
_SIZE_RE: Final = re.compile(r"(?P<num>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]{0,3})")
_EMIT_UNITS: Final = (("T", TIB), ("G", GIB), ("M", MIB), ("k", KIB))
# RouterOS shows a 1T file disk as `file-size=1024.0GiB`: its display stops at GiB.
_SHOW_UNITS: Final = (("GiB", GIB), ("MiB", MIB), ("KiB", KIB))
# Far beyond any pool; stops "9" * 10_000 from becoming a huge integer.
_MAX_DIGITS: Final = 24


def _div_ceil(a: int, b: int) -> int:
    return -(-a // b)


@attrs.frozen(order=True)
class Size:
    """A non-negative number of bytes."""

    bytes: int = attrs.field()

    @bytes.validator  # noqa: A003
    def _check(self, _attr: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument("size", f"must be a whole number of bytes, got {value!r}")
        if value < 0:
            raise InvalidArgument("size", f"must not be negative, got {value}")

    @classmethod
    def parse(cls, text: str, *, field: str = "size") -> Size:
        """
        Read a size as RouterOS writes it or as an operator types it.

        Accepts ``10G``, ``10GiB``, ``512M``, ``1.5TiB``, ``1024.0GiB``, ``4096`` and
        ``16 003 143 565 312`` (RouterOS groups digits with spaces). Fractions must come out
        to whole bytes.
        """
        if not isinstance(text, str):
            raise InvalidArgument(field, f"expected text, got {type(text).__name__}")
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
        try:
            exact = Decimal(number) * multiplier
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only digits
            raise InvalidArgument(field, f"{text!r} is not a number") from exc
        if exact != exact.to_integral_value():
            raise InvalidArgument(field, f"{text!r} is not a whole number of bytes")
        return cls(int(exact))

    @classmethod
    def of(cls, value: int, *, field: str = "size") -> Size:
        """Build from a request's integer, naming the request field on error."""
        if value < 0:
            raise InvalidArgument(field, f"must not be negative, got {value}")
        return cls(value)

    def to_routeros(self) -> str:
        """The shortest exact RouterOS spelling for a command argument (``10G``, ``1536M``)."""
        for suffix, unit in _EMIT_UNITS:
            if self.bytes and self.bytes % unit == 0:
                return f"{self.bytes // unit}{suffix}"
        return str(self.bytes)

    def humanize(self) -> str:
        """RouterOS's display form with one decimal (``1024.0GiB``), as ``print`` shows it."""
        for suffix, unit in _SHOW_UNITS:
            if self.bytes >= unit:
                return f"{self.bytes / unit:.1f}{suffix}"
        return str(self.bytes)

    def round_up(self, granularity: int = ALLOCATION_GRANULARITY) -> Size:
        return Size(_div_ceil(self.bytes, granularity) * granularity)

    def __str__(self) -> str:
        return self.humanize() if self.bytes >= KIB else f"{self.bytes}B"


@attrs.frozen
class CapacityRange:
    """
    A CSI capacity range: ``required`` is the floor, ``limit`` the ceiling; 0 means unset.
    """

    required: int = 0
    limit: int = 0

    def __attrs_post_init__(self) -> None:
        if self.required < 0:
            raise InvalidArgument("capacity_range.required_bytes", "must not be negative")
        if self.limit < 0:
            raise InvalidArgument("capacity_range.limit_bytes", "must not be negative")
        if self.limit and self.required > self.limit:
            raise InvalidArgument(
                "capacity_range",
                f"required_bytes {self.required} exceeds limit_bytes {self.limit}",
            )

    def allocate(
        self,
        *,
        minimum: int = MIN_VOLUME_SIZE,
        maximum: int = MAX_VOLUME_SIZE,
        granularity: int = ALLOCATION_GRANULARITY,
    ) -> Size:
        """
        Pick the size to allocate: at least ``required`` and the minimum, rounded up to the
        granularity, never above ``limit``. Raises OutOfRange when no such size exists.
        """
        want = max(self.required, minimum)
        size = Size(want).round_up(granularity)
        if size.bytes > maximum:
            raise OutOfRange(
                f"capacity_range: {Size(want)} requested, the largest volume is {Size(maximum)}"
            )
        if self.limit and size.bytes > self.limit:
            raise OutOfRange(
                f"capacity_range: limit_bytes {self.limit} is below the smallest size the "
                f"driver can allocate for this request ({size.bytes} bytes; the minimum volume "
                f"is {Size(minimum)}, sizes are whole MiB)"
            )
        return size

    def admits(self, size: Size) -> bool:
        """Whether an existing volume of ``size`` satisfies this range."""
        if size.bytes < self.required:
            return False
        return not (self.limit and size.bytes > self.limit)
