"""
Contract fixtures: each port's suite runs against every implementation listed here.

A new adapter is done when it passes the suite: add a ``pytest.param`` to ``BACKENDS`` with
an id and a marker, and a branch in ``_open_backend`` that yields it.

Capabilities: ``harness.emulator`` is set when the backend talks to the RDS emulator (its fault
injection is available), ``harness.fake`` when it is the in-memory RDS (its ``FaultPlan``).
Tests that need one skip on the others.
"""

from __future__ import annotations

import os
import pathlib
import uuid
from collections.abc import Callable, Iterator, Mapping

import attrs
import pytest

from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.adapters.resilience import BreakingBackend
from rds_csi.adapters.routeros_rest import RestSettings, RouterOsRestBackend, read_password_file
from rds_csi.adapters.routeros_ssh import RouterOsSshBackend, SshSettings
from rds_csi.application.ports import StorageBackend
from rds_csi.domain import DiskPath, Nqn, Size, Volume, VolumeId
from rds_csi.domain.size import GIB, TIB
from rds_csi.emulator import DIALECTS, Dialect, Emulator, EmulatorConfig
from rds_csi.entrypoints.container import open_ssh_backend
from rds_csi.entrypoints.rest_wiring import emulator_rest_settings, open_rest_backend


REAL_RDS_VARS = ("RDS_ADDRESS", "RDS_USER", "RDS_SSH_KEY")
REAL_RDS_REST_VARS = ("RDS_REST_URL", "RDS_USER", "RDS_REST_PASSWORD_FILE")


def real_rds_rest_settings(env: Mapping[str, str]) -> RestSettings:
    """
    A real RDS over REST: ``RDS_REST_URL`` (https://host[:port]), ``RDS_USER``,
    ``RDS_REST_PASSWORD_FILE``, and optionally ``RDS_CA_FILE``, ``RDS_INSECURE_SKIP_VERIFY=1``,
    ``RDS_BASE_PATH``, ``RDS_POOL``.
    """
    ca = env.get("RDS_CA_FILE")
    settings = RestSettings(
        url=env["RDS_REST_URL"],
        user=env["RDS_USER"],
        password=read_password_file(pathlib.Path(env["RDS_REST_PASSWORD_FILE"])),
        ca_file=pathlib.Path(ca) if ca else None,
        insecure_skip_verify=env.get("RDS_INSECURE_SKIP_VERIFY") == "1",
        pool=env.get("RDS_POOL") or None,
    )
    base_path = env.get("RDS_BASE_PATH")
    return attrs.evolve(settings, base_path=base_path) if base_path else settings


def real_rds_settings(env: Mapping[str, str]) -> SshSettings:
    """
    The test suite's own variables for a real RDS (the driver reads only ``RDS_CSI_*``):
    ``RDS_ADDRESS`` (host or host:port), ``RDS_USER``, ``RDS_SSH_KEY``, and optionally
    ``RDS_SSH_PORT``, ``RDS_BASE_PATH``, ``RDS_POOL``, ``RDS_KNOWN_HOSTS``,
    ``RDS_INSECURE_IGNORE_HOST_KEY=1``.
    """
    address = env["RDS_ADDRESS"]
    port = int(env.get("RDS_SSH_PORT", "22"))
    host, sep, maybe_port = address.rpartition(":")
    if sep and maybe_port.isdigit() and ":" not in host:
        address, port = host, int(maybe_port)
    known = env.get("RDS_KNOWN_HOSTS")
    settings = SshSettings(
        address=address,
        user=env["RDS_USER"],
        key_file=pathlib.Path(env["RDS_SSH_KEY"]),
        port=port,
        known_hosts_file=pathlib.Path(known) if known else None,
        insecure_ignore_host_key=env.get("RDS_INSECURE_IGNORE_HOST_KEY") == "1",
        pool=env.get("RDS_POOL") or None,
    )
    base_path = env.get("RDS_BASE_PATH")
    return attrs.evolve(settings, base_path=base_path) if base_path else settings


EMULATOR_BASE = "/storage-pool/contract"


@attrs.define
class BackendHarness:
    """
    One backend under test, plus what the suite needs to know about it.

    Attributes:
        base_path: Where this run puts its disk files.
        exact_accounting: Free space drops by exactly the size of each disk (the in-memory
            pool does, and so does the emulator; a real Btrfs pool with sparse files may not).
        made: Volumes the test created, deleted at teardown even when the test fails.
        emulator: The emulator behind the backend, if any (fault injection, state).
        fake: The in-memory RDS, if that is the backend (its FaultPlan).
        waits: Backoff waits the backend asked for (tests never sleep them).
        control_plane: ``ssh`` or ``rest`` for the RouterOS adapters, empty otherwise.
        variant: Opens another backend on the same RDS with settings overridden
            (``command_timeout``, ``retry_attempts``), for the emulator kinds.
    """

    backend: StorageBackend
    base_path: str
    exact_accounting: bool
    made: list[VolumeId] = attrs.field(factory=list)
    emulator: Emulator | None = None
    fake: InMemoryRds | None = None
    waits: list[float] = attrs.field(factory=list)
    control_plane: str = ""
    variant: Callable[..., RouterOsSshBackend | RouterOsRestBackend] | None = None

    def volume(self, size: int = GIB) -> Volume:
        vid = VolumeId.from_name(f"contract-{uuid.uuid4()}")
        self.made.append(vid)
        return Volume(vid, Size(size), DiskPath(self.base_path, vid), Nqn.for_volume(vid))

    @property
    def ssh(self) -> RouterOsSshBackend:
        assert isinstance(self.backend, RouterOsSshBackend)
        return self.backend

    @property
    def routeros(self) -> RouterOsSshBackend | RouterOsRestBackend:
        """The RouterOS adapter under test, over either control plane."""
        assert isinstance(self.backend, RouterOsSshBackend | RouterOsRestBackend)
        return self.backend


BACKENDS = [
    pytest.param("in-memory", id="in-memory"),
    pytest.param("in-memory+breaker", id="in-memory+breaker"),
    # the emulator under every dialect: the adapter must hold whichever way RouterOS's
    # unverified behaviours go (rds_csi.emulator.dialect)
    *(
        pytest.param(f"emulator-ssh:{name}", id=f"emulator-ssh-{name}", marks=pytest.mark.emulator)
        for name in DIALECTS
    ),
    pytest.param("emulator-rest", id="emulator-rest", marks=pytest.mark.emulator),
    pytest.param("real", id="real-rds", marks=pytest.mark.real_rds),
    pytest.param("real-rest", id="real-rds-rest", marks=pytest.mark.real_rds),
]


POOL = Size(TIB)


def start_emulator(
    root: pathlib.Path,
    pool_size: Size = POOL,
    dialect: Dialect | None = None,
    *,
    rest: bool = False,
) -> Emulator:
    config = EmulatorConfig(
        data_dir=root / "rds",
        pool_size=pool_size,
        rest_listen=("127.0.0.1", 0) if rest else None,
    )
    emulator = Emulator(attrs.evolve(config, dialect=dialect) if dialect else config)
    emulator.start()
    return emulator


def emulator_backend(
    emulator: Emulator,
    root: pathlib.Path,
    waits: list[float],
    **overrides: object,
) -> RouterOsSshBackend:
    client = emulator.provision_client(root / "client")
    settings = SshSettings.for_emulator(
        host=client.host,
        port=client.port,
        user=client.user,
        key_file=client.key_file,
        known_hosts_file=client.known_hosts_file,
        base_path=EMULATOR_BASE,
        **{"command_timeout": 10.0, **overrides},
    )
    return open_ssh_backend(settings, sleep=waits.append)


def emulator_rest_backend(
    settings: RestSettings, waits: list[float], **overrides: object
) -> RouterOsRestBackend:
    """The REST adapter on the emulator; ``command_timeout`` sets its read timeout."""
    if "command_timeout" in overrides:
        overrides["read_timeout"] = overrides.pop("command_timeout")
    changed = attrs.evolve(settings, **overrides)  # type: ignore[arg-type]
    return open_rest_backend(changed, sleep=waits.append)


def _open_backend(kind: str, tmp_path: pathlib.Path) -> Iterator[BackendHarness]:
    if kind == "in-memory":
        fake = InMemoryRds(Size(TIB))
        yield BackendHarness(fake, "/storage-pool/contract", exact_accounting=True, fake=fake)
        return
    if kind == "in-memory+breaker":
        fake = InMemoryRds(Size(TIB))
        yield BackendHarness(
            BreakingBackend(fake), "/storage-pool/contract", exact_accounting=True, fake=fake
        )
        return
    if kind.startswith("emulator-ssh:"):
        emulator = start_emulator(tmp_path, dialect=DIALECTS[kind.partition(":")[2]])
        waits: list[float] = []
        backend = emulator_backend(emulator, tmp_path, waits)
        try:
            yield BackendHarness(
                backend,
                EMULATOR_BASE,
                exact_accounting=True,
                emulator=emulator,
                waits=waits,
                control_plane="ssh",
                variant=lambda w, **o: emulator_backend(emulator, tmp_path / "variant", w, **o),
            )
        finally:
            backend.close()
            emulator.stop()
        return
    if kind == "emulator-rest":
        emulator = start_emulator(tmp_path, rest=True)
        waits = []
        rest_settings = emulator_rest_settings(emulator, EMULATOR_BASE, read_timeout=10.0)
        rest = emulator_rest_backend(rest_settings, waits)
        try:
            yield BackendHarness(
                rest,
                EMULATOR_BASE,
                exact_accounting=True,
                emulator=emulator,
                waits=waits,
                control_plane="rest",
                variant=lambda w, **o: emulator_rest_backend(rest_settings, w, **o),
            )
        finally:
            rest.close()
            emulator.stop()
        return
    if kind == "real-rest":
        missing = [v for v in REAL_RDS_REST_VARS if not os.environ.get(v)]
        if missing:
            pytest.skip(f"no real RDS REST API: set {', '.join(missing)} to run the suite on one")
        rest_settings = real_rds_rest_settings(os.environ)
        rest = open_rest_backend(rest_settings)
        try:
            yield BackendHarness(
                rest, rest_settings.base_path, exact_accounting=False, control_plane="rest"
            )
        finally:
            rest.close()
        return
    if kind == "real":
        missing = [v for v in REAL_RDS_VARS if not os.environ.get(v)]
        if missing:
            pytest.skip(f"no real RDS: set {', '.join(missing)} to run the suite against one")
        settings = real_rds_settings(os.environ)
        backend = open_ssh_backend(settings)
        try:
            yield BackendHarness(
                backend, settings.base_path, exact_accounting=False, control_plane="ssh"
            )
        finally:
            backend.close()
        return
    raise AssertionError(kind)  # pragma: no cover


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[BackendHarness]:
    for h in _open_backend(request.param, tmp_path):
        try:
            yield h
        finally:
            if h.fake is not None:
                h.fake.faults.clear()
            if h.emulator is not None:
                h.emulator.faults.clear()
                h.emulator.latency.clear()
            for vid in h.made:
                h.backend.delete_volume(vid)
