"""The deadline value and the current call's deadline."""

from __future__ import annotations

from rds_csi.application.deadline import current_deadline, deadline_scope
from rds_csi.domain.deadline import Deadline


def test_a_nested_scope_keeps_the_earlier_deadline() -> None:
    soon, later = Deadline(10.0), Deadline(20.0)
    with deadline_scope(soon):
        with deadline_scope(later):
            assert current_deadline() == soon
        with deadline_scope(Deadline(5.0)):
            assert current_deadline() == Deadline(5.0)
        assert current_deadline() == soon
    assert current_deadline() is None


def test_remaining_time_never_goes_negative() -> None:
    deadline = Deadline.after(3.0, now=100.0)
    assert deadline.remaining(now=101.0) == 2.0
    assert deadline.remaining(now=200.0) == 0.0
    assert deadline.expired(now=103.0)
    assert not deadline.expired(now=102.9)
