"""
`rds-csi doctor controller` against the emulator over real SSH, as an operator runs it: all OK
on a good setup; FAIL lines with their fix and exit 1 for a stopped RDS, a wrong host key and
a key others can read.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import paramiko
import pytest

from rds_csi.domain import Size
from rds_csi.emulator import Emulator, EmulatorConfig, public_key_line
from rds_csi.emulator.server import ClientFiles


@pytest.fixture
def emulator(tmp_path: pathlib.Path) -> Iterator[Emulator]:
    with Emulator(
        EmulatorConfig(data_dir=tmp_path / "rds", pool_size=Size.from_quantity("100Gi"))
    ) as emu:
        yield emu


@pytest.fixture
def client(emulator: Emulator, tmp_path: pathlib.Path) -> ClientFiles:
    return emulator.provision_client(tmp_path / "client")


def doctor(client: ClientFiles, *extra: str) -> tuple[int, dict[str, dict[str, str]], str]:
    """Run the doctor; (exit status, checks by name, stdout)."""
    argv = [
        sys.executable, "-m", "rds_csi", "doctor", "controller", "--backend", "ssh",
        "--rds-address", client.host, "--rds-port", str(client.port),
        "--rds-user", client.user, "--rds-ssh-key", str(client.key_file),
        "--rds-known-hosts", str(client.known_hosts_file), *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("RDS_CSI_")}
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)
    as_json = subprocess.run(
        [*argv, "--json"], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert as_json.returncode == plain.returncode, as_json.stderr
    checks = {c["name"]: c for c in json.loads(as_json.stdout)["checks"]}
    return plain.returncode, checks, plain.stdout


def test_a_good_setup_passes(client: ClientFiles) -> None:
    code, checks, text = doctor(client)
    assert code == 0, text
    assert not [c for c in checks.values() if c["status"] == "FAIL"], text
    for name in ("ssh key", "known_hosts", "tcp", "ssh login", "pool", "free space"):
        assert checks[name]["status"] == "OK", text
    assert "100Gi" in checks["pool"]["detail"]
    assert checks["round trip"]["detail"].startswith("median ")
    assert text.splitlines()[0].startswith("OK    configuration: backend ssh")


def test_a_stopped_rds_fails_at_tcp_and_skips_what_needs_it(
    emulator: Emulator, client: ClientFiles
) -> None:
    emulator.close()
    code, checks, text = doctor(client)
    assert code == 1
    assert checks["tcp"]["status"] == "FAIL"
    assert "--rds-address" in checks["tcp"]["fix"]
    assert f"FAIL  tcp: cannot connect to {client.host}:{client.port}" in text
    assert "      fix: check --rds-address" in text
    assert checks["ssh login"]["status"] == "SKIP"
    assert checks["pool"]["status"] == "SKIP"


def test_a_wrong_host_key_fails_the_login_with_the_fix(client: ClientFiles) -> None:
    other = paramiko.ECDSAKey.generate()
    name = client.known_hosts_file.read_text().split()[0]
    client.known_hosts_file.write_text(f"{name} {public_key_line(other)}\n")
    code, checks, text = doctor(client)
    assert code == 1
    assert checks["ssh login"]["status"] == "FAIL"
    assert "does not match" in checks["ssh login"]["detail"]
    assert "ssh-keyscan" in checks["ssh login"]["fix"]
    assert "FAIL  ssh login:" in text


def test_a_world_readable_key_fails_with_the_fix(client: ClientFiles) -> None:
    client.key_file.chmod(0o644)
    code, checks, text = doctor(client)
    assert code == 1
    assert checks["ssh key"]["status"] == "FAIL"
    assert "0644" in checks["ssh key"]["detail"]
    assert f"chmod 0600 {client.key_file}" in checks["ssh key"]["fix"]
    assert checks["ssh login"]["status"] == "SKIP"
    assert "FAIL  ssh key:" in text


def test_an_unknown_host_fails_known_hosts(client: ClientFiles) -> None:
    client.known_hosts_file.write_text("")
    code, checks, _ = doctor(client)
    assert code == 1
    assert checks["known_hosts"]["status"] == "FAIL"
    assert "has no entry for" in checks["known_hosts"]["detail"]


def test_a_bad_setting_is_exit_2_naming_it(client: ClientFiles) -> None:
    code, checks, _ = doctor(client, "--rds-port", "99999")
    assert code == 2
    assert "--rds-port" in checks["configuration"]["detail"]
