"""
A per-address login rate limit: a password guesser on the network gets a few tries, then waits.

Each address may give ``failures`` wrong passwords within ``window`` seconds; the one that
reaches the limit locks the address out for ``lockout`` seconds, during which every login attempt
from it, by password or key, is refused unchecked (the right password too, so a lockout reveals
nothing). A successful login forgets the address's failures. Keys that are not authorized do not
count: nobody guesses a key, and an SSH agent offering several must not lock its owner out.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Final

import attrs


__all__ = ["LoginGuard", "LoginLimit"]

# Addresses remembered at most; past it, the ones with nothing pending are forgotten first, so
# a scan from many addresses cannot grow the table without end.
_MAX_ADDRESSES: Final = 4096


@attrs.frozen
class LoginLimit:
    """
    Attributes:
        failures: Wrong passwords an address may give within ``window``; 0 turns the limit off.
        window: Seconds over which failures are counted.
        lockout: Seconds an address is refused once it reached ``failures``.
    """

    failures: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    window: float = attrs.field(default=60.0, validator=attrs.validators.gt(0))
    lockout: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))


@attrs.define
class _Record:
    failed_at: collections.deque[float] = attrs.field(factory=collections.deque)
    locked_until: float = float("-inf")


class LoginGuard:
    """The limit's bookkeeping; every method is safe to call from any thread."""

    def __init__(self, limit: LoginLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}

    def allowed(self, address: str) -> bool:
        """Whether a login attempt from ``address`` may be checked at all now."""
        with self._lock:
            record = self._records.get(address)
            return record is None or self._clock() >= record.locked_until

    def failed(self, address: str) -> None:
        if self.limit.failures == 0:
            return
        with self._lock:
            now = self._clock()
            record = self._records.get(address)
            if record is None:
                self._forget_idle(now)
                record = self._records[address] = _Record()
            record.failed_at.append(now)
            while record.failed_at and now - record.failed_at[0] > self.limit.window:
                record.failed_at.popleft()
            if len(record.failed_at) >= self.limit.failures:
                record.locked_until = now + self.limit.lockout
                record.failed_at.clear()

    def succeeded(self, address: str) -> None:
        with self._lock:
            record = self._records.get(address)
            if record is not None and self._clock() >= record.locked_until:
                del self._records[address]

    def _forget_idle(self, now: float) -> None:
        if len(self._records) < _MAX_ADDRESSES:
            return
        for address, record in list(self._records.items()):
            last = record.failed_at[-1] if record.failed_at else float("-inf")
            if now >= record.locked_until and now - last > self.limit.window:
                del self._records[address]
        while len(self._records) >= _MAX_ADDRESSES:  # all busy: drop the oldest entry
            del self._records[next(iter(self._records))]
