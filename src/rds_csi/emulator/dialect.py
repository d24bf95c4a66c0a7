"""
Dialects: how the emulator answers where RouterOS's real behaviour is unverified.

A ``Dialect`` switches every such guess one way or the other (``assumptions.py`` names each
guess and the setting that flips it). The driver must work under all of them; the contract
suite runs over ``DIALECTS``:

- ``today``: the emulator's long-standing choices (80 columns, token wrap, exit 0, ...);
- ``strict``: every unverified behaviour the hostile way (mid-token wrap, a header cut
  mid-word, exit 1 on error, ``no such item`` for an empty ``[find]``, truncated sizes,
  numbering that does not start at 0, the real pool row);
- ``wide``: the style of the real interactive capture (FACTS section 1): ~230 columns broken
  between tokens, a one-line header, global numbering, the real pool row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, Literal

import attrs

from rds_csi.domain.size import GIB, KIB, MIB, TIB
from rds_csi.emulator import assumptions
from rds_csi.emulator.render import Bare, PropValue, WrapStyle


__all__ = [
    "DIALECTS",
    "Dialect",
    "EmptyFind",
    "HeaderWrap",
    "PoolRow",
    "SizeDisplay",
    "real_pool_props",
    "truncated_size",
]

HeaderWrap = Literal["indented", "flush", "cut", "none"]
EmptyFind = Literal["no-op", "no-such-item"]
SizeDisplay = Literal["nearest", "truncate"]
PoolRow = Literal["emulator", "real"]

WRAP_STYLES: Final = ("token", "hard", "none")
HEADER_WRAPS: Final = ("indented", "flush", "cut", "none")
EMPTY_FINDS: Final = ("no-op", "no-such-item")
SIZE_DISPLAYS: Final = ("nearest", "truncate")
POOL_ROWS: Final = ("emulator", "real")
_MIN_WIDTH: Final = 40


def _width(_instance: object, _attribute: object, value: int) -> None:
    if value < _MIN_WIDTH:
        raise ValueError(f"width {value} is below {_MIN_WIDTH} columns")


@attrs.frozen
class Dialect:
    """
    Attributes:
        width: Output width when the login names none (A1).
        wrap_style: ``token`` breaks between tokens and cuts only a token longer than a line;
            ``hard`` cuts the record text at every width boundary, mid-token; ``none`` never
            wraps (A2).
        header_wrap: The ``Flags:`` legend: ``indented`` wraps at ``; `` with continuation
            lines indented; ``flush`` wraps there without indent; ``cut`` cuts it at the width,
            mid-word, without indent; ``none`` keeps it on one line (A6).
        error_exit_status: The exec exit status after an error (A14).
        empty_find: What ``remove``/``set`` do with an empty ``[find]``: nothing, or fail with
            ``no such item`` (A13).
        first_number: The number of the first ``/disk`` item (the pool); the real box numbers
            items globally, its file disks at 26-31 (A3, section 1).
        size_display: ``file-size`` and ``/file`` sizes rounded to the nearest tenth or
            truncated (A29).
        pool_row: ``emulator`` (btrfs, no inode or RAID identity fields) or ``real`` (xfs with
            ``fs-uuid``, ``total-inodes``, ``free-inodes``, ``raid-*``) (A20).
    """

    width: int = attrs.field(default=assumptions.EXEC_WIDTH, validator=_width)
    wrap_style: WrapStyle = attrs.field(
        default=assumptions.WRAP_STYLE, validator=attrs.validators.in_(WRAP_STYLES)
    )
    header_wrap: HeaderWrap = attrs.field(
        default="indented", validator=attrs.validators.in_(HEADER_WRAPS)
    )
    error_exit_status: int = attrs.field(
        default=assumptions.ERROR_EXIT_STATUS, validator=attrs.validators.in_((0, 1))
    )
    empty_find: EmptyFind = attrs.field(
        default="no-op", validator=attrs.validators.in_(EMPTY_FINDS)
    )
    first_number: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    size_display: SizeDisplay = attrs.field(
        default="nearest", validator=attrs.validators.in_(SIZE_DISPLAYS)
    )
    pool_row: PoolRow = attrs.field(default="emulator", validator=attrs.validators.in_(POOL_ROWS))


DIALECTS: Final[dict[str, Dialect]] = {
    "today": Dialect(),
    "strict": Dialect(
        width=80,
        wrap_style="hard",
        header_wrap="cut",
        error_exit_status=1,
        empty_find="no-such-item",
        first_number=26,
        size_display="truncate",
        pool_row="real",
    ),
    "wide": Dialect(
        width=230, wrap_style="token", header_wrap="none", first_number=26, pool_row="real"
    ),
}

_UNITS: Final = (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB))


def truncated_size(value: int) -> str:
    """A humanized size cut (not rounded) to one decimal: 1500 MiB -> ``1.4GiB``."""
    for suffix, unit in _UNITS:
        if value >= unit:
            return f"{math.floor(value * 10 / unit) / 10:.1f}{suffix}"
    return str(value)


def real_pool_props(
    props: Sequence[tuple[str, PropValue]], total_inodes: int, free_inodes: int
) -> list[tuple[str, PropValue]]:
    """The emulator's pool row reshaped like the real one: xfs, its uuid, inodes, RAID id."""
    out: list[tuple[str, PropValue]] = []
    for key, value in props:
        if key == "fs":
            out += [("fs", Bare("xfs")), ("fs-uuid", assumptions.POOL_FS_UUID)]
            continue
        out.append((key, value))
        if key == "free":
            out += [("total-inodes", total_inodes), ("free-inodes", free_inodes)]
        elif key == "raid-master":
            out += [("raid-uuid", assumptions.POOL_RAID_UUID), ("raid-chunk-size", Bare("512K"))]
    return out
