from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rds_csi.domain import CapacityRange, InvalidArgument, OutOfRange, Size
from rds_csi.domain.size import GIB, MAX_VOLUME_SIZE, MIB, MIN_VOLUME_SIZE, TIB


class TestParse:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("10G", 10 * GIB),
            ("10GiB", 10 * GIB),
            ("512M", 512 * MIB),
            ("512MiB", 512 * MIB),
            ("1.5TiB", 3 * TIB // 2),
            ("1024.0GiB", TIB),
            ("50.0GiB", 50 * GIB),
            ("4096", 4096),
            ("0", 0),
            ("16 003 143 565 312", 16_003_143_565_312),
            ("1 099 511 627 776", 1_099_511_627_776),
            ("1T", TIB),
            ("480GB", 480 * 10**9),
            ("1924.1KiB", None),
        ],
    )
    def test_routeros_spellings(self, text: str, expected: int | None) -> None:
        if expected is None:
            with pytest.raises(InvalidArgument, match="whole number of bytes"):
                Size.parse(text)
        else:
            assert Size.parse(text).bytes == expected

    @pytest.mark.parametrize("text", ["", "G", "-1G", "10X", "1e9", "10 G B", "1,5G", "1 23"])
    def test_rejects_what_is_not_a_size_and_names_the_field(self, text: str) -> None:
        with pytest.raises(InvalidArgument) as err:
            Size.parse(text, field="file-size")
        assert err.value.field == "file-size"

    @given(st.text(max_size=40))
    def test_no_input_crashes(self, text: str) -> None:
        try:
            size = Size.parse(text)
        except InvalidArgument:
            return
        assert size.bytes >= 0

    @given(st.integers(min_value=0, max_value=2**62))
    def test_emitted_spelling_round_trips(self, n: int) -> None:
        assert Size.parse(Size(n).to_routeros()).bytes == n

    @given(st.integers(min_value=1, max_value=2**40).map(lambda n: n * MIB))
    def test_emitted_spelling_uses_the_largest_exact_unit(self, n: int) -> None:
        text = Size(n).to_routeros()
        assert text[-1] in "MGT"
        assert not (text.endswith("M") and n % GIB == 0)

    def test_humanize_matches_routeros_display(self) -> None:
        assert Size(TIB).humanize() == "1024.0GiB"
        assert Size(50 * GIB).humanize() == "50.0GiB"

    def test_negative_and_non_integer_sizes_are_refused(self) -> None:
        with pytest.raises(InvalidArgument):
            Size(-1)
        with pytest.raises(InvalidArgument):
            Size(True)


class TestCapacityRange:
    def test_unset_range_gets_the_minimum(self) -> None:
        assert CapacityRange().allocate() == Size(MIN_VOLUME_SIZE)

    def test_small_request_is_raised_to_the_minimum(self) -> None:
        assert CapacityRange(required=1).allocate() == Size(GIB)

    def test_rounds_up_to_whole_mib(self) -> None:
        assert CapacityRange(required=2 * GIB + 1).allocate() == Size(2 * GIB + MIB)

    def test_limit_below_rounded_size_is_out_of_range(self) -> None:
        with pytest.raises(OutOfRange, match="limit_bytes"):
            CapacityRange(required=2 * GIB + 1, limit=2 * GIB + 2).allocate()

    def test_limit_below_minimum_is_out_of_range(self) -> None:
        with pytest.raises(OutOfRange):
            CapacityRange(limit=512 * MIB).allocate()

    def test_above_maximum_is_out_of_range(self) -> None:
        with pytest.raises(OutOfRange, match="largest volume"):
            CapacityRange(required=MAX_VOLUME_SIZE + 1).allocate()

    def test_required_above_limit_is_invalid(self) -> None:
        with pytest.raises(InvalidArgument, match="exceeds limit_bytes"):
            CapacityRange(required=3 * GIB, limit=2 * GIB)

    def test_negative_values_name_their_field(self) -> None:
        with pytest.raises(InvalidArgument) as err:
            CapacityRange(limit=-1)
        assert err.value.field == "capacity_range.limit_bytes"

    @given(
        st.integers(min_value=0, max_value=MAX_VOLUME_SIZE),
        st.integers(min_value=0, max_value=MAX_VOLUME_SIZE + GIB),
    )
    def test_allocation_respects_the_range(self, required: int, limit: int) -> None:
        assume(not limit or required <= limit)
        rng = CapacityRange(required, limit)
        try:
            size = rng.allocate()
        except OutOfRange:
            return
        assert size.bytes >= required
        assert size.bytes >= MIN_VOLUME_SIZE
        assert size.bytes % MIB == 0
        assert not limit or size.bytes <= limit
        assert rng.admits(size)
