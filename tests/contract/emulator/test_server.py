"""The emulator as an SSH server: logins, exec channels, state on disk, exports, concurrency."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import threading

import paramiko
import pytest

from rds_csi.domain import Size
from rds_csi.emulator import Emulator, EmulatorConfig, ExportedDisk
from rds_csi.emulator.assumptions import NOT_ENOUGH_SPACE

from .conftest import IMAGE, PASSWORD, VID, Connect, add_line, run


GIB = 1024**3


class TestLogin:
    def test_the_password_and_the_authorized_key_are_accepted(
        self, connect: Connect, client_key: paramiko.PKey, emulator: Emulator
    ) -> None:
        assert run(connect(), ':put "hello"') == "hello\r\n"
        assert run(connect(key=client_key), ':put "hello"') == "hello\r\n"
        assert emulator.stats.logins == 2

    def test_routeros_login_options_are_stripped_from_the_user(self, connect: Connect) -> None:
        assert run(connect(user="admin+ct511w4098h"), ":put 1") == "1\r\n"

    @pytest.mark.parametrize(
        ("user", "password"),
        [("admin", "wrong"), ("root", PASSWORD), ("admin+", "wrong"), ("", PASSWORD)],
    )
    def test_wrong_credentials_are_refused(
        self, connect: Connect, emulator: Emulator, user: str, password: str
    ) -> None:
        with pytest.raises(paramiko.AuthenticationException):
            connect(user=user, password=password)
        assert emulator.stats.logins == 0
        assert emulator.stats.failed_logins >= 1

    def test_a_key_that_is_not_authorized_is_refused(self, connect: Connect) -> None:
        with pytest.raises(paramiko.AuthenticationException):
            connect(key=paramiko.ECDSAKey.generate())

    def test_refusing_logins_can_be_switched_on_and_off(
        self, connect: Connect, emulator: Emulator, client_key: paramiko.PKey
    ) -> None:
        emulator.faults.refuse_logins()
        with pytest.raises(paramiko.AuthenticationException):
            connect()
        with pytest.raises(paramiko.AuthenticationException):
            connect(key=client_key)
        emulator.faults.refuse_logins(refuse=False)
        assert run(connect(), ":put 1") == "1\r\n"


class TestChannels:
    def test_a_shell_is_refused_only_exec_is_served(self, connect: Connect) -> None:
        transport = connect().get_transport()
        assert transport is not None
        channel = transport.open_session()
        with pytest.raises(paramiko.SSHException):
            channel.invoke_shell()

    def test_keepalive_requests_are_refused_as_routeros_does(self, connect: Connect) -> None:
        transport = connect().get_transport()
        assert transport is not None
        assert transport.global_request("keepalive@openssh.com", wait=True) is None
        assert transport.is_active()

    def test_many_sessions_and_channels_run_at_once(
        self, connect: Connect, emulator: Emulator
    ) -> None:
        emulator.latency.command = 0.05
        clients = [connect() for _ in range(6)]
        answers: list[str] = []
        lock = threading.Lock()

        def ask(client: paramiko.SSHClient) -> None:
            answer = run(client, "/disk print count-only")
            with lock:
                answers.append(answer)

        threads = [threading.Thread(target=ask, args=(c,)) for c in clients for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == ["1\r\n"] * 30
        assert emulator.stats.max_channels_open > 1
        assert emulator.stats.connections == 6

    def test_the_width_login_option_sets_the_wrap_width(self, connect: Connect) -> None:
        run(connect(), add_line())
        narrow = run(connect(), "/disk print detail").split("\r\n")
        wide = run(connect(user="admin+ct200w"), "/disk print detail").split("\r\n")
        assert max(map(len, narrow)) <= 80
        assert 80 < max(map(len, wide)) <= 200
        assert len(wide) < len(narrow)

    def test_emulated_network_latency_keeps_the_bytes_intact(
        self, connect: Connect, emulator: Emulator
    ) -> None:
        emulator.latency.rtt = 0.01
        emulator.latency.rtt_jitter = 0.01
        client = connect()
        run(client, add_line())
        text = run(client, '/disk print detail where slot~"^pvc-"')
        assert f'slot="{VID}"' in text.replace("\r\n      ", " ")
        assert run(client, ":put [/disk print count-only]").endswith("\r\n")


class TestState:
    def test_images_are_sparse_files_of_the_disk_size(
        self, connect: Connect, emulator: Emulator
    ) -> None:
        assert run(connect(), add_line("10G")) == ""
        image = emulator.state.data_dir / IMAGE
        st = image.stat()
        assert st.st_size == 10 * GIB
        assert st.st_blocks * 512 < 1024**2
        assert emulator.state.free() == 90 * GIB

    def test_a_disk_that_does_not_fit_is_refused_and_leaves_nothing(
        self, connect: Connect, emulator: Emulator
    ) -> None:
        assert run(connect(), add_line("101G")) == NOT_ENOUGH_SPACE + "\r\n"
        assert emulator.state.disks() == []
        assert not (emulator.state.data_dir / IMAGE).exists()

    def test_state_survives_a_restart(self, connect: Connect, emulator: Emulator) -> None:
        run(connect(), add_line("3G"))
        known = emulator.known_hosts_line()
        emulator.stop()
        config = EmulatorConfig(
            data_dir=emulator.config.data_dir, pool_size=Size.from_quantity("100Gi")
        )
        with Emulator(config) as again:
            (disk,) = again.state.disks()
            assert disk.slot == VID
            assert again.state.disk_size(disk) == 3 * GIB
            assert again.state.free() == 97 * GIB
            assert again.known_hosts_line().split(" ", 1)[1] == known.split(" ", 1)[1]
            exports = json.loads((again.config.data_dir / "nvme-exports.json").read_text())
            assert list(exports["exports"]) == [f"nqn.2000-02.com.mikrotik:{VID}"]

    def test_removing_a_disk_keeps_its_file_until_the_file_is_removed(
        self, connect: Connect, emulator: Emulator
    ) -> None:
        client = connect()
        run(client, add_line())
        image = emulator.state.data_dir / IMAGE
        assert run(client, f'/file remove [find name="{IMAGE}"]') == (
            "failure: file is in use by a disk\r\n"
        )
        assert run(client, f'/disk remove [find slot="{VID}"]') == ""
        assert image.exists()
        assert run(client, f'/file remove [find where name="{IMAGE}"]') == ""
        assert not image.exists()
        assert run(client, f'/file remove [find where name="{IMAGE}"]') == ""  # empty find

    @pytest.mark.parametrize(
        ("path", "error"),
        [
            ("storage-pool/../escape.img", "invalid value for argument file-path"),
            ("disks.json", "failure: file must be on a mounted disk"),
            ("other-pool/x.img", "failure: file must be on a mounted disk"),
        ],
    )
    def test_file_paths_stay_inside_the_pool(
        self, connect: Connect, emulator: Emulator, path: str, error: str
    ) -> None:
        assert run(connect(), add_line(path=path)) == error + "\r\n"
        assert emulator.state.disks() == []


class TestExports:
    def _exports(self, emulator: Emulator) -> dict[str, dict[str, object]]:
        doc = json.loads((emulator.state.data_dir / "nvme-exports.json").read_text())
        assert doc["version"] == 1
        exports: dict[str, dict[str, object]] = doc["exports"]
        return exports

    def test_the_exports_file_follows_add_resize_unexport_and_remove(
        self, connect: Connect, emulator: Emulator
    ) -> None:
        client = connect()
        nqn = f"nqn.2000-02.com.mikrotik:{VID}"
        run(client, add_line("1G"))
        image = str(emulator.state.data_dir / IMAGE)
        assert self._exports(emulator) == {
            nqn: {"slot": VID, "image": image, "port": 4420, "size": GIB}
        }
        assert run(client, f'/disk set [find slot="{VID}"] file-size=2G') == ""
        assert self._exports(emulator)[nqn]["size"] == 2 * GIB
        run(client, f'/disk set [find slot="{VID}"] nvme-tcp-export=no')
        assert self._exports(emulator) == {}
        run(client, f'/disk set [find slot="{VID}"] nvme-tcp-export=yes')
        assert list(self._exports(emulator)) == [nqn]
        run(client, f'/disk remove [find slot="{VID}"]')
        assert self._exports(emulator) == {}

    def test_the_data_plane_is_pluggable(self, tmp_path: pathlib.Path) -> None:
        calls: list[tuple[str, ExportedDisk]] = []
        closed: list[bool] = []

        class Recording:
            def export(self, disk: ExportedDisk) -> None:
                calls.append(("export", disk))

            def unexport(self, disk: ExportedDisk) -> None:
                calls.append(("unexport", disk))

            def resized(self, disk: ExportedDisk) -> None:
                calls.append(("resized", disk))

            def close(self) -> None:
                closed.append(True)

        config = EmulatorConfig(data_dir=tmp_path, pool_size=Size.from_quantity("10Gi"))
        emulator = Emulator(config, data_plane=Recording())
        emulator.console.run(add_line("1G"))
        emulator.console.run(f'/disk set [find slot="{VID}"] file-size=2G')
        emulator.console.run(f'/disk remove [find slot="{VID}"]')
        assert [(kind, d.size) for kind, d in calls] == [
            ("export", GIB),
            ("resized", 2 * GIB),
            ("unexport", 2 * GIB),
        ]
        assert calls[0][1].image == tmp_path.resolve() / IMAGE
        assert not (tmp_path / "nvme-exports.json").exists()
        assert closed == []
        emulator.close()
        assert closed == [True]


def test_the_command_line_starts_and_stops_an_emulator(tmp_path: pathlib.Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    with subprocess.Popen(
        [sys.executable, "-m", "rds_csi.emulator", "--listen", "127.0.0.1:0",
         "--data-dir", str(tmp_path / "data"), "--pool-size", "5Gi",
         "--password-file", str(secret), "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    ) as proc:  # fmt: skip
        _drive(proc)


def _drive(proc: subprocess.Popen[str]) -> None:
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("RDS emulator listening on 127.0.0.1:")
        port = int(first.rsplit(":", 1)[1])
        known = proc.stdout.readline()
        assert known.startswith(f"known_hosts: [127.0.0.1]:{port} ecdsa-sha2-nistp256 ")
        entry = paramiko.hostkeys.HostKeyEntry.from_line(known.removeprefix("known_hosts: "))
        assert entry is not None
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.get_host_keys().add(f"[127.0.0.1]:{port}", entry.key.get_name(), entry.key)
        client.connect("127.0.0.1", port, username="admin", password=PASSWORD,
                       look_for_keys=False, allow_agent=False, timeout=10)  # fmt: skip
        text = run(client, '/disk print detail where mount-point="storage-pool"')
        assert "size=5 368 709 120" in text
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
