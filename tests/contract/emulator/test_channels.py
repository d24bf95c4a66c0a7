"""The emulator keeps no channel once its command is answered, however many ran."""

from __future__ import annotations

import threading

from rds_csi.emulator import Emulator

from .conftest import Connect, run


def _settled(emulator: Emulator) -> int:
    """Retained channels, after giving the last close a moment to cross the wire."""
    done = threading.Event()
    for _ in range(100):
        if emulator.retained_channels() == 0:
            break
        done.wait(0.05)
    return emulator.retained_channels()


class TestChannels:
    def test_a_thousand_commands_on_one_connection_leave_no_channel_behind(
        self, emulator: Emulator, connect: Connect
    ) -> None:
        client = connect()
        for i in range(1000):
            assert run(client, f':put "{i}"') == f"{i}\r\n"
        assert emulator.stats.commands == 1000
        assert _settled(emulator) == 0
        transport = client.get_transport()
        assert transport is not None
        assert transport.is_active()  # the one connection served them all
