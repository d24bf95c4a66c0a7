"""Showing request values: escaped, capped, mount options by name."""

from __future__ import annotations

import pytest

from rds_csi.domain import InvalidArgument, InvalidPageToken, MountAccess, VolumeNotFound
from rds_csi.domain.text import option_name, option_names, printable, quoted


def test_control_characters_are_escaped_on_one_line() -> None:
    assert printable("a\nb\rc\td\x1b\u2028e") == "a\\nb\\rc\\td\\x1b\\u2028e"


def test_a_backslash_is_escaped_so_an_escape_cannot_be_faked() -> None:
    assert printable("a\\nb") == "a\\\\nb"
    assert printable("a\\nb") != printable("a\nb")


def test_long_values_are_capped_and_counted() -> None:
    shown = printable("x" * 1000, 10)
    assert shown == "x" * 10 + "...(990 more characters)"
    assert printable("plain text") == "plain text"
    assert printable("y" * 1000, None) == "y" * 1000


def test_quoted() -> None:
    assert quoted("pvc-\r1") == "'pvc-\\r1'"


@pytest.mark.parametrize(
    ("option", "name"),
    [
        ("noatime", "noatime"),
        ("password=secret", "password"),
        ("username=bob,password=secret", "username"),
        (" =x", "?"),
    ],
)
def test_an_option_is_shown_by_name(option: str, name: str) -> None:
    assert option_name(option) == name


def test_option_names() -> None:
    assert option_names(["ro", "uid=1000"]) == "ro,uid"
    assert option_names([]) == "-"


def test_domain_errors_quote_request_values_safely() -> None:
    assert "\r" not in str(VolumeNotFound("a\rb"))
    assert len(str(InvalidPageToken("t" * (4 << 20)))) < 300
    with pytest.raises(InvalidArgument) as caught:
        MountAccess(mount_flags=("username=bob,password=secret",))
    assert "secret" not in str(caught.value)
    assert "bob" not in str(caught.value)
