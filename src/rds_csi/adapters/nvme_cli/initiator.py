"""
The NvmeInitiator on nvme-cli: ``nvme connect`` / ``disconnect`` / ``ns-rescan``, sysfs for truth.

sysfs is the evidence for every decision: whether we are connected, which block device belongs to
an NQN (never a guessed ``/dev/nvme0n1``), whether a disconnect took. nvme-cli's exit status and
messages only explain failures, because they vary between versions (``connect -o json`` exits 1
on success in some).
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable, Sequence
from typing import TypeVar

import attrs
import tenacity

from rds_csi.adapters.clock import deadline
from rds_csi.adapters.nvme_cli.parse import (
    ConnectFailure,
    classify_connect_failure,
    parse_connect_output,
    parse_disconnect_output,
    parse_discovery_log,
    parse_host_id,
    parse_host_nqn,
)
from rds_csi.adapters.nvme_cli.sysfs import Controller, Subsystem, scan_subsystems
from rds_csi.adapters.process import ToolTimeout, describe, run_tool
from rds_csi.application.ports import Clock, NvmeInitiator
from rds_csi.domain import (
    BackendError,
    BackendUnavailable,
    InvalidArgument,
    MalformedOutput,
    Nqn,
    NvmeTarget,
    VolumeId,
    VolumeNotFound,
)


__all__ = ["HostIdentity", "NvmeCliInitiator", "connect_argv"]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class _NotConnected(Exception):
    """One ``nvme connect`` that did not connect: worth another attempt."""


@attrs.frozen
class HostIdentity:
    """Who this node says it is to the target (``/etc/nvme/hostnqn``, ``/etc/nvme/hostid``)."""

    nqn: Nqn | None = None
    host_id: str | None = None

    @classmethod
    def load(cls, config_dir: pathlib.Path) -> HostIdentity:
        """
        Read both files; a missing or empty file leaves nvme-cli to its own default.

        Raises:
            BackendError: a file exists but holds garbage (the node is misconfigured).
        """
        nqn_file, id_file = config_dir / "hostnqn", config_dir / "hostid"
        try:
            nqn_text, id_text = _read_optional(nqn_file), _read_optional(id_file)
            return cls(
                nqn=parse_host_nqn(nqn_text, source=str(nqn_file)) if nqn_text else None,
                host_id=parse_host_id(id_text, source=str(id_file)) if id_text else None,
            )
        except InvalidArgument as exc:
            raise BackendError(
                "this node's NVMe host identity is misconfigured", str(exc)
            ) from None

    def argv(self) -> list[str]:
        args = []
        if self.nqn is not None:
            args.append(f"--hostnqn={self.nqn}")
        if self.host_id is not None:
            args.append(f"--hostid={self.host_id}")
        return args


def _last_answer(state: tenacity.RetryCallState) -> object:
    """What the last poll saw, once the deadline passed (tenacity would raise RetryError)."""
    assert state.outcome is not None  # noqa: S101 - tenacity sets it before stopping
    return state.outcome.result()


def _read_optional(path: pathlib.Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise BackendError(f"cannot read {path}", exc.strerror or str(exc)) from exc


def connect_argv(binary: str, target: NvmeTarget, host: HostIdentity) -> list[str]:
    """
    ``nvme connect`` for ``target``. Every value was validated by the domain (host name or IP,
    port number, NQN grammar), so none can start with ``-`` or carry a separator; the ``=`` forms
    keep ``-1`` from reading as an option.
    """
    policy = target.reconnect
    argv = [
        binary,
        "connect",
        "-t",
        "tcp",
        "-a",
        target.address,
        "-s",
        str(target.port),
        "-n",
        target.nqn.value,
        *host.argv(),
        f"--ctrl-loss-tmo={policy.ctrl_loss_tmo}",
        f"--reconnect-delay={policy.reconnect_delay}",
    ]
    if policy.keep_alive_tmo > 0:  # 0 keeps the kernel's default
        argv.append(f"--keep-alive-tmo={policy.keep_alive_tmo}")
    argv += ["-o", "json"]
    return argv


class NvmeCliInitiator(NvmeInitiator):
    """
    Attach NVMe/TCP targets with nvme-cli.

    Args:
        binary: The ``nvme`` executable (a path, or a name looked up on PATH).
        sysfs_root: Where sysfs is mounted (``/sys``).
        dev_root: Where device nodes live (``/dev``).
        config_dir: Where ``hostnqn`` and ``hostid`` live (``/etc/nvme``).
        command_timeout: Seconds any one nvme-cli call may take.
        connect_attempts: How many times to try ``nvme connect`` (3, as the Go driver).
        retry_delay: Seconds between attempts (5, as the Go driver).
        device_timeout: Seconds to wait for the block device after connecting, and for the
            controllers to go after disconnecting.
        poll_interval: Seconds between sysfs looks while waiting.
        clock: Sleeps and time (a fake in tests), for the retries and the polling.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        binary: str = "nvme",
        sysfs_root: str | pathlib.Path = "/sys",
        dev_root: str | pathlib.Path = "/dev",
        config_dir: str | pathlib.Path = "/etc/nvme",
        command_timeout: float = 30.0,
        connect_attempts: int = 3,
        retry_delay: float = 5.0,
        device_timeout: float = 30.0,
        poll_interval: float = 0.2,
    ) -> None:
        if connect_attempts < 1:
            raise ValueError("connect_attempts must be at least 1")
        self._binary = binary
        self._sysfs = pathlib.Path(sysfs_root)
        self._dev = pathlib.Path(dev_root)
        self._config = pathlib.Path(config_dir)
        self._timeout = command_timeout
        self._attempts = connect_attempts
        self._retry_delay = retry_delay
        self._device_timeout = device_timeout
        self._poll_interval = poll_interval
        self._clock = clock

    # --- queries -----------------------------------------------------------------------------

    def _subsystems(self, nqn: Nqn) -> list[Subsystem]:
        return [s for s in scan_subsystems(self._sysfs) if s.nqn == nqn.value]

    def _controllers(self, nqn: Nqn) -> list[Controller]:
        return [c for s in self._subsystems(nqn) for c in s.controllers]

    def device_for(self, nqn: Nqn) -> str | None:
        for subsystem in self._subsystems(nqn):
            for name in subsystem.namespaces:
                device = self._dev / name
                if device.exists():
                    return str(device)
        return None

    def connections(self) -> Sequence[Nqn]:
        found: set[Nqn] = set()
        for subsystem in scan_subsystems(self._sysfs):
            if not (subsystem.fabrics and subsystem.controllers):
                continue
            try:
                found.add(Nqn(subsystem.nqn))
            except InvalidArgument:
                # The discovery NQN and other names outside the grammar we accept: not volumes.
                continue
        return sorted(found)

    # --- connect -----------------------------------------------------------------------------

    def connect(self, target: NvmeTarget) -> str:
        existing = self.device_for(target.nqn)
        if existing is not None:
            _log.info("%s is already connected as %s; reusing it", target.nqn, existing)
            return existing
        if self._controllers(target.nqn):
            # Connected, but no block device yet (still scanning, or reconnecting): not ours to
            # tear down if it never shows.
            return self._await_device(target, made_here=False)
        argv = connect_argv(self._binary, target, HostIdentity.load(self._config))
        where = f"{target.address}:{target.port}"
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._attempts),
            wait=tenacity.wait_fixed(self._retry_delay),
            retry=tenacity.retry_if_exception_type(_NotConnected),
            sleep=self._clock.sleep,
            reraise=True,
        )
        asked_discovery = False
        made_here = False
        try:
            for attempt in retrying:
                with attempt:
                    connected, kind, detail = self._attempt(argv, target)
                    if connected is not None:
                        made_here = connected
                        continue
                    _log.warning(
                        "nvme connect to %s at %s failed (attempt %d/%d, %s): %s",
                        target.nqn,
                        where,
                        attempt.retry_state.attempt_number,
                        self._attempts,
                        kind.value,
                        detail,
                    )
                    if (
                        kind in {ConnectFailure.REJECTED, ConnectFailure.UNKNOWN}
                        and not asked_discovery
                    ):
                        asked_discovery = True
                        if self._target_lacks(target):
                            raise VolumeNotFound(
                                target.nqn.value,
                                f"the NVMe/TCP target at {where} does not export it",
                            )
                    raise _NotConnected(detail)  # noqa: TRY301 - what tenacity retries on
        except _NotConnected as exc:
            raise BackendUnavailable(
                f"cannot connect to {target.nqn} at {where} after {self._attempts} attempts: {exc}"
            ) from None
        return self._await_device(target, made_here=made_here)

    def _attempt(
        self, argv: list[str], target: NvmeTarget
    ) -> tuple[bool | None, ConnectFailure, str]:
        """
        One ``nvme connect``. Returns whether it connected (True: we made the connection;
        False: it was there already; None: not connected), why not, and the tool's words.
        """
        try:
            result = run_tool(argv, timeout=self._timeout)
        except ToolTimeout as exc:
            return None, ConnectFailure.UNREACHABLE, str(exc)
        kind = classify_connect_failure(result.stderr) if not result.ok else None
        if self._controllers(target.nqn):
            # sysfs is the evidence, whatever the exit status said.
            if not result.ok:
                _log.info(
                    "nvme connect exited %d but %s is connected (controller %s)",
                    result.returncode,
                    target.nqn,
                    parse_connect_output(result.stdout),
                )
            return kind is not ConnectFailure.ALREADY_CONNECTED, ConnectFailure.UNKNOWN, ""
        if kind is None:
            return (
                None,
                ConnectFailure.UNKNOWN,
                "nvme connect exited 0 but no controller for the NQN is in sysfs",
            )
        return None, kind, result.detail()

    def _target_lacks(self, target: NvmeTarget) -> bool:
        """
        Ask the target's discovery controller whether it exports the NQN. True only on a clear
        "no"; any failure to ask leaves the question open (False), and we keep retrying.
        """
        argv = [
            self._binary,
            "discover",
            "-t",
            "tcp",
            "-a",
            target.address,
            "-s",
            str(target.port),
            *HostIdentity.load(self._config).argv(),
            "-o",
            "json",
        ]
        try:
            result = run_tool(argv, timeout=self._timeout)
            exported = parse_discovery_log(result.stdout)
        except (ToolTimeout, MalformedOutput) as exc:
            _log.info("cannot ask %s:%s what it exports: %s", target.address, target.port, exc)
            return False
        return target.nqn.value not in exported

    def _poll(self, look: Callable[[], _T], *, until: Callable[[_T], bool]) -> _T:
        """
        ``look()`` every poll interval until its answer satisfies ``until`` or the device
        timeout passes on the clock; returns the last answer either way.
        """
        waiting = tenacity.Retrying(
            stop=deadline(self._clock, self._device_timeout),
            wait=tenacity.wait_fixed(self._poll_interval),
            retry=tenacity.retry_if_result(lambda answer: not until(answer)),
            sleep=self._clock.sleep,
            retry_error_callback=_last_answer,
        )
        answer: _T = waiting(look)
        return answer

    def _await_device(self, target: NvmeTarget, *, made_here: bool) -> str:
        device = self._poll(lambda: self.device_for(target.nqn), until=lambda d: d is not None)
        if device is not None:
            _log.info("%s is connected as %s", target.nqn, device)
            return device
        if made_here:
            # A stage that fails must leave no connection behind.
            try:
                self.disconnect(target.nqn)
            except BackendError as exc:
                _log.warning("could not undo the connection to %s: %s", target.nqn, exc)
        raise BackendUnavailable(
            f"connected to {target.nqn} at {target.address}:{target.port}, but no block device "
            f"appeared within {self._device_timeout:g} s"
        )

    # --- disconnect, rescan ------------------------------------------------------------------

    def disconnect(self, nqn: Nqn) -> None:
        if not self._controllers(nqn):
            return
        argv = [self._binary, "disconnect", "-n", nqn.value]
        try:
            result = run_tool(argv, timeout=self._timeout)
        except ToolTimeout as exc:
            raise BackendError(f"cannot disconnect {nqn}", str(exc)) from None
        count = parse_disconnect_output(result.stdout)
        _log.info("nvme disconnect %s: exit %d, %s controller(s)", nqn, result.returncode, count)
        if self._poll(lambda: self._controllers(nqn), until=lambda left: not left):
            raise BackendError(f"{describe(argv)} left {nqn} connected", result.detail())

    def lingering(self, volume_id: VolumeId) -> Sequence[str]:  # noqa: ARG002 - none linger
        # A namespace's device node goes with its controller; a mount of it then names no
        # device at all, which the node use cases already read as stale.
        return ()

    def rescan(self, nqn: Nqn) -> None:
        controllers = self._controllers(nqn)
        if not controllers:
            raise VolumeNotFound(nqn.value, "not connected on this node")
        live = [c for c in controllers if c.state == "live"] or controllers
        failures: list[str] = []
        for controller in live:
            argv = [self._binary, "ns-rescan", str(self._dev / controller.name)]
            try:
                result = run_tool(argv, timeout=self._timeout)
            except ToolTimeout as exc:
                failures.append(str(exc))
                continue
            if result.ok:
                return
            failures.append(f"{describe(argv)}: {result.detail()}")
        raise BackendError(f"cannot rescan {nqn}", "; ".join(failures))
