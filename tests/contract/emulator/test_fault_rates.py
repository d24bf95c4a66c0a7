"""Faults drawn at random: a share of commands dropped or garbled, repeatable by seed."""

from __future__ import annotations

import time

import pytest

from rds_csi.emulator import Emulator, FaultInjector, FaultKind

from .conftest import Connect, run


def test_a_rate_of_one_garbles_every_answer_and_zero_none(
    connect: Connect, emulator: Emulator
) -> None:
    client = connect()
    emulator.faults.rate(FaultKind.GARBLE, 1.0)
    assert run(client, ':put "hello world, a longer answer"') != "hello world, a longer answer\r\n"
    emulator.faults.rate(FaultKind.GARBLE, 0.0)
    assert run(client, ':put "hello"') == "hello\r\n"


def test_a_dropped_command_closes_the_connection(connect: Connect, emulator: Emulator) -> None:
    client = connect()
    emulator.faults.rate(FaultKind.DROP_BEFORE, 1.0)
    _stdin, stdout, _stderr = client.exec_command(':put "hello"', timeout=10)
    assert stdout.read() == b""  # the connection closed unanswered
    transport = client.get_transport()
    deadline = time.monotonic() + 5
    while transport is not None and transport.is_active() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert transport is None or not transport.is_active()


def test_the_share_is_about_right_and_the_same_for_the_same_seed() -> None:
    def draws(seed: int) -> list[FaultKind | None]:
        faults = FaultInjector(seed)
        faults.rate(FaultKind.DROP_AFTER, 0.1)
        faults.rate(FaultKind.GARBLE, 0.05)
        taken = [faults.take("x") for _ in range(2000)]
        return [None if fault is None else fault.kind for fault in taken]

    first = draws(1)
    assert first == draws(1)
    assert 150 < first.count(FaultKind.DROP_AFTER) < 250
    assert 60 < first.count(FaultKind.GARBLE) < 140


@pytest.mark.parametrize(("kind", "share"), [(FaultKind.HANG, 0.5), (FaultKind.GARBLE, 1.5)])
def test_bad_rates_are_refused(kind: FaultKind, share: float) -> None:
    with pytest.raises(ValueError, match=r"planned|within 0-1"):
        FaultInjector().rate(kind, share)
