from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rds_csi.domain import CapacityRange, InvalidArgument, OutOfRange, Size
from rds_csi.domain.size import GIB, MAX_VOLUME_SIZE, MIB, MIN_VOLUME_SIZE, TIB


class TestQuantity:
    """Sizes people type are Kubernetes quantities, meant exactly as Kubernetes means them."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1Gi", GIB),
            ("512Mi", 512 * MIB),
            ("1.5Ti", 3 * TIB // 2),
            ("2Ki", 2048),
            ("1G", 10**9),
            ("100M", 10**8),
            ("5k", 5000),
            ("2T", 2 * 10**12),
            ("1e9", 10**9),
            ("1E3", 1000),
            ("1E", 10**18),
            ("4096", 4096),
            ("+1Gi", GIB),
            ("0", 0),
            ("1000m", 1),
        ],
    )
    def test_binary_with_i_decimal_without(self, text: str, expected: int) -> None:
        assert Size.from_quantity(text).bytes == expected

    @pytest.mark.parametrize(
        ("text", "hint"),
        [
            ("10GiB", "10Gi for binary"),
            ("10GB", "10G for decimal"),
            ("10gb", "10Gi for binary"),
            ("512m", "512Mi"),
            ("1 G", "1Gi"),
            ("-1Gi", "negative"),
            ("1e30", "too large"),
            ("0.5", "whole number of bytes"),
            ("", "examples: 1Gi"),
            ("Gi", "examples: 1Gi"),
            ("1,5Gi", "not a Kubernetes quantity"),
        ],
    )
    def test_refusals_name_the_field_and_what_was_meant(self, text: str, hint: str) -> None:
        with pytest.raises(InvalidArgument) as err:
            Size.from_quantity(text, field="--size")
        assert err.value.field == "--size"
        assert hint in str(err.value)

    @given(st.text(max_size=40))
    def test_no_input_crashes(self, text: str) -> None:
        try:
            size = Size.from_quantity(text)
        except InvalidArgument:
            return
        assert size.bytes >= 0

    @given(st.integers(min_value=0, max_value=2**62))
    def test_the_shown_quantity_round_trips(self, n: int) -> None:
        assert Size.from_quantity(Size(n).quantity()).bytes == n

    def test_str_is_exact_when_short_and_rounded_otherwise(self) -> None:
        assert str(Size(16 * TIB)) == "16Ti"
        assert str(Size(1536 * MIB)) == "1536Mi"
        assert str(Size(93 * GIB + 200 * MIB)) == "93.2Gi"
        assert str(Size(5)) == "5"

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
