"""The defaults docs/configuration.md shows are the ones `--help` shows (the code's)."""

from __future__ import annotations

import re

import pytest

from rds_csi.entrypoints.options import OptionSpec, options
from tests.deploy_support import doc_table


_NUMBER = re.compile(r"([-+]?[0-9]+(?:\.[0-9]+)?)(?: [a-z]+)?")


def _documented() -> dict[str, str]:
    return {row["flag"]: row["default"] for row in doc_table("configuration.md", "driver-flags")}


@pytest.mark.parametrize("opt", list(options()), ids=lambda o: o.flag)
def test_each_documented_default_is_the_codes(opt: OptionSpec) -> None:
    doc = _documented().get(opt.flag)
    if doc is None:
        pytest.skip(f"{opt.flag} has no row (test_every_flag_is_documented fails for it)")
    code = opt.shown_default().strip("'\"")
    if code in {"", "none"} or doc == "(see --help)":
        return  # unset: the docs explain what unset means in words
    if code in {"True", "False"}:
        assert doc == {"True": "on", "False": "off"}[code]
    elif doc.startswith("("):
        pytest.fail(f"{opt.flag}: the docs say {doc}, the code's default is {code}")
    elif (number := _NUMBER.fullmatch(doc)) and _NUMBER.fullmatch(code):
        assert float(number[1]) == float(code), opt.flag  # `30` or `30 s` for 30.0
    else:
        assert doc == code, opt.flag
