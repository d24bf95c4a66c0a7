"""
The controller's checks: can this process reach, log in to and use the RDS it is configured
for? Each check names what it found and, when something is wrong, the fix. The SSH connection
and the backend come from the container, as when serving; checks that need an earlier one
(no login without TCP) are skipped when it failed.
"""

from __future__ import annotations

import pathlib
import re
import socket
import stat
import statistics
import time
from collections.abc import Callable
from typing import Final

from rds_csi.adapters.routeros_ssh.commands import RosValue
from rds_csi.adapters.routeros_ssh.connection import (
    HostKeyRejected,
    LoginRefused,
    SshConnection,
    load_private_key,
)
from rds_csi.adapters.routeros_ssh.settings import host_key_policy
from rds_csi.domain import DomainError, InvalidArgument, Size
from rds_csi.domain.size import GIB, MIN_VOLUME_SIZE
from rds_csi.entrypoints.container import Container, resolve_backend
from rds_csi.entrypoints.doctor.report import Check, Findings, fail, ok, warn
from rds_csi.entrypoints.rds_wiring import rds_ssh_settings
from rds_csi.entrypoints.settings import Mode, Settings


__all__ = ["check_controller"]

TCP_TIMEOUT: Final = 5.0
ROUND_TRIPS: Final = 5
SLOW_ROUND_TRIP: Final = 0.5
LOW_FREE_FRACTION: Final = 0.10
LOW_FREE_BYTES: Final = 10 * GIB
_VERSION_RE: Final = re.compile(r"^\s*version:\s*(?P<version>\S+(?: \(\w+\))?)", re.MULTILINE)
_ROUTEROS_DOC: Final = "docs/routeros.md"


def _tcp(host: str, port: int) -> str | None:
    """None when a TCP connection to host:port opens, else why not."""
    try:
        with socket.create_connection((host, port), timeout=TCP_TIMEOUT):
            return None
    except OSError as exc:
        return str(exc) or type(exc).__name__


class ControllerDoctor:
    def __init__(self, settings: Settings, container: Container) -> None:
        self._settings = settings
        self._container = container
        rds = settings.rds
        self._host, self._port, self._user = rds.address, rds.port, rds.user
        self._capacity = ("", 0, 0)  # (pool, total, free) once ``pool`` found it

    # --- before the network ----------------------------------------------------------------

    def ssh_key(self) -> Check:
        given = self._settings.rds.ssh_key
        if not given:
            return fail(
                "ssh key",
                "--rds-ssh-key is not set",
                "set --rds-ssh-key (rds_ssh_key) to the private key file the RDS user trusts "
                f"({_ROUTEROS_DOC} section 3)",
            )
        try:
            key = load_private_key(pathlib.Path(given))
        except InvalidArgument as exc:
            return fail(
                "ssh key",
                exc.problem,
                f"chmod 0600 {given} (a Secret: defaultMode 0400) and make it an OpenSSH "
                "private key without a passphrase (ssh-keygen -t ed25519)",
            )
        mode = stat.S_IMODE(pathlib.Path(given).stat().st_mode)
        return ok("ssh key", f"{given} ({key.get_name()}, mode {mode:04o})")

    def known_hosts(self) -> Check:
        rds = self._settings.rds
        if rds.insecure_ignore_host_key:
            return warn(
                "known_hosts",
                "host key verification is off (--rds-insecure-ignore-host-key)",
                "pin the RDS host key: ssh-keyscan -p "
                f"{self._port} {self._host} > known_hosts, check its fingerprint, then "
                "--rds-known-hosts known_hosts",
            )
        shown = rds.known_hosts or "~/.ssh/known_hosts"
        try:
            policy = host_key_policy(rds_ssh_settings(self._settings))
        except InvalidArgument as exc:
            return fail("known_hosts", str(exc), _known_hosts_fix(self._host, self._port))
        name = self._host if self._port == 22 else f"[{self._host}]:{self._port}"  # noqa: PLR2004
        entry = policy.known_hosts.lookup(name) if policy.known_hosts is not None else None
        if not entry:
            return fail(
                "known_hosts",
                f"{shown} has no entry for {name}",
                _known_hosts_fix(self._host, self._port),
            )
        return ok("known_hosts", f"{shown} has a {', '.join(entry.keys())} key for {name}")

    # --- over the network ------------------------------------------------------------------

    def tcp(self) -> Check:
        why = _tcp(self._host, self._port)
        if why is not None:
            return fail(
                "tcp",
                f"cannot connect to {self._host}:{self._port}: {why}",
                "check --rds-address and --rds-port, the RDS's firewall "
                f"({_ROUTEROS_DOC} section 5) and that its SSH service is on (/ip service print)",
            )
        return ok("tcp", f"{self._host}:{self._port} accepts connections")

    def _run(self, command: str) -> str:
        connection: SshConnection = self._container.rds_ssh.connection()
        return connection.run(command).text

    def login(self) -> Check:
        try:
            text = self._run(':put "rds-csi-doctor"')
        except HostKeyRejected as exc:
            return fail("ssh login", str(exc), _known_hosts_fix(self._host, self._port))
        except LoginRefused as exc:
            return fail(
                "ssh login",
                str(exc),
                f"on the RDS: /user ssh-keys import user={self._user} public-key-file=<the "
                f"key's .pub> ({_ROUTEROS_DOC} section 2); check --rds-user",
            )
        except DomainError as exc:
            return fail("ssh login", str(exc), "see the message; the RDS log: /log print")
        if "rds-csi-doctor" not in text:
            return fail(
                "ssh login",
                f"logged in, but a command printed {text.strip()[:80]!r}",
                "the user needs a group allowing read, write and ssh (policy=ssh,read,write)",
            )
        return ok("ssh login", f"{self._user}@{self._host}:{self._port} logged in, ran a command")

    def routeros(self) -> Check:
        text = self._run("/system resource print")
        match = _VERSION_RE.search(text)
        if match is None:
            first = text.strip().splitlines()[0] if text.strip() else "nothing"
            if "bad command name" in first:
                return warn(
                    "routeros",
                    f"this RDS has no /system resource ({first[:80]!r}): not RouterOS, or an "
                    "emulator",
                    "nothing, for an emulator; on an RDS, check that it runs RouterOS 7",
                )
            return warn(
                "routeros",
                f"/system resource print did not show a version (it printed {first[:80]!r})",
                "give the user the read policy; the driver needs RouterOS 7 with ROSE storage",
            )
        return ok("routeros", f"RouterOS {match['version']}")

    def pool(self) -> Check:
        pool = self._container.rds_ssh.settings().effective_pool
        try:
            report = self._container.rds_ssh.backend().capacity()
        except DomainError as exc:
            return fail(
                "pool",
                str(exc),
                f"/disk print detail where mount-point={pool} on the RDS; set --volume-path to "
                "a directory on a mounted pool",
            )
        self._capacity = (pool, report.total.bytes, report.free.bytes)
        return ok("pool", f"{pool} is mounted: {Size(report.total.bytes)} in all")

    def free_space(self) -> Check:
        pool, total, free = self._capacity
        return _free_space(pool, total, free)

    def volume_path(self) -> Check:
        base = self._settings.controller.volume_path
        name = RosValue.string(base.strip("/"), field="volume path")
        text = self._run(f"/file print count-only where name={name.text}").strip()
        if text == "1":
            return ok("volume path", f"{base} exists")
        return warn(
            "volume path",
            f"{base} is not on the RDS yet (/file print count-only printed {text[:40]!r})",
            f'on the RDS: /file add type=directory name="{base.strip("/")}" (RouterOS may '
            "not make parent directories for the first volume)",
        )

    def nvme_port(self) -> Check:
        address = self._settings.controller.nvme_address or self._host
        port = self._settings.controller.nvme_port
        why = _tcp(address, port)
        if why is not None:
            return warn(
                "nvme port",
                f"cannot connect to {address}:{port} from here: {why}",
                "nodes, not the controller, connect there: run `rds-csi doctor node "
                f"--nvme-address {address}` on a node; check the RDS firewall for {port}",
            )
        return ok("nvme port", f"{address}:{port} accepts connections")

    def round_trip(self) -> Check:
        times = []
        for _ in range(ROUND_TRIPS):
            start = time.monotonic()
            self._run(':put "rds-csi-doctor"')
            times.append(time.monotonic() - start)
        median = statistics.median(times)
        shown = f"median {median * 1000:.0f} ms over {ROUND_TRIPS} commands"
        if median > SLOW_ROUND_TRIP:
            return warn(
                "round trip",
                shown,
                "a slow RDS or network makes every volume operation slow: check the RDS's "
                "load (/system resource print) and the path to it",
            )
        return ok("round trip", shown)


def _known_hosts_fix(host: str, port: int) -> str:
    return (
        f"ssh-keyscan -p {port} {host} > known_hosts, compare its fingerprint with the RDS's "
        "(its console), then --rds-known-hosts known_hosts (the Secret's known_hosts key)"
    )


def _free_space(pool: str, total: int, free: int) -> Check:
    shown = f"{Size(free)} of {Size(total)} free on {pool}"
    if free < MIN_VOLUME_SIZE:
        return fail(
            "free space",
            shown + ": not even the smallest volume (1Gi) fits",
            "delete unused volumes (rds-csi call list; released PVs) or grow the pool",
        )
    if free < LOW_FREE_BYTES or free < total * LOW_FREE_FRACTION:
        return warn("free space", shown, "delete unused volumes or grow the pool soon")
    return ok("free space", shown)


def check_controller(settings: Settings, findings: Findings) -> None:
    """Every controller check, in order, into ``findings``."""
    backend = resolve_backend(settings.backend, Mode.CONTROLLER)
    if backend != "ssh":
        findings.add(
            warn(
                "configuration",
                f"backend {backend}: no RDS to check",
                "the controller serves a real RDS with --backend ssh",
            )
        )
        return
    rds = settings.rds
    findings.add(
        ok(
            "configuration",
            f"backend ssh, RDS {rds.user}@{rds.address}:{rds.port}, "
            f"volume path {settings.controller.volume_path}",
        )
    )
    container = Container(settings=settings, mode=Mode.CONTROLLER)
    doctor = ControllerDoctor(settings, container)
    try:
        _run_checks(doctor, findings)
    finally:
        container.shutdown_resources()
        if findings.passed("ssh login"):
            container.rds_ssh.connection().close()


def _run_checks(doctor: ControllerDoctor, findings: Findings) -> None:
    findings.run("ssh key", [], doctor.ssh_key)
    findings.run("known_hosts", [], doctor.known_hosts)
    findings.run("tcp", [], doctor.tcp)
    login = ["ssh key", "known_hosts", "tcp"]
    findings.run("ssh login", login, doctor.login)
    for name, probe in [("routeros", doctor.routeros), ("pool", doctor.pool)]:
        findings.run(name, ["ssh login"], _guarded(name, probe))
    findings.run("free space", ["pool"], doctor.free_space)
    findings.run("volume path", ["pool"], _guarded("volume path", doctor.volume_path))
    findings.run("nvme port", [], doctor.nvme_port)
    findings.run("round trip", ["ssh login"], _guarded("round trip", doctor.round_trip))


def _guarded(name: str, probe: Callable[[], Check]) -> Callable[[], Check]:
    """A check whose RDS stopped answering midway fails, named, instead of the doctor."""

    def run() -> Check:
        try:
            return probe()
        except DomainError as exc:
            return fail(name, str(exc), "run the doctor again; if it repeats, see the RDS's log")

    return run
