"""
The nvme-cli initiator beyond the port contract: the command lines it runs, how it reads sysfs,
retries, waits and failures, against the recording ``nvme`` stand-in and a fake sysfs tree.
"""

from __future__ import annotations

import pathlib

import pytest

from rds_csi.domain import (
    BackendError,
    BackendUnavailable,
    Nqn,
    NvmeTarget,
    ReconnectPolicy,
    VolumeId,
    VolumeNotFound,
)
from rds_csi.domain.size import MIB
from tests.doubles.nvme_cli import FakeNvme, StepClock, install_fake_nvme


HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:f21a127f-b6ee-4187-a7cf-845ea827f5e7"
HOSTID = "7d828c0f-95fc-4d20-9f66-510902715cc6"


def _target(name: str = "a", reconnect: ReconnectPolicy | None = None) -> NvmeTarget:
    nqn = Nqn.for_volume(VolumeId.from_name(f"nvme-cli-{name}"))
    return NvmeTarget(
        address="10.0.0.5", port=4420, nqn=nqn, reconnect=reconnect or ReconnectPolicy()
    )


@pytest.fixture
def fake(tmp_path: pathlib.Path) -> FakeNvme:
    return install_fake_nvme(tmp_path)


def _export(fake: FakeNvme, target: NvmeTarget, size: int = 64 * MIB) -> None:
    fake.export(target.nqn.value, size, target.address, target.port)


class TestCommandLine:
    def test_connect_passes_target_host_identity_and_reconnect_policy(self, fake: FakeNvme) -> None:
        fake.set_host_identity(HOSTNQN, HOSTID)
        target = _target(
            reconnect=ReconnectPolicy(ctrl_loss_tmo=600, reconnect_delay=2, keep_alive_tmo=15)
        )
        _export(fake, target)
        fake.initiator().connect(target)
        (argv,) = fake.calls("connect")
        assert argv == [
            "connect",
            "-t",
            "tcp",
            "-a",
            "10.0.0.5",
            "-s",
            "4420",
            "-n",
            target.nqn.value,
            f"--hostnqn={HOSTNQN}",
            f"--hostid={HOSTID}",
            "--ctrl-loss-tmo=600",
            "--reconnect-delay=2",
            "--keep-alive-tmo=15",
            "-o",
            "json",
        ]
        # ...and the kernel (the stand-in's sysfs) got them.
        (ctrl,) = fake.controllers(target.nqn.value)
        assert (ctrl / "hostnqn").read_text().strip() == HOSTNQN
        assert (ctrl / "ctrl_loss_tmo").read_text().strip() == "600"
        assert (ctrl / "kato").read_text().strip() == "15"

    def test_defaults_retry_forever_and_keep_the_kernel_keep_alive(self, fake: FakeNvme) -> None:
        target = _target()
        _export(fake, target)
        fake.initiator().connect(target)
        (argv,) = fake.calls("connect")
        assert "--ctrl-loss-tmo=-1" in argv
        assert "--reconnect-delay=5" in argv
        assert not any(a.startswith("--keep-alive-tmo") for a in argv)
        assert not any(a.startswith(("--hostnqn", "--hostid")) for a in argv)
        (ctrl,) = fake.controllers(target.nqn.value)
        assert (ctrl / "ctrl_loss_tmo").read_text().strip() == "off"

    def test_a_garbage_host_nqn_file_fails_before_any_connect(self, fake: FakeNvme) -> None:
        fake.set_host_identity("not an nqn; rm -rf /", None)
        target = _target()
        _export(fake, target)
        with pytest.raises(BackendError, match="hostnqn"):
            fake.initiator().connect(target)
        assert fake.calls("connect") == []

    def test_disconnect_and_rescan_name_the_nqn_and_the_controller(self, fake: FakeNvme) -> None:
        target = _target()
        _export(fake, target)
        initiator = fake.initiator()
        initiator.connect(target)
        (ctrl,) = fake.controllers(target.nqn.value)
        initiator.rescan(target.nqn)
        initiator.disconnect(target.nqn)
        assert fake.calls("ns-rescan") == [["ns-rescan", str(fake.dev / ctrl.name)]]
        assert fake.calls("disconnect") == [["disconnect", "-n", target.nqn.value]]

    def test_nothing_runs_to_disconnect_what_is_not_connected(self, fake: FakeNvme) -> None:
        fake.initiator().disconnect(_target().nqn)
        assert fake.calls() == []


class TestDeviceResolution:
    def test_the_device_is_found_by_nqn_not_guessed(self, fake: FakeNvme) -> None:
        first, second = _target("first"), _target("second")
        _export(fake, first)
        _export(fake, second, 32 * MIB)
        initiator = fake.initiator()
        initiator.connect(first)
        initiator.connect(second)
        initiator.disconnect(first.nqn)  # frees instance 0 so the next one reuses the name
        third = _target("third")
        _export(fake, third, 16 * MIB)
        assert initiator.connect(third) == str(fake.dev / "nvme0n1")
        assert initiator.device_for(second.nqn) == str(fake.dev / "nvme1n1")

    def test_without_native_multipath_the_device_hangs_off_the_controller(
        self, tmp_path: pathlib.Path
    ) -> None:
        fake = install_fake_nvme(tmp_path, multipath=False)
        target = _target()
        _export(fake, target)
        device = fake.initiator().connect(target)
        assert device == str(fake.dev / "nvme0n1")
        assert (fake.sysfs / "class" / "nvme" / "nvme0" / "nvme0n1").is_dir()

    def test_local_drives_and_the_discovery_nqn_are_not_connections(self, fake: FakeNvme) -> None:
        for name, nqn, transport in (
            ("nvme-subsys7", "nqn.2014.08.org.nvmexpress:144d144dS5GXNX0T123456", "pcie"),
            ("nvme-subsys8", "nqn.2014-08.org.nvmexpress.discovery", "tcp"),
        ):
            subsys = fake.sysfs / "class" / "nvme-subsystem" / name
            (subsys / "nvme9").mkdir(parents=True)
            (subsys / "subsysnqn").write_text(nqn + "\n")
            (subsys / "nvme9" / "state").write_text("live\n")
            (subsys / "nvme9" / "transport").write_text(transport + "\n")
        target = _target()
        _export(fake, target)
        initiator = fake.initiator()
        initiator.connect(target)
        assert list(initiator.connections()) == [target.nqn]

    def test_after_a_lost_connection_the_volume_comes_back_under_a_new_name(
        self, fake: FakeNvme
    ) -> None:
        """
        As Linux does past ctrl-loss-tmo while a mount holds the old device: the subsystem
        stays in sysfs, empty; a new connect reuses it and names the namespace ``nvme0n2``.
        """
        target, other = _target(), _target("other")
        _export(fake, target)
        _export(fake, other)
        initiator = fake.initiator()
        assert initiator.connect(target) == str(fake.dev / "nvme0n1")
        initiator.connect(other)
        fake.lose_connection(target.nqn.value)
        assert (fake.sysfs / "class" / "nvme-subsystem" / "nvme-subsys0").is_dir()
        assert initiator.device_for(target.nqn) is None
        assert list(initiator.connections()) == [other.nqn]  # an empty subsystem is none

        assert initiator.connect(target) == str(fake.dev / "nvme0n2")
        assert initiator.device_for(target.nqn) == str(fake.dev / "nvme0n2")
        assert initiator.device_for(other.nqn) == str(fake.dev / "nvme1n1")
        initiator.disconnect(target.nqn)
        assert initiator.device_for(target.nqn) is None
        assert target.nqn not in initiator.connections()
        fake.release(target.nqn.value)
        assert not (fake.sysfs / "class" / "nvme-subsystem" / "nvme-subsys0").exists()
        assert initiator.connect(target) == str(fake.dev / "nvme0n1")


class TestExitStatusAndRetries:
    def test_exit_status_one_from_a_successful_json_connect_is_success(
        self, tmp_path: pathlib.Path
    ) -> None:
        fake = install_fake_nvme(tmp_path, json_exit_status=1)
        target = _target()
        _export(fake, target)
        clock = StepClock()
        device = fake.initiator(clock).connect(target)
        assert device == str(fake.dev / "nvme0n1")
        assert len(fake.calls("connect")) == 1
        assert clock.sleeps == []

    def test_already_connected_without_a_device_yet_waits_for_it(
        self, tmp_path: pathlib.Path
    ) -> None:
        fake = install_fake_nvme(tmp_path, namespace_appears=False)
        target = _target()
        _export(fake, target)
        clock = StepClock()

        def udev_is_slow() -> None:
            if len(clock.sleeps) == 3:
                fake.namespace_appears(target.nqn.value)

        clock.on_sleep.append(udev_is_slow)
        device = fake.initiator(clock, poll_interval=0.25).connect(target)
        assert device == str(fake.dev / "nvme0n1")
        assert clock.sleeps == [0.25, 0.25, 0.25]
        # A second stage finds the connection and its device: no second connect.
        assert fake.initiator(clock).connect(target) == device
        assert len(fake.calls("connect")) == 1

    def test_a_device_that_never_appears_is_unavailable_and_the_connection_undone(
        self, tmp_path: pathlib.Path
    ) -> None:
        fake = install_fake_nvme(tmp_path, namespace_appears=False)
        target = _target()
        _export(fake, target)
        clock = StepClock()
        with pytest.raises(BackendUnavailable, match="no block device appeared within 2 s"):
            fake.initiator(clock, device_timeout=2.0, poll_interval=0.5).connect(target)
        assert sum(clock.sleeps) == pytest.approx(2.0)
        assert fake.controllers(target.nqn.value) == []
        assert fake.calls("disconnect") == [["disconnect", "-n", target.nqn.value]]

    def test_connect_is_retried_three_times_five_seconds_apart(
        self, tmp_path: pathlib.Path
    ) -> None:
        fake = install_fake_nvme(tmp_path, fail_connects=2)
        target = _target()
        _export(fake, target)
        clock = StepClock()
        device = fake.initiator(clock).connect(target)
        assert device == str(fake.dev / "nvme0n1")
        assert len(fake.calls("connect")) == 3
        assert clock.sleeps == [5.0, 5.0]

    def test_an_unreachable_target_is_unavailable_with_the_tools_words(
        self, tmp_path: pathlib.Path
    ) -> None:
        fake = install_fake_nvme(tmp_path, unreachable=["10.0.0.5"])
        target = _target()
        clock = StepClock()
        with pytest.raises(BackendUnavailable, match=r"after 3 attempts.*Connection refused"):
            fake.initiator(clock).connect(target)
        assert len(fake.calls("connect")) == 3
        assert clock.sleeps == [5.0, 5.0]
        assert fake.calls("discover") == []  # nothing to ask a target we cannot reach

    def test_an_unexported_nqn_is_not_found_after_asking_discovery_once(
        self, fake: FakeNvme
    ) -> None:
        target = _target()
        _export(fake, _target("someone-else"))
        clock = StepClock()
        with pytest.raises(VolumeNotFound, match=r"10\.0\.0\.5:4420 does not export it"):
            fake.initiator(clock).connect(target)
        assert len(fake.calls("connect")) == 1
        assert len(fake.calls("discover")) == 1
        assert clock.sleeps == []

    def test_without_discovery_a_refused_nqn_stays_unavailable(
        self, tmp_path: pathlib.Path
    ) -> None:
        fake = install_fake_nvme(tmp_path, discovery=False)
        target = _target()
        clock = StepClock()
        with pytest.raises(BackendUnavailable, match=r"Input/output error"):
            fake.initiator(clock).connect(target)
        assert len(fake.calls("connect")) == 3
        assert len(fake.calls("discover")) == 1

    def test_a_hung_connect_is_killed_and_retried(self, tmp_path: pathlib.Path) -> None:
        fake = install_fake_nvme(tmp_path, hang_connects=1)
        target = _target()
        _export(fake, target)
        clock = StepClock()
        device = fake.initiator(clock, command_timeout=0.5).connect(target)
        assert device == str(fake.dev / "nvme0n1")
        assert len(fake.calls("connect")) == 2
        assert clock.sleeps == [5.0]

    def test_a_disconnect_that_never_takes_is_an_error_once_the_wait_runs_out(
        self, fake: FakeNvme
    ) -> None:
        target = _target()
        _export(fake, target)
        fake.initiator().connect(target)
        clock = StepClock()
        # `true` answers like a disconnect that did nothing: the controller stays in sysfs.
        stuck = fake.initiator(clock, binary="/bin/true", device_timeout=2.0, poll_interval=0.5)
        with pytest.raises(BackendError, match=r"left .* connected"):
            stuck.disconnect(target.nqn)
        assert clock.sleeps == [0.5, 0.5, 0.5, 0.5]
        assert fake.controllers(target.nqn.value) != []

    def test_a_disconnect_is_waited_for_until_sysfs_lets_go(self, fake: FakeNvme) -> None:
        target = _target()
        _export(fake, target)
        initiator = fake.initiator()
        initiator.connect(target)
        clock = StepClock()

        def the_kernel_lets_go() -> None:
            if len(clock.sleeps) == 2:
                initiator.disconnect(target.nqn)

        clock.on_sleep.append(the_kernel_lets_go)
        fake.initiator(clock, binary="/bin/true", poll_interval=0.25).disconnect(target.nqn)
        assert clock.sleeps == [0.25, 0.25]
        assert fake.controllers(target.nqn.value) == []

    def test_a_missing_nvme_binary_is_a_clear_error(self, fake: FakeNvme) -> None:
        target = _target()
        initiator = fake.initiator(binary=str(fake.bin_dir / "no-such-nvme"))
        with pytest.raises(BackendError, match="not installed"):
            initiator.connect(target)


class TestRescanReachesTheKernel:
    def test_rescan_brings_the_namespace_size_up_to_the_target(self, fake: FakeNvme) -> None:
        target = _target()
        _export(fake, target, 32 * MIB)
        initiator = fake.initiator()
        initiator.connect(target)
        size_file = fake.sysfs / "class" / "nvme-subsystem" / "nvme-subsys0" / "nvme0n1" / "size"
        assert size_file.read_text().strip() == str(32 * MIB // 512)
        fake.resize(target.nqn.value, 80 * MIB, target.address, target.port)
        assert size_file.read_text().strip() == str(32 * MIB // 512)
        initiator.rescan(target.nqn)
        assert size_file.read_text().strip() == str(80 * MIB // 512)

    def test_a_target_that_announces_a_resize_needs_no_rescan_and_rescan_still_works(
        self, fake: FakeNvme
    ) -> None:
        target = _target()
        _export(fake, target, 32 * MIB)
        initiator = fake.initiator()
        initiator.connect(target)
        size_file = fake.sysfs / "class" / "nvme-subsystem" / "nvme-subsys0" / "nvme0n1" / "size"
        fake.resize(target.nqn.value, 80 * MIB, target.address, target.port, announce=True)
        assert size_file.read_text().strip() == str(80 * MIB // 512)
        initiator.rescan(target.nqn)
        assert size_file.read_text().strip() == str(80 * MIB // 512)

    def test_rescan_of_a_controller_gone_meanwhile_is_an_error_with_the_tools_words(
        self, fake: FakeNvme
    ) -> None:
        target = _target()
        _export(fake, target)
        initiator = fake.initiator()
        initiator.connect(target)
        # Between sysfs naming the controller and ns-rescan opening it, the device goes.
        (fake.dev / "nvme0").unlink()
        with pytest.raises(BackendError, match="/dev/nvme0: No such file or directory"):
            initiator.rescan(target.nqn)
