"""Serve settings: flag > environment > file > default, for every kind of option."""

from __future__ import annotations

import pathlib
import socket

import attrs
import pytest

from rds_csi.application.topology import Topology
from rds_csi.entrypoints.cli import build_parser
from rds_csi.entrypoints.config import SettingsError, resolve_settings, settings_from
from rds_csi.entrypoints.container import Container
from rds_csi.entrypoints.endpoint import parse_endpoint
from rds_csi.entrypoints.options import options
from rds_csi.entrypoints.settings import Mode, Settings


def settings(
    argv: list[str], env: dict[str, str] | None = None, file: pathlib.Path | None = None
) -> Settings:
    args = build_parser().parse_args(["all", *argv, *(["--config", str(file)] if file else [])])
    return resolve_settings(args, env or {})


@pytest.fixture
def config_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "rds-csi.yaml"
    path.write_text("rds_port: 2200\nrds_user: file-user\nlog_level: warning\n")
    return path


def test_defaults_without_any_source() -> None:
    s = settings([])
    assert str(s.endpoint) == "unix:///tmp/rds-csi/csi.sock"
    assert s.driver_name == "rds.csi.srvlab.io"
    assert s.metrics.address == "auto"
    assert (s.rds.port, s.rds.user) == (22, "admin")
    assert s.controller.volume_path == "/storage-pool/metal-csi"
    assert s.controller.nvme_port == 4420
    assert s.node.max_volumes_per_node == 0
    assert (s.backend, s.initiator) == ("auto", "auto")
    assert s.topology == Topology()
    assert s.rds.insecure_ignore_host_key is False


def test_no_source_equals_the_class_defaults() -> None:
    # The defaults are written once, on the classes; reading no source changes nothing.
    assert settings([]) == Settings()


def test_node_id_defaults_to_the_hostname_when_resolved() -> None:
    assert settings([]).node.node_id == socket.gethostname()


def test_file_beats_default(config_file: pathlib.Path) -> None:
    s = settings([], file=config_file)
    assert (s.rds.port, s.rds.user, s.log_level) == (2200, "file-user", "warning")


def test_env_beats_file(config_file: pathlib.Path) -> None:
    s = settings([], {"RDS_CSI_RDS_PORT": "2300"}, config_file)
    assert s.rds.port == 2300
    assert s.rds.user == "file-user"


def test_flag_beats_env_and_file(config_file: pathlib.Path) -> None:
    s = settings(["--rds-port", "2400"], {"RDS_CSI_RDS_PORT": "2300"}, config_file)
    assert s.rds.port == 2400


def test_config_file_path_may_come_from_the_environment(config_file: pathlib.Path) -> None:
    assert settings([], {"RDS_CSI_CONFIG": str(config_file)}).rds.port == 2200


def test_every_option_reads_its_own_variable() -> None:
    for opt in options():
        assert opt.env == "RDS_CSI_" + opt.name.upper()
        assert opt.flag == "--" + opt.name.replace("_", "-")


def test_option_names_are_unchanged() -> None:
    # deploy/ manifests, the chart's ConfigMap and docs/configuration.md spell these.
    assert {opt.name for opt in options()} == {
        "endpoint", "driver_name", "log_level", "log_format", "metrics_address",
        "shutdown_grace", "backend", "emulator_data_dir", "emulator_pool_size",
        "emulator_data_plane", "emulator_data_address", "emulator_copy_throughput",
        "snapshot_method", "rds_address", "rds_port", "rds_user",
        "rds_ssh_key", "rds_known_hosts", "rds_insecure_ignore_host_key", "rds_call_timeout",
        "rds_max_channels", "other_volume_paths",
        "volume_path",
        "nqn_prefix", "nvme_address", "nvme_port", "fake_rds_latency", "kubernetes", "kubeconfig",
        "namespace", "kubernetes_state_file", "attachment_resync", "stale_attachment_interval",
        "stale_node_grace", "orphan_interval", "orphan_grace", "orphan_delete", "node_id",
        "max_volumes_per_node", "initiator", "nvme_binary", "sysfs_root", "kubelet_dir",
            "loop_exports_file", "loop_records_dir",
        "topology",
        "identity_workers", "breaker_failures", "breaker_reset_timeout", "health_interval",
        "capacity_interval",
        "rds_rest_url", "rds_rest_password_file", "rds_ca_file", "rds_insecure_skip_verify",
    }  # fmt: skip


class TestConventionalVariables:
    def test_csi_endpoint_is_read(self) -> None:
        endpoint = settings([], {"CSI_ENDPOINT": "unix:///x/csi.sock"}).endpoint
        assert endpoint == parse_endpoint("unix:///x/csi.sock")

    def test_our_variable_beats_csi_endpoint_and_the_flag_beats_both(self) -> None:
        env = {"CSI_ENDPOINT": "unix:///a.sock", "RDS_CSI_ENDPOINT": "unix:///b.sock"}
        assert str(settings([], env).endpoint) == "unix:///b.sock"
        assert str(settings(["--endpoint", "unix:///c.sock"], env).endpoint) == "unix:///c.sock"

    def test_node_id_is_read(self) -> None:
        assert settings([], {"NODE_ID": "worker-7"}).node.node_id == "worker-7"


class TestKinds:
    def test_bool_from_flag_env_and_file(self, tmp_path: pathlib.Path) -> None:
        assert settings(["--rds-insecure-ignore-host-key"]).rds.insecure_ignore_host_key
        env = {"RDS_CSI_RDS_INSECURE_IGNORE_HOST_KEY": "true"}
        assert settings([], env).rds.insecure_ignore_host_key is True
        flag_off = settings(["--no-rds-insecure-ignore-host-key"], env)
        assert flag_off.rds.insecure_ignore_host_key is False
        path = tmp_path / "c.yaml"
        path.write_text("rds_insecure_ignore_host_key: yes\n")
        assert settings([], file=path).rds.insecure_ignore_host_key is True

    def test_topology_from_repeated_flags_env_list_and_file_mapping(
        self, tmp_path: pathlib.Path
    ) -> None:
        both = Topology.parse(["zone=a", "rack=r1"])
        flags = ["--topology", "zone=a", "--topology", "rack=r1"]
        assert settings(flags).topology == both
        assert settings([], {"RDS_CSI_TOPOLOGY": "zone=a, rack=r1"}).topology == both
        path = tmp_path / "c.yaml"
        path.write_text("topology:\n  zone: b\n")
        assert settings([], file=path).topology == Topology.parse(["zone=b"])

    def test_empty_metrics_address_from_env_disables(self) -> None:
        assert settings([], {"RDS_CSI_METRICS_ADDRESS": ""}).metrics.address == ""


class TestErrors:
    def test_unknown_file_key_is_named(self, tmp_path: pathlib.Path) -> None:
        path = tmp_path / "c.yaml"
        path.write_text("rds_prot: 22\n")
        with pytest.raises(SettingsError, match="unknown setting 'rds_prot'"):
            settings([], file=path)

    def test_malformed_env_value_names_the_variable(self) -> None:
        with pytest.raises(SettingsError, match="RDS_CSI_RDS_PORT: 'many' is not an integer"):
            settings([], {"RDS_CSI_RDS_PORT": "many"})

    def test_malformed_flag_names_the_flag(self) -> None:
        with pytest.raises(SettingsError, match=r"--rds-port: 70000 is not a TCP port"):
            settings(["--rds-port", "70000"])

    def test_malformed_file_value_names_the_file_and_key(self, tmp_path: pathlib.Path) -> None:
        path = tmp_path / "c.yaml"
        path.write_text("nvme_port: 0\n")
        with pytest.raises(SettingsError, match=rf"--config {path}: nvme_port: 0 is not a TCP"):
            settings([], file=path)

    def test_the_winning_source_is_the_one_named(self, config_file: pathlib.Path) -> None:
        config_file.write_text("rds_port: nonsense\n")
        assert settings([], {"RDS_CSI_RDS_PORT": "2300"}, config_file).rds.port == 2300
        with pytest.raises(SettingsError, match="--rds-port: 'x'"):
            settings(["--rds-port", "x"], {"RDS_CSI_RDS_PORT": "2300"}, config_file)

    def test_every_bad_value_is_reported_at_once(self) -> None:
        env = {"RDS_CSI_LOG_FORMAT": "xml", "RDS_CSI_VOLUME_PATH": "/a/../b"}
        with pytest.raises(SettingsError) as err:
            settings(["--max-volumes-per-node", "-1"], env)
        text = str(err.value)
        assert "RDS_CSI_LOG_FORMAT: 'xml' is not one of text, json" in text
        assert "RDS_CSI_VOLUME_PATH: " in text
        assert "--max-volumes-per-node: -1 is negative" in text

    def test_value_outside_the_choices_is_refused_from_any_source(self) -> None:
        with pytest.raises(SettingsError, match="RDS_CSI_BACKEND: 'carrier-pigeon' is not one"):
            settings([], {"RDS_CSI_BACKEND": "carrier-pigeon"})
        with pytest.raises(SettingsError, match="--log-format: 'xml'"):
            settings(["--log-format", "xml"])

    @pytest.mark.parametrize(
        ("option", "value"),
        [
            ("rds_address", "10.0.0.1; reboot"),
            ("nvme_address", "not a host"),
            ("nqn_prefix", "nqn.2000-02.com.mikrotik:x"),
            ("endpoint", "relative.sock"),
            ("metrics_address", "9809"),
            ("node_id", "x" * 257),
            ("driver_name", "-bad-"),
            ("topology", "zone"),
            ("emulator_pool_size", "lots"),
            ("sysfs_root", "sys"),
            ("shutdown_grace", "-1"),
            ("breaker_failures", "0"),
            ("breaker_reset_timeout", "0"),
            ("health_interval", "nan"),
            ("identity_workers", "0"),
        ],
    )
    def test_each_rule_names_the_option(self, option: str, value: str) -> None:
        with pytest.raises(SettingsError, match="^RDS_CSI_" + option.upper() + ": "):
            settings([], {"RDS_CSI_" + option.upper(): value})

    def test_file_that_is_not_a_mapping_is_refused(self, tmp_path: pathlib.Path) -> None:
        path = tmp_path / "c.yaml"
        path.write_text("- a\n- b\n")
        with pytest.raises(SettingsError, match="mapping"):
            settings([], file=path)


def test_settings_from_names_an_unknown_option() -> None:
    with pytest.raises(SettingsError, match="unknown setting 'rds_prot'"):
        settings_from({"rds_prot": 22})


class TestEmbeddedEmulatorDataPlane:
    def test_defaults_keep_the_exports_file_only(self) -> None:
        s = settings([])
        assert (s.emulator.data_plane, s.emulator.data_address) == ("json", "")

    def test_the_choices_are_the_emulators(self) -> None:
        assert settings(["--emulator-data-plane", "nvmet"]).emulator.data_plane == "nvmet"
        with pytest.raises(SettingsError, match="RDS_CSI_EMULATOR_DATA_PLANE: 'spdk'"):
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
        s = settings([*flags, "--backend", "emulator"])
        s = attrs.evolve(s, emulator=attrs.evolve(s.emulator, data_dir=str(tmp_path / "rds")))
        container = Container(settings=s, mode=Mode.ALL)
        try:
            emulator = container.emulator()
            assert emulator.config.data_plane == "json"
            assert emulator.config.data_address == address
            assert (tmp_path / "rds" / "nvme-exports.json").exists()
        finally:
            container.shutdown_resources()
