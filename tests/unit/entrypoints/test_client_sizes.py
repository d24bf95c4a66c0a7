"""`rds-csi call` reads sizes as Kubernetes quantities, and says which flag is wrong."""

from __future__ import annotations

import pytest

from rds_csi.domain.size import GIB, MIB
from rds_csi.entrypoints.cli import build_parser


@pytest.mark.parametrize(
    ("size", "expected"),
    [("1Gi", GIB), ("512Mi", 512 * MIB), ("1G", 10**9), ("100M", 10**8), ("4096", 4096)],
)
def test_create_and_expand_take_kubernetes_quantities(size: str, expected: int) -> None:
    made = build_parser().parse_args(["call", "create", "pvc-a", "--size", size])
    grown = build_parser().parse_args(["call", "expand", "pvc-a", "--size", size])
    assert made.size == grown.size == expected


@pytest.mark.parametrize(
    ("size", "says"),
    [
        ("0", "argument --size: must be more than 0"),
        ("1GiB", "argument --size: '1GiB' is not a Kubernetes quantity (write 1Gi"),
        ("512m", "512Mi"),
    ],
)
def test_a_bad_size_is_a_usage_error_naming_size(
    size: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["call", "create", "pvc-a", "--size", size])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert says in err
    assert "--size: --size" not in err
