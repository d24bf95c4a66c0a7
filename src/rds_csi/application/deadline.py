"""
The deadline of the request being served, carried implicitly from the gRPC edge to adapters.

The servicer side sets it for the duration of a call (``entrypoints/csi/deadlines.py``, from
the caller's gRPC deadline); an adapter that waits on the outside world (the RDS over SSH)
reads it and gives up in time. Use cases neither read nor pass it, so no port signature
carries it, and a call made outside any request (the health monitor, a test) simply has none
and uses the adapter's own cap. A context variable, so each call's thread sees its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from rds_csi.domain.deadline import Deadline


__all__ = ["current_deadline", "deadline_scope"]

_current: ContextVar[Deadline | None] = ContextVar("rds_csi_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The deadline of the call being served, if any."""
    return _current.get()


@contextmanager
def deadline_scope(deadline: Deadline | None) -> Iterator[None]:
    """Within this block the current deadline is ``deadline`` (or an earlier one already set)."""
    outer = _current.get()
    token = _current.set(deadline.earlier(outer) if deadline is not None else outer)
    try:
        yield
    finally:
        _current.reset(token)
