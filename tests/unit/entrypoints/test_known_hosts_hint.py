"""A missing known_hosts file is reported with the option that sets it and the path as given."""

from __future__ import annotations

import pathlib

import pytest

from rds_csi.domain import InvalidArgument
from rds_csi.entrypoints.config import settings_from
from rds_csi.entrypoints.rds_wiring import rds_ssh_settings
from rds_csi.entrypoints.settings import Settings


def _settings(**extra: object) -> Settings:
    return settings_from({"backend": "ssh", "rds_ssh_key": "/etc/rds-csi/ssh/id", **extra})


def test_unset_names_the_option_and_the_default_unexpanded(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(InvalidArgument) as err:
        rds_ssh_settings(_settings())
    assert err.value.field == "--rds-known-hosts"
    assert err.value.problem.startswith("~/.ssh/known_hosts (the default: --rds-known-hosts is")
    assert "No such file or directory" in err.value.problem
    assert str(tmp_path) not in str(err.value)


def test_given_is_printed_as_given(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "known_hosts"
    with pytest.raises(InvalidArgument) as err:
        rds_ssh_settings(_settings(rds_known_hosts=str(missing)))
    assert str(err.value).startswith(f"--rds-known-hosts: {missing}: No such file")


def test_present_or_switched_off_passes(tmp_path: pathlib.Path) -> None:
    present = tmp_path / "known_hosts"
    present.write_text("")
    assert rds_ssh_settings(_settings(rds_known_hosts=str(present))).known_hosts_file == present
    off = rds_ssh_settings(_settings(rds_insecure_ignore_host_key=True))
    assert off.insecure_ignore_host_key
