"""A Metrics port that only remembers what it was told."""

from __future__ import annotations

import threading

import attrs

from rds_csi.application.ports import Metrics


__all__ = ["RecordingMetrics"]


@attrs.define
class RecordingMetrics(Metrics):
    commands: list[tuple[str, str]] = attrs.field(factory=list)
    rpcs: list[tuple[str, str]] = attrs.field(factory=list)
    circuit: list[str] = attrs.field(factory=list)
    copies: list[tuple[str, str]] = attrs.field(factory=list)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def backend_command(self, operation: str, seconds: float, outcome: str) -> None:
        assert seconds >= 0
        with self._lock:
            self.commands.append((operation, outcome))

    def nvme_connect(self, outcome: str) -> None:
        pass

    def mount_recovery(self, outcome: str) -> None:
        pass

    def rpc_started(self, method: str) -> None:
        pass

    def rpc_finished(self, method: str, code: str, seconds: float) -> None:
        assert seconds >= 0
        with self._lock:
            self.rpcs.append((method, code))

    def circuit_state(self, state: str) -> None:
        with self._lock:
            self.circuit.append(state)

    def copy_started(self, kind: str) -> None:
        pass

    def copy_finished(self, kind: str, seconds: float, outcome: str) -> None:
        assert seconds >= 0
        with self._lock:
            self.copies.append((kind, outcome))
