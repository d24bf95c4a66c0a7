"""
The emulator's login defences over real SSH on loopback: no empty password, and a per-address
rate limit that locks a guesser out (the right password included) for a while.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import paramiko
import pytest

from rds_csi.domain import Size
from rds_csi.emulator import Emulator, EmulatorConfig, EmulatorUser, public_key_line
from rds_csi.emulator.logins import LoginGuard, LoginLimit

from .conftest import PASSWORD, run


def _connect(emulator: Emulator, **credentials: object) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    host, port = emulator.address
    client.get_host_keys().add(f"[{host}]:{port}", emulator.host_key.get_name(), emulator.host_key)
    try:
        client.connect(
            host,
            port,
            username="admin",
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
            **credentials,  # type: ignore[arg-type]
        )
    except BaseException:
        client.close()
        raise
    return client


def _emulator(
    tmp_path: pathlib.Path, limit: LoginLimit, key: paramiko.PKey | None = None
) -> Emulator:
    keys = [public_key_line(key)] if key is not None else []
    return Emulator(
        EmulatorConfig(
            data_dir=tmp_path / "rds",
            pool_size=Size.from_quantity("10Gi", field="pool size"),
            users=(EmulatorUser("admin", PASSWORD, keys),),
            login_limit=limit,
        )
    )


class TestRateLimit:
    def test_a_guesser_is_locked_out_even_with_the_right_password(
        self, tmp_path: pathlib.Path, client_key: paramiko.PKey
    ) -> None:
        with _emulator(tmp_path, LoginLimit(failures=3, lockout=60), client_key) as emulator:
            for _ in range(3):
                with pytest.raises(paramiko.AuthenticationException):
                    _connect(emulator, password="guess")
            with pytest.raises(paramiko.AuthenticationException):
                _connect(emulator, password=PASSWORD)
            with pytest.raises(paramiko.AuthenticationException):
                _connect(emulator, pkey=client_key)
            assert emulator.stats.logins == 0
            assert emulator.stats.failed_logins == 3
            assert emulator.stats.locked_out_logins >= 2

    def test_the_lockout_ends_and_fewer_failures_never_lock(self, tmp_path: pathlib.Path) -> None:
        with _emulator(tmp_path, LoginLimit(failures=2, lockout=0.5)) as emulator:
            with pytest.raises(paramiko.AuthenticationException):
                _connect(emulator, password="guess")
            client = _connect(emulator, password=PASSWORD)  # one failure is not enough
            assert run(client, ":put 1") == "1\r\n"
            client.close()
            for _ in range(2):
                with pytest.raises(paramiko.AuthenticationException):
                    _connect(emulator, password="guess")
            with pytest.raises(paramiko.AuthenticationException):
                _connect(emulator, password=PASSWORD)
            time.sleep(0.6)
            client = _connect(emulator, password=PASSWORD)
            assert run(client, ":put 2") == "2\r\n"
            client.close()

    def test_keys_that_are_not_authorized_do_not_count(
        self, tmp_path: pathlib.Path, client_key: paramiko.PKey
    ) -> None:
        # An agent offers every key it holds; none of them is a guess.
        with _emulator(tmp_path, LoginLimit(failures=2), client_key) as emulator:
            for _ in range(4):
                with pytest.raises(paramiko.AuthenticationException):
                    _connect(emulator, pkey=paramiko.ECDSAKey.generate())
            _connect(emulator, pkey=client_key).close()

    def test_injected_refusals_do_not_count(
        self, tmp_path: pathlib.Path, client_key: paramiko.PKey
    ) -> None:
        # The fault switch simulates an RDS refusing a good client: the client guessed nothing.
        with _emulator(tmp_path, LoginLimit(failures=1), client_key) as emulator:
            emulator.faults.refuse_logins()
            for _ in range(3):
                with pytest.raises(paramiko.AuthenticationException):
                    _connect(emulator, pkey=client_key)
            emulator.faults.refuse_logins(refuse=False)
            _connect(emulator, pkey=client_key).close()


class TestGuard:
    def test_each_address_is_counted_apart_and_old_failures_expire(self) -> None:
        now = [0.0]
        guard = LoginGuard(LoginLimit(failures=2, window=10, lockout=30), clock=lambda: now[0])
        guard.failed("192.0.2.1")
        now[0] = 11.0  # the first failure left the window
        guard.failed("192.0.2.1")
        guard.failed("192.0.2.2")
        assert guard.allowed("192.0.2.1")
        assert guard.allowed("192.0.2.2")
        guard.failed("192.0.2.1")
        assert not guard.allowed("192.0.2.1")
        assert guard.allowed("192.0.2.2")
        now[0] = 41.0
        assert guard.allowed("192.0.2.1")

    def test_zero_failures_turns_the_limit_off(self) -> None:
        guard = LoginGuard(LoginLimit(failures=0))
        for _ in range(100):
            guard.failed("192.0.2.1")
        assert guard.allowed("192.0.2.1")


class TestEmptyPassword:
    def test_an_empty_password_is_refused_in_the_config(self) -> None:
        with pytest.raises(ValueError, match="password is empty"):
            EmulatorUser("admin", "")

    @pytest.mark.parametrize("source", ["flag", "file"])
    def test_the_command_line_refuses_an_empty_password_at_start(
        self, tmp_path: pathlib.Path, source: str
    ) -> None:
        empty = tmp_path / "password"
        empty.write_text("\n")
        given = ["--password", ""] if source == "flag" else ["--password-file", str(empty)]
        result = subprocess.run(
            [sys.executable, "-m", "rds_csi.emulator", "--listen", "127.0.0.1:0",
             "--data-dir", str(tmp_path / "data"), "--pool-size", "1G", *given],
            capture_output=True,
            text=True,
            timeout=60,
            env=os.environ.copy(),
            check=False,
        )  # fmt: skip
        assert result.returncode == 2
        assert "empty password" in result.stderr
        assert ("--password-file" in result.stderr) == (source == "file")
        assert "RDS emulator listening" not in result.stdout
