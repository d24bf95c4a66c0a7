"""RouterOS's size spellings, read and shown by the emulator (never by the driver's CLI)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rds_csi.adapters.routeros_ssh.commands import routeros_size
from rds_csi.domain import InvalidArgument, Size
from rds_csi.domain.size import GIB, MIB, TIB
from rds_csi.emulator.units import humanize, parse_routeros_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10G", 10 * GIB),
        ("10GiB", 10 * GIB),
        ("512M", 512 * MIB),
        ("512MiB", 512 * MIB),
        ("1.5TiB", 3 * TIB // 2),
        ("1024.0GiB", TIB),
        ("4096", 4096),
        ("0", 0),
        ("16 003 143 565 312", 16_003_143_565_312),
        ("1T", TIB),
        ("480GB", 480 * 10**9),
    ],
)
def test_routeros_spellings(text: str, expected: int) -> None:
    assert parse_routeros_size(text).bytes == expected


@pytest.mark.parametrize(
    "text", ["", "G", "-1G", "10X", "1e9", "10 G B", "1,5G", "1 23", "1924.1KiB"]
)
def test_rejects_what_is_not_a_size_and_names_the_field(text: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_routeros_size(text, field="file-size")
    assert err.value.field == "file-size"


@given(st.text(max_size=40))
def test_no_input_crashes(text: str) -> None:
    try:
        size = parse_routeros_size(text)
    except InvalidArgument:
        return
    assert size.bytes >= 0


@given(st.integers(min_value=0, max_value=2**62))
def test_the_adapters_spelling_reads_back_exactly(n: int) -> None:
    assert parse_routeros_size(routeros_size(Size(n))).bytes == n


def test_humanize_matches_routeros_display() -> None:
    assert humanize(Size(TIB)) == "1024.0GiB"
    assert humanize(Size(50 * GIB)) == "50.0GiB"
