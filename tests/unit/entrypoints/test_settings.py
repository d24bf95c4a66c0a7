"""Serve settings: flag > environment > file > default, for every kind of option."""

from __future__ import annotations

import pathlib
import socket

import pytest

from rds_csi.entrypoints.cli import build_parser
from rds_csi.entrypoints.container import Container
from rds_csi.entrypoints.settings import (
    SERVE_OPTIONS,
    SettingsError,
    default_settings,
    resolve_settings,
)


def settings(
    argv: list[str], env: dict[str, str] | None = None, file: pathlib.Path | None = None
) -> dict[str, object]:
    args = build_parser().parse_args(["all", *argv, *(["--config", str(file)] if file else [])])
    return resolve_settings(args, env or {})


@pytest.fixture
def config_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "rds-csi.yaml"
    path.write_text("rds_port: 2200\nrds_user: file-user\nlog_level: warning\n")
    return path


def test_defaults_without_any_source() -> None:
    s = settings([])
    assert s["endpoint"] == "unix:///csi/csi.sock"
    assert s["driver_name"] == "rds.csi.srvlab.io"
    assert s["metrics_address"] == ":9809"
    assert s["rds_port"] == 22
    assert s["rds_user"] == "admin"
    assert s["volume_path"] == "/storage-pool/metal-csi"
    assert s["nvme_port"] == 4420
    assert s["max_volumes_per_node"] == 0
    assert s["backend"] == "auto"
    assert s["initiator"] == "auto"
    assert s["topology"] == []
    assert s["rds_insecure_ignore_host_key"] is False


def test_node_id_defaults_to_the_hostname_when_resolved() -> None:
    assert settings([])["node_id"] == socket.gethostname()


def test_file_beats_default(config_file: pathlib.Path) -> None:
    s = settings([], file=config_file)
    assert (s["rds_port"], s["rds_user"], s["log_level"]) == (2200, "file-user", "warning")


def test_env_beats_file(config_file: pathlib.Path) -> None:
    s = settings([], {"RDS_CSI_RDS_PORT": "2300"}, config_file)
    assert s["rds_port"] == 2300
    assert s["rds_user"] == "file-user"


def test_flag_beats_env_and_file(config_file: pathlib.Path) -> None:
    s = settings(["--rds-port", "2400"], {"RDS_CSI_RDS_PORT": "2300"}, config_file)
    assert s["rds_port"] == 2400


def test_config_file_path_may_come_from_the_environment(config_file: pathlib.Path) -> None:
    assert settings([], {"RDS_CSI_CONFIG": str(config_file)})["rds_port"] == 2200


def test_every_option_reads_its_own_variable() -> None:
    for opt in SERVE_OPTIONS:
        assert opt.env == "RDS_CSI_" + opt.name.upper()
        assert opt.flag == "--" + opt.name.replace("_", "-")


class TestConventionalVariables:
    def test_csi_endpoint_is_read(self) -> None:
        assert settings([], {"CSI_ENDPOINT": "unix:///x/csi.sock"})["endpoint"] == (
            "unix:///x/csi.sock"
        )

    def test_our_variable_beats_csi_endpoint_and_the_flag_beats_both(self) -> None:
        env = {"CSI_ENDPOINT": "unix:///a.sock", "RDS_CSI_ENDPOINT": "unix:///b.sock"}
        assert settings([], env)["endpoint"] == "unix:///b.sock"
        assert settings(["--endpoint", "unix:///c.sock"], env)["endpoint"] == "unix:///c.sock"

    def test_node_id_is_read(self) -> None:
        assert settings([], {"NODE_ID": "worker-7"})["node_id"] == "worker-7"


class TestKinds:
    def test_bool_from_flag_env_and_file(self, tmp_path: pathlib.Path) -> None:
        assert settings(["--rds-insecure-ignore-host-key"])["rds_insecure_ignore_host_key"]
        env = {"RDS_CSI_RDS_INSECURE_IGNORE_HOST_KEY": "true"}
        assert settings([], env)["rds_insecure_ignore_host_key"] is True
        flag_off = settings(["--no-rds-insecure-ignore-host-key"], env)
        assert flag_off["rds_insecure_ignore_host_key"] is False
        path = tmp_path / "c.yaml"
        path.write_text("rds_insecure_ignore_host_key: yes\n")
        assert settings([], file=path)["rds_insecure_ignore_host_key"] is True

    def test_topology_from_repeated_flags_env_list_and_file_mapping(
        self, tmp_path: pathlib.Path
    ) -> None:
        flags = ["--topology", "zone=a", "--topology", "rack=r1"]
        assert settings(flags)["topology"] == ["zone=a", "rack=r1"]
        assert settings([], {"RDS_CSI_TOPOLOGY": "zone=a, rack=r1"})["topology"] == [
            "zone=a",
            "rack=r1",
        ]
        path = tmp_path / "c.yaml"
        path.write_text("topology:\n  zone: b\n")
        assert settings([], file=path)["topology"] == ["zone=b"]

    def test_empty_metrics_address_from_env_disables(self) -> None:
        assert settings([], {"RDS_CSI_METRICS_ADDRESS": ""})["metrics_address"] == ""


class TestErrors:
    def test_unknown_file_key_is_named(self, tmp_path: pathlib.Path) -> None:
        path = tmp_path / "c.yaml"
        path.write_text("rds_prot: 22\n")
        with pytest.raises(SettingsError, match="unknown setting 'rds_prot'"):
            settings([], file=path)

    def test_malformed_env_value_names_the_variable(self) -> None:
        with pytest.raises(SettingsError, match="RDS_CSI_RDS_PORT"):
            settings([], {"RDS_CSI_RDS_PORT": "many"})

    def test_value_outside_the_choices_is_refused_from_any_source(self) -> None:
        with pytest.raises(SettingsError, match="--backend: 'carrier-pigeon'"):
            settings([], {"RDS_CSI_BACKEND": "carrier-pigeon"})
        with pytest.raises(SettingsError, match="--log-format"):
            settings(["--log-format", "xml"])

    def test_malformed_flag_is_a_usage_error(self) -> None:
        with pytest.raises(SystemExit) as info:
            settings(["--rds-port", "70000"])
        assert info.value.code == 2

    def test_file_that_is_not_a_mapping_is_refused(self, tmp_path: pathlib.Path) -> None:
        path = tmp_path / "c.yaml"
        path.write_text("- a\n- b\n")
        with pytest.raises(SettingsError, match="mapping"):
            settings([], file=path)


def test_default_settings_has_every_option() -> None:
    assert set(default_settings()) == {opt.name for opt in SERVE_OPTIONS}


class TestEmbeddedEmulatorDataPlane:
    def test_defaults_keep_the_exports_file_only(self) -> None:
        s = settings([])
        assert (s["emulator_data_plane"], s["emulator_data_address"]) == ("json", "")

    def test_the_choices_are_the_emulators(self) -> None:
        assert settings(["--emulator-data-plane", "nvmet"])["emulator_data_plane"] == "nvmet"
        with pytest.raises(SettingsError, match="--emulator-data-plane: 'spdk'"):
            settings([], {"RDS_CSI_EMULATOR_DATA_PLANE": "spdk"})

    @pytest.mark.parametrize(
        ("flags", "address"),
        [
            ([], "127.0.0.1"),
            (["--rds-address", "192.0.2.10"], "192.0.2.10"),
            (["--rds-address", "192.0.2.10", "--nvme-address", "198.51.100.7"], "198.51.100.7"),
            (["--nvme-address", "198.51.100.7", "--emulator-data-address", "::1"], "::1"),
        ],
    )
    def test_the_container_gives_the_emulator_the_address_nodes_connect_to(
        self, tmp_path: pathlib.Path, flags: list[str], address: str
    ) -> None:
        container = Container()
        container.config.from_dict(
            {
                **settings(flags),
                "mode": "all",
                "backend": "emulator",
                "emulator_data_dir": str(tmp_path / "rds"),
            }
        )
        try:
            emulator = container.emulator()
            assert emulator.config.data_plane == "json"
            assert emulator.config.data_address == address
            assert (tmp_path / "rds" / "nvme-exports.json").exists()
        finally:
            container.shutdown_resources()
