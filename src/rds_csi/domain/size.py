"""Byte sizes, Kubernetes quantities for people, and the allocation rules for a volume."""

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
EIB: Final = 1024**6

# The RDS allocates file disks in whole MiB in our commands; rounding up to it keeps the size we
# ask for exactly the size RouterOS reports back.
ALLOCATION_GRANULARITY: Final = MIB
# The Go driver's limits, kept so a StorageClass behaves the same under either driver.
MIN_VOLUME_SIZE: Final = GIB
MAX_VOLUME_SIZE: Final = 16 * TIB

# Kubernetes quantity suffixes (k8s.io/apimachinery resource.Quantity): binary SI with `i`,
# decimal SI without; `m` is milli. RouterOS's own spellings (`10G` for GiB) live with the
# RouterOS adapter and the emulator, never here: people type Kubernetes quantities.
_BINARY: Final[dict[str, int]] = {
    "Ki": KIB,
    "Mi": MIB,
    "Gi": GIB,
    "Ti": TIB,
    "Pi": PIB,
    "Ei": EIB,
}
_DECIMAL: Final[dict[str, Decimal]] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
}
_QUANTITY_RE: Final = re.compile(
    r"(?P<sign>[+-]?)(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>[eE][+-]?[0-9]{1,3}|[KMGTPE]i|[mkMGTPE])?"
)
# Spellings people bring from elsewhere, with the Kubernetes one they mean.
_FOREIGN: Final = re.compile(r"(?P<num>.*?)\s*(?P<unit>[kKmMgGtTpP])(?:i?[bB])?")
# Kubernetes stores quantities as int64 bytes at most.
_MAX_BYTES: Final = 2**63 - 1
_SHOW: Final = (("Ei", EIB), ("Pi", PIB), ("Ti", TIB), ("Gi", GIB), ("Mi", MIB), ("Ki", KIB))
# Below this many digits an exact spelling (`1536Mi`) reads better than a rounded one.
_EXACT_DIGITS: Final = 4


def _div_ceil(a: int, b: int) -> int:
    return -(-a // b)


def _hint(text: str) -> str:
    """What a size typed in another notation probably means as a quantity."""
    match = _FOREIGN.fullmatch(text.strip())
    if match is None:
        return "examples: 1Gi, 512Mi, 10G, 4096"
    num, unit = match["num"], match["unit"].upper()
    unit = "k" if unit == "K" else unit
    return f"write {num}{unit}i for binary ({unit}iB) or {num}{unit} for decimal units"


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
    def from_quantity(cls, text: str, *, field: str = "size") -> Size:
        """
        Read a Kubernetes quantity as Kubernetes means it: ``1Gi`` is 2^30 bytes, ``1G`` is
        10^9, ``1.5Ti``, ``1e9`` and plain bytes (``4096``) too.

        Refuses what is not a whole number of bytes (``512m`` is 0.512 bytes: ``m`` is milli)
        rather than rounding a likely typo, and names other notations' units (``10GiB``,
        ``10gb``) with the quantity that says what was probably meant.
        """
        if not isinstance(text, str):
            raise InvalidArgument(field, f"expected text, got {type(text).__name__}")
        match = _QUANTITY_RE.fullmatch(text)
        if match is None:
            raise InvalidArgument(field, f"{text!r} is not a Kubernetes quantity ({_hint(text)})")
        if match["sign"] == "-" and match["num"].strip("0.") != "":
            raise InvalidArgument(field, f"{text!r} must not be negative")
        suffix = match["suffix"] or ""
        try:
            number = Decimal(match["num"])
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only digits
            raise InvalidArgument(field, f"{text!r} is not a number") from exc
        if suffix in _BINARY:
            exact = number * _BINARY[suffix]
        elif suffix in _DECIMAL:
            exact = number * _DECIMAL[suffix]
        else:  # a decimal exponent, e.g. 1e9
            exact = number.scaleb(int(suffix[1:]))
        if exact > _MAX_BYTES:
            raise InvalidArgument(field, f"{text!r} is too large")
        if exact != exact.to_integral_value():
            why = f" (m is milli; for mebibytes write {match['num']}Mi)" if suffix == "m" else ""
            raise InvalidArgument(field, f"{text!r} is not a whole number of bytes{why}")
        return cls(int(exact))

    @classmethod
    def of(cls, value: int, *, field: str = "size") -> Size:
        """Build from a request's integer, naming the request field on error."""
        if value < 0:
            raise InvalidArgument(field, f"must not be negative, got {value}")
        return cls(value)

    def quantity(self) -> str:
        """The exact Kubernetes quantity, in the largest binary unit that divides it."""
        for suffix, unit in _SHOW:
            if self.bytes and self.bytes % unit == 0:
                return f"{self.bytes // unit}{suffix}"
        return str(self.bytes)

    def round_up(self, granularity: int = ALLOCATION_GRANULARITY) -> Size:
        return Size(_div_ceil(self.bytes, granularity) * granularity)

    def __str__(self) -> str:
        """For people: exact when short (``10Gi``, ``1536Mi``), else one decimal (``93.2Gi``)."""
        exact = self.quantity()
        if len(exact.rstrip("KMGTPEi")) <= _EXACT_DIGITS:
            return exact
        for suffix, unit in _SHOW:
            if self.bytes >= unit:
                return f"{self.bytes / unit:.1f}{suffix}"
        return exact  # pragma: no cover - fewer bytes than 1Ki are always short


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
