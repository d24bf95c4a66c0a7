"""
The REST client over real HTTPS on loopback (the emulator's web server): TLS verification,
credentials, error bodies, and which failures the backend retries.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Iterator

import attrs
import pytest

from rds_csi.adapters.routeros_rest import (
    LoginRefused,
    RestSettings,
    RestUnavailable,
    RouterOsRestBackend,
    TlsRefused,
    read_password_file,
)
from rds_csi.adapters.routeros_rest.errors import RestRefusal
from rds_csi.adapters.routeros_rest.http import RestClient, RestPath
from rds_csi.domain import BackendUnavailable, MalformedOutput, Size
from rds_csi.domain.size import TIB
from rds_csi.emulator import Emulator, EmulatorConfig
from rds_csi.emulator.logins import LoginLimit
from rds_csi.entrypoints.rest_wiring import open_rest_backend


@pytest.fixture
def emulator(tmp_path: pathlib.Path) -> Iterator[Emulator]:
    config = EmulatorConfig(
        data_dir=tmp_path / "rds", pool_size=Size(TIB), rest_listen=("127.0.0.1", 0)
    )
    with Emulator(config) as emu:
        yield emu


@pytest.fixture
def settings(emulator: Emulator, tmp_path: pathlib.Path) -> RestSettings:
    files = emulator.provision_rest_client(tmp_path / "client")
    return RestSettings(
        url=files.url,
        user=files.user,
        password=read_password_file(files.password_file),
        ca_file=files.ca_file,
        base_path="/storage-pool/unit",
        read_timeout=5.0,
    )


@pytest.fixture
def opened() -> Iterator[list[RestClient | RouterOsRestBackend]]:
    """Everything a test opens, closed after it (pooled sockets would outlive the test)."""
    things: list[RestClient | RouterOsRestBackend] = []
    yield things
    for thing in things:
        thing.close()


def test_the_emulators_certificate_verifies_against_its_ca_file(
    settings: RestSettings, opened: list[RestClient | RouterOsRestBackend]
) -> None:
    client = RestClient(settings)
    opened.append(client)
    reply = client.request("health", "GET", RestPath("system/resource"))
    assert isinstance(reply.doc, dict)
    assert reply.doc["version"].startswith("7.")


def test_an_unknown_certificate_is_refused_and_never_retried(
    settings: RestSettings, opened: list[RestClient | RouterOsRestBackend]
) -> None:
    waits: list[float] = []
    backend = open_rest_backend(attrs.evolve(settings, ca_file=None), sleep=waits.append)
    opened.append(backend)
    with pytest.raises(TlsRefused, match="rds-ca-file"):
        backend.capacity()
    assert waits == []


def test_skipping_verification_works_and_says_so_loudly(
    settings: RestSettings,
    caplog: pytest.LogCaptureFixture,
    opened: list[RestClient | RouterOsRestBackend],
) -> None:
    with caplog.at_level(logging.WARNING):
        client = RestClient(attrs.evolve(settings, ca_file=None, insecure_skip_verify=True))
    opened.append(client)
    assert "verification is OFF" in caplog.text
    client.request("health", "GET", RestPath("system/resource"))


def test_a_wrong_password_is_login_refused_and_never_logged(
    settings: RestSettings,
    caplog: pytest.LogCaptureFixture,
    opened: list[RestClient | RouterOsRestBackend],
) -> None:
    wrong = attrs.evolve(settings, password="not-the-password-xyz")
    waits: list[float] = []
    backend = open_rest_backend(wrong, sleep=waits.append)
    opened.append(backend)
    with caplog.at_level(logging.DEBUG), pytest.raises(LoginRefused) as caught:
        backend.capacity()
    assert isinstance(caught.value, BackendUnavailable)
    assert waits == []
    assert "not-the-password-xyz" not in caplog.text
    assert settings.password not in caplog.text


def test_an_error_body_carries_routeros_words(
    settings: RestSettings, opened: list[RestClient | RouterOsRestBackend]
) -> None:
    client = RestClient(settings)
    opened.append(client)
    body = {"type": "file", "file-path": "elsewhere/x.img", "file-size": "1", "slot": "x"}
    with pytest.raises(RestRefusal) as caught:
        client.request("create", "PUT", RestPath("disk"), body=body)
    assert caught.value.status == 400
    assert "file must be on a mounted disk" in caught.value.detail


def test_a_repeated_delete_is_404(
    settings: RestSettings, emulator: Emulator, opened: list[RestClient | RouterOsRestBackend]
) -> None:
    client = RestClient(settings)
    opened.append(client)
    body = {"type": "file", "file-path": "storage-pool/u/x.img", "file-size": "4096", "slot": "x"}
    made = client.request("create", "PUT", RestPath("disk"), body=body).doc
    assert isinstance(made, dict)
    assert made["file-size"] == "4096"  # raw bytes, as a string
    client.request("delete", "DELETE", RestPath("disk", made[".id"]))
    with pytest.raises(RestRefusal) as caught:
        client.request("delete", "DELETE", RestPath("disk", made[".id"]))
    assert caught.value.not_found
    assert emulator.state.by_slot("x") is None


def test_a_garbled_answer_is_malformed_with_the_raw_text(
    settings: RestSettings, emulator: Emulator, opened: list[RestClient | RouterOsRestBackend]
) -> None:
    client = RestClient(settings)
    opened.append(client)
    emulator.faults.garble_next(1, match="/disk print")
    with pytest.raises(MalformedOutput) as caught:
        client.request("list", "GET", RestPath("disk"))
    assert "\x00" in caught.value.raw


def test_an_rds_that_is_down_is_retried_then_unavailable(
    settings: RestSettings, emulator: Emulator, opened: list[RestClient | RouterOsRestBackend]
) -> None:
    waits: list[float] = []
    backend = open_rest_backend(settings, sleep=waits.append)
    opened.append(backend)
    emulator.stop()
    with pytest.raises(RestUnavailable, match="cannot connect"):
        backend.list_volumes()
    assert waits == [1.0, 2.0, 4.0, 8.0]


def test_wrong_passwords_lock_the_address_out_as_over_ssh(
    tmp_path: pathlib.Path, opened: list[RestClient | RouterOsRestBackend]
) -> None:
    config = EmulatorConfig(
        data_dir=tmp_path / "rds",
        pool_size=Size(TIB),
        rest_listen=("127.0.0.1", 0),
        login_limit=LoginLimit(failures=2, lockout=60.0),
    )
    with Emulator(config) as emulator:
        files = emulator.provision_rest_client(tmp_path / "client")
        right = RestSettings(
            url=files.url,
            user=files.user,
            password=read_password_file(files.password_file),
            ca_file=files.ca_file,
        )
        wrong = RestClient(attrs.evolve(right, password="guess"))
        good = RestClient(right)
        opened += [wrong, good]
        for _ in range(2):
            with pytest.raises(LoginRefused):
                wrong.request("health", "GET", RestPath("system/resource"))
        with pytest.raises(LoginRefused):  # the right password too, while locked out
            good.request("health", "GET", RestPath("system/resource"))
        assert emulator.stats.locked_out_logins == 1
