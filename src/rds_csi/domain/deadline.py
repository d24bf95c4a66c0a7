"""
``Deadline``: the moment by which a caller wants its answer, on a monotonic clock.

A value with no clock of its own: whoever holds a clock passes ``now`` in, so the rules stay
pure and a test can move time by hand.
"""

from __future__ import annotations

import attrs


__all__ = ["Deadline"]


@attrs.frozen
class Deadline:
    """
    Attributes:
        at: Seconds on the monotonic clock the deadline was read against.
    """

    at: float

    @classmethod
    def after(cls, seconds: float, now: float) -> Deadline:
        return cls(now + max(0.0, seconds))

    def remaining(self, now: float) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - now)

    def expired(self, now: float) -> bool:
        return now >= self.at

    def earlier(self, other: Deadline | None) -> Deadline:
        """The sooner of the two (``None`` is no deadline at all)."""
        return self if other is None or self.at <= other.at else other
