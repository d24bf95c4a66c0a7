"""Command lines in logs and errors: mount option values never shown."""

from __future__ import annotations

from rds_csi.adapters.process import describe


def test_mount_option_values_are_masked() -> None:
    line = describe(["mount", "-t", "cifs", "-o", "ro,username=bob,password=s3cret", "--", "a"])
    assert line == "mount -t cifs -o 'ro,username=***,password=***' -- a"


def test_other_arguments_are_shown_as_typed() -> None:
    assert describe(["losetup", "--find", "/var/x y"]) == "losetup --find '/var/x y'"
