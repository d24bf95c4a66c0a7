"""The --rds-* and volume path options reach the SSH adapter's settings as given."""

from __future__ import annotations

import pathlib

import pytest

from rds_csi.entrypoints.config import SettingsError, settings_from
from rds_csi.entrypoints.rds_wiring import rds_ssh_settings


def _ssh(tmp_path: pathlib.Path, **more: object) -> dict[str, object]:
    key = tmp_path / "key"
    key.write_text("unused: the settings only name the file\n")
    return {
        "backend": "ssh",
        "rds_address": "10.0.0.5",
        "rds_ssh_key": str(key),
        "rds_insecure_ignore_host_key": True,
        **more,
    }


def test_the_channel_cap_and_other_volume_paths_reach_the_ssh_settings(
    tmp_path: pathlib.Path,
) -> None:
    settings = settings_from(
        _ssh(tmp_path, rds_max_channels=3, other_volume_paths="/pool-b/vms, /pool-c/db")
    )
    ssh = rds_ssh_settings(settings)
    assert ssh.max_channels == 3
    assert ssh.known_bases == ("/pool-b/vms", "/pool-c/db")


def test_without_other_volume_paths_only_the_default_is_known(tmp_path: pathlib.Path) -> None:
    assert rds_ssh_settings(settings_from(_ssh(tmp_path))).known_bases == ()


@pytest.mark.parametrize(
    ("name", "value"),
    [("rds_max_channels", 0), ("other_volume_paths", "/ok,/a/../b")],
)
def test_a_bad_value_is_refused_naming_the_option(name: str, value: object) -> None:
    with pytest.raises(SettingsError, match=name):
        settings_from({name: value})
