"""
Latency and faults the tests switch on at runtime.

Faults are consumed in the order they were planned: each exec line takes the first planned
fault whose ``match`` (a regular expression searched in the command line) fits, and uses up
one of its ``count``. A line no planned fault takes may still suffer one at random: ``rate``
gives a kind a share of all commands (a flaky network, a confused RDS), drawn from a seeded
generator so a run can be repeated.
"""

from __future__ import annotations

import enum
import random
import re
import threading

import attrs

from rds_csi.emulator import assumptions


__all__ = ["Fault", "FaultInjector", "FaultKind", "Latency"]


class FaultKind(enum.Enum):
    FAIL = "fail"  # answer with a RouterOS error text, run nothing
    DROP_BEFORE = "drop-before"  # close the connection before running the command
    DROP_AFTER = "drop-after"  # run the command, then close the connection unanswered
    HANG = "hang"  # never answer (until released, the client gives up, or the emulator stops)
    TRUNCATE = "truncate"  # run, answer the first half of the output, end normally
    GARBLE = "garble"  # run, answer the output with a stretch of it replaced by junk


@attrs.define
class Fault:
    kind: FaultKind
    remaining: int
    message: str = ""
    match: re.Pattern[str] | None = None


@attrs.define
class Latency:
    """
    Injected delays, in seconds, read afresh for every command and every packet.

    Attributes:
        command: Added before each exec line is answered (RouterOS's own think time).
        command_jitter: Up to this much more, uniformly at random.
        rtt: Network round-trip time: every byte the server receives or sends is held for
            ``rtt / 2``, so an SSH handshake pays for each of its round trips. Applies to
            connections accepted while it is non-zero.
        rtt_jitter: Up to this much more per direction, uniformly (order is preserved).
    """

    command: float = 0.0
    command_jitter: float = 0.0
    rtt: float = 0.0
    rtt_jitter: float = 0.0
    _rng: random.Random = attrs.field(factory=lambda: random.Random(0x5D5), repr=False)  # noqa: S311

    def command_delay(self) -> float:
        return self.command + (
            self._rng.uniform(0, self.command_jitter) if self.command_jitter else 0
        )

    def one_way(self) -> float:
        return self.rtt / 2 + (self._rng.uniform(0, self.rtt_jitter / 2) if self.rtt_jitter else 0)

    def clear(self) -> None:
        self.command = self.command_jitter = self.rtt = self.rtt_jitter = 0.0


class FaultInjector:
    """The emulator's fault plan; every method is safe to call from any thread."""

    def __init__(self, seed: int = 0xFA17) -> None:
        self._lock = threading.Lock()
        self._plan: list[Fault] = []
        self._rates: dict[FaultKind, float] = {}
        self._rng = random.Random(seed)  # noqa: S311 - fault dice, not secrets
        self._refuse_logins = False
        self.hang_released = threading.Event()

    def _add(self, kind: FaultKind, count: int, message: str, match: str | None) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._plan.append(
                Fault(kind, count, message, re.compile(match) if match is not None else None)
            )

    def fail_next(
        self,
        count: int = 1,
        message: str = assumptions.NOT_ENOUGH_SPACE,
        *,
        match: str | None = None,
    ) -> None:
        """The next ``count`` matching commands print ``message`` and do nothing."""
        self._add(FaultKind.FAIL, count, message, match)

    def drop_next(
        self, count: int = 1, *, after_execute: bool = True, match: str | None = None
    ) -> None:
        """Close the connection on the next matching commands (after running them, or before)."""
        kind = FaultKind.DROP_AFTER if after_execute else FaultKind.DROP_BEFORE
        self._add(kind, count, "", match)

    def hang_next(self, count: int = 1, *, match: str | None = None) -> None:
        self.hang_released.clear()
        self._add(FaultKind.HANG, count, "", match)

    def truncate_next(self, count: int = 1, *, match: str | None = None) -> None:
        self._add(FaultKind.TRUNCATE, count, "", match)

    def garble_next(self, count: int = 1, *, match: str | None = None) -> None:
        self._add(FaultKind.GARBLE, count, "", match)

    def rate(self, kind: FaultKind, share: float) -> None:
        """From now on, each command suffers ``kind`` with probability ``share`` (0 stops it)."""
        if kind is FaultKind.FAIL or kind is FaultKind.HANG:
            raise ValueError(f"{kind.value} is planned, not drawn at random")
        if not 0 <= share <= 1:
            raise ValueError(f"the share of commands must be within 0-1, not {share}")
        with self._lock:
            self._rates[kind] = share

    def refuse_logins(self, refuse: bool = True) -> None:  # noqa: FBT001, FBT002 - a switch
        with self._lock:
            self._refuse_logins = refuse

    @property
    def logins_refused(self) -> bool:
        with self._lock:
            return self._refuse_logins

    def release_hangs(self) -> None:
        self.hang_released.set()

    def pending(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._plan)

    def clear(self) -> None:
        with self._lock:
            self._plan.clear()
            self._rates.clear()
            self._refuse_logins = False
        self.hang_released.set()

    def take(self, command: str) -> Fault | None:
        """The fault this command suffers, if any (used up as it is taken)."""
        with self._lock:
            for fault in self._plan:
                if fault.remaining and (fault.match is None or fault.match.search(command)):
                    fault.remaining -= 1
                    taken = attrs.evolve(fault)
                    self._plan = [f for f in self._plan if f.remaining]
                    return taken
            roll = self._rng.random()
            for kind, share in self._rates.items():
                if roll < share:
                    return Fault(kind, 0)
                roll -= share
        return None


def garble(text: str, rng: random.Random) -> str:
    """Replace a stretch in the middle of ``text`` with junk a parser must not accept."""
    if not text:
        return '"\x07'
    junk = "\x00" + "".join(rng.choice('"=\x1b\\}{;~ ') for _ in range(11))
    start = len(text) // 3
    return text[:start] + junk + text[start + len(junk) :]


def truncate(text: str) -> str:
    """The first half of ``text``, never ending on a line boundary (output cut off mid-line)."""
    cut = max(len(text) // 2, 1)
    while cut > 1 and text[cut - 1] in "\r\n":
        cut -= 1
    return text[:cut]
