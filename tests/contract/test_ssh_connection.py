"""The SSH adapter's connection: host keys, key files, login, one connection, metrics."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import attrs
import paramiko
import pytest

from rds_csi.adapters.routeros_ssh import SshSettings
from rds_csi.adapters.routeros_ssh.connection import HostKeyRejected, load_private_key
from rds_csi.domain import InvalidArgument
from rds_csi.emulator import ClientFiles, Emulator
from rds_csi.emulator.assumptions import NOT_ENOUGH_SPACE
from rds_csi.entrypoints.container import open_ssh_backend

from .conftest import EMULATOR_BASE, start_emulator


@pytest.fixture
def emulator(tmp_path: pathlib.Path) -> Iterator[Emulator]:
    emu = start_emulator(tmp_path)
    yield emu
    emu.stop()


@pytest.fixture
def client(emulator: Emulator, tmp_path: pathlib.Path) -> ClientFiles:
    return emulator.provision_client(tmp_path / "client")


def _settings(client: ClientFiles, **overrides: Any) -> SshSettings:
    settings = SshSettings.for_emulator(
        host=client.host,
        port=client.port,
        user=client.user,
        key_file=client.key_file,
        known_hosts_file=client.known_hosts_file,
        base_path=EMULATOR_BASE,
    )
    return attrs.evolve(settings, **overrides)


class RecordingMetrics:
    def __init__(self) -> None:
        self.commands: list[tuple[str, str]] = []

    def backend_command(self, operation: str, seconds: float, outcome: str) -> None:
        assert seconds >= 0
        self.commands.append((operation, outcome))

    def nvme_connect(self, outcome: str) -> None:
        raise AssertionError(outcome)

    def mount_recovery(self, outcome: str) -> None:
        raise AssertionError(outcome)

    def rpc_started(self, method: str) -> None:
        raise AssertionError(method)

    def rpc_finished(self, method: str, code: str, seconds: float) -> None:
        raise AssertionError(method, code, seconds)

    def circuit_state(self, state: str) -> None:
        raise AssertionError(state)

    def copy_started(self, kind: str) -> None:
        raise AssertionError(kind)

    def copy_finished(self, kind: str, seconds: float, outcome: str) -> None:
        raise AssertionError(kind, seconds, outcome)


class TestHostKeys:
    def test_an_unknown_host_is_refused_and_never_retried(
        self, client: ClientFiles, tmp_path: pathlib.Path
    ) -> None:
        empty = tmp_path / "empty_known_hosts"
        empty.write_text("")
        waits: list[float] = []
        backend = open_ssh_backend(_settings(client, known_hosts_file=empty), sleep=waits.append)
        with pytest.raises(HostKeyRejected, match="is not in"):
            backend.capacity()
        assert waits == []

    def test_a_changed_host_key_is_refused(
        self, client: ClientFiles, tmp_path: pathlib.Path
    ) -> None:
        other = paramiko.ECDSAKey.generate()
        forged = tmp_path / "forged_known_hosts"
        forged.write_text(
            f"[{client.host}]:{client.port} {other.get_name()} {other.get_base64()}\n"
        )
        backend = open_ssh_backend(_settings(client, known_hosts_file=forged))
        with pytest.raises(HostKeyRejected, match="does not match"):
            backend.check_health()

    def test_verification_can_be_switched_off_explicitly(
        self, client: ClientFiles, tmp_path: pathlib.Path
    ) -> None:
        backend = open_ssh_backend(
            _settings(client, known_hosts_file=tmp_path / "missing", insecure_ignore_host_key=True)
        )
        backend.check_health()
        backend.close()

    def test_a_missing_known_hosts_file_is_a_setting_error(
        self, client: ClientFiles, tmp_path: pathlib.Path
    ) -> None:
        with pytest.raises(InvalidArgument, match="known_hosts"):
            open_ssh_backend(_settings(client, known_hosts_file=tmp_path / "missing"))


class TestKeyFile:
    @pytest.mark.parametrize("mode", [0o644, 0o604, 0o660, 0o620, 0o610, 0o601])
    def test_a_key_others_may_read_or_the_group_may_change_is_refused(
        self, client: ClientFiles, mode: int
    ) -> None:
        client.key_file.chmod(mode)
        with pytest.raises(InvalidArgument, match="others may access it or the group"):
            open_ssh_backend(_settings(client))

    @pytest.mark.parametrize("mode", [0o400, 0o600, 0o440, 0o640])
    def test_owner_only_and_kubelet_fsgroup_keys_load(self, client: ClientFiles, mode: int) -> None:
        client.key_file.chmod(mode)
        assert load_private_key(client.key_file).get_name() == "ecdsa-sha2-nistp256"

    def test_a_file_that_is_not_a_key_is_refused(self, tmp_path: pathlib.Path) -> None:
        junk = tmp_path / "junk"
        junk.write_text("not a key\n")
        junk.chmod(0o600)
        with pytest.raises(InvalidArgument, match="not a usable private key"):
            load_private_key(junk)


class TestOneConnection:
    def test_every_command_reuses_one_connection(
        self, client: ClientFiles, emulator: Emulator
    ) -> None:
        backend = open_ssh_backend(_settings(client))
        for _ in range(5):
            backend.check_health()
            backend.capacity()
        assert backend.counters.snapshot()["handshakes"] == 1
        assert emulator.stats.connections == 1
        assert emulator.stats.commands == 10
        backend.close()

    def test_the_per_command_baseline_connects_every_time(
        self, client: ClientFiles, emulator: Emulator
    ) -> None:
        backend = open_ssh_backend(_settings(client, persistent=False))
        for _ in range(3):
            backend.capacity()
        assert backend.counters.snapshot() == {
            "handshakes": 3,
            "round_trips": 3,
            "stale_reconnects": 0,
        }
        assert emulator.stats.connections == 3

    def test_login_options_are_sent_and_stripped_by_the_rds(self, client: ClientFiles) -> None:
        backend = open_ssh_backend(_settings(client, login_options="ct200w"))
        backend.check_health()
        backend.close()

    def test_every_command_is_reported_to_metrics(
        self, client: ClientFiles, emulator: Emulator
    ) -> None:
        metrics = RecordingMetrics()
        backend = open_ssh_backend(_settings(client), metrics=metrics)
        backend.capacity()
        emulator.faults.fail_next(1, NOT_ENOUGH_SPACE, match="print detail")
        with pytest.raises(Exception, match="not enough space"):
            backend.capacity()
        emulator.faults.garble_next(1)
        with pytest.raises(Exception, match="unparseable"):
            backend.capacity()
        backend.check_health()
        assert metrics.commands == [
            ("capacity", "ok"),
            ("capacity", "refused"),
            ("capacity", "malformed"),
            ("health", "ok"),
        ]
        backend.close()
