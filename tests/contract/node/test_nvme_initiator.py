"""The NvmeInitiator contract: what every initiator (nvme-cli, loop, a fake) must do, errors too."""

from __future__ import annotations

import pytest

from rds_csi.domain import VolumeNotFound
from rds_csi.domain.size import MIB

from .conftest import InitiatorHarness


class TestConnect:
    def test_connect_gives_the_block_device_of_the_nqn(self, initiators: InitiatorHarness) -> None:
        target = initiators.export(64 * MIB)
        assert initiators.initiator.device_for(target.nqn) is None
        device = initiators.initiator.connect(target)
        assert initiators.exists(device)
        assert initiators.size_of(device) == 64 * MIB
        assert initiators.initiator.device_for(target.nqn) == device
        assert target.nqn in initiators.initiator.connections()

    def test_connect_is_idempotent_and_reuses_the_connection(
        self, initiators: InitiatorHarness
    ) -> None:
        target = initiators.export()
        first = initiators.initiator.connect(target)
        again = initiators.initiator.connect(target)
        assert again == first
        assert list(initiators.initiator.connections()).count(target.nqn) == 1

    def test_each_volume_gets_its_own_device(self, initiators: InitiatorHarness) -> None:
        a, b = initiators.export(32 * MIB), initiators.export(48 * MIB)
        dev_a, dev_b = initiators.initiator.connect(a), initiators.initiator.connect(b)
        assert dev_a != dev_b
        assert (initiators.size_of(dev_a), initiators.size_of(dev_b)) == (32 * MIB, 48 * MIB)
        assert {a.nqn, b.nqn} <= set(initiators.initiator.connections())

    def test_an_nqn_the_target_does_not_export_is_not_found_and_leaves_nothing(
        self, initiators: InitiatorHarness
    ) -> None:
        missing = initiators.unexported()
        before = list(initiators.initiator.connections())
        with pytest.raises(VolumeNotFound):
            initiators.initiator.connect(missing)
        assert list(initiators.initiator.connections()) == before
        assert initiators.initiator.device_for(missing.nqn) is None

    def test_data_outlives_a_disconnect(self, initiators: InitiatorHarness) -> None:
        target = initiators.export()
        device = initiators.initiator.connect(target)
        initiators.write_at(device, 5 * MIB, b"written before the disconnect")
        initiators.initiator.disconnect(target.nqn)
        again = initiators.initiator.connect(target)
        assert initiators.read_at(again, 5 * MIB, 29) == b"written before the disconnect"


class TestRestart:
    """The port is stateless: a restarted node plugin finds the connections it made before."""

    def test_a_new_instance_sees_the_connections_and_reuses_them(
        self, initiators: InitiatorHarness
    ) -> None:
        target, other = initiators.export(32 * MIB), initiators.export()
        device = initiators.initiator.connect(target)
        restarted = initiators.restart()
        assert restarted.device_for(target.nqn) == device
        assert target.nqn in restarted.connections()
        assert restarted.device_for(other.nqn) is None
        assert restarted.connect(target) == device
        assert list(restarted.connections()).count(target.nqn) == 1
        assert initiators.size_of(device) == 32 * MIB

    def test_a_new_instance_disconnects_what_the_old_one_connected(
        self, initiators: InitiatorHarness
    ) -> None:
        target = initiators.export()
        device = initiators.initiator.connect(target)
        initiators.write_at(device, MIB, b"before the restart")
        restarted = initiators.restart()
        restarted.disconnect(target.nqn)
        assert restarted.device_for(target.nqn) is None
        assert target.nqn not in restarted.connections()
        again = restarted.connect(target)
        assert initiators.read_at(again, MIB, 18) == b"before the restart"


class TestDisconnect:
    def test_disconnect_removes_the_connection(self, initiators: InitiatorHarness) -> None:
        target = initiators.export()
        initiators.initiator.connect(target)
        initiators.initiator.disconnect(target.nqn)
        assert initiators.initiator.device_for(target.nqn) is None
        assert target.nqn not in initiators.initiator.connections()

    def test_disconnect_is_idempotent(self, initiators: InitiatorHarness) -> None:
        target = initiators.export()
        initiators.initiator.disconnect(target.nqn)  # never connected
        initiators.initiator.connect(target)
        initiators.initiator.disconnect(target.nqn)
        initiators.initiator.disconnect(target.nqn)
        assert initiators.initiator.device_for(target.nqn) is None

    def test_disconnect_leaves_other_volumes_alone(self, initiators: InitiatorHarness) -> None:
        keep, drop = initiators.export(), initiators.export()
        kept = initiators.initiator.connect(keep)
        initiators.initiator.connect(drop)
        initiators.initiator.disconnect(drop.nqn)
        assert initiators.initiator.device_for(keep.nqn) == kept
        assert keep.nqn in initiators.initiator.connections()


class TestLingering:
    def test_a_connection_or_a_clean_disconnect_leaves_nothing_lingering(
        self, initiators: InitiatorHarness
    ) -> None:
        target = initiators.export()
        volume = target.nqn.volume_id
        assert volume is not None
        initiators.initiator.connect(target)
        assert list(initiators.initiator.lingering(volume)) == []
        initiators.initiator.disconnect(target.nqn)
        assert list(initiators.initiator.lingering(volume)) == []


class TestRescan:
    def test_rescan_shows_the_grown_size(self, initiators: InitiatorHarness) -> None:
        target = initiators.export(32 * MIB)
        device = initiators.initiator.connect(target)
        initiators.resize(target, 96 * MIB)
        initiators.initiator.rescan(target.nqn)
        grown = initiators.initiator.device_for(target.nqn)
        assert grown == device
        assert initiators.size_of(device) == 96 * MIB

    def test_rescan_of_an_nqn_not_connected_is_not_found(
        self, initiators: InitiatorHarness
    ) -> None:
        target = initiators.export()
        with pytest.raises(VolumeNotFound):
            initiators.initiator.rescan(target.nqn)
