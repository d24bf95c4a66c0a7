"""
The nvmet configfs library and the fake tree, against the same expectations as the kernel.

Two implementations: the fake (always) and the kernel's configfs, which runs only inside the
qemu guest of the e2e_nvme tier (the guest loads nvmet; the harness sets RDS_CSI_VM_GUEST=1).
The kernel variant never runs on a host: it would touch a real target's configuration.
"""

from __future__ import annotations

import errno
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rds_csi.emulator.nvmet import (
    DEFAULT_ROOT,
    ConfigfsOps,
    FakeConfigfs,
    KernelConfigfs,
    NvmetConfigfs,
    NvmetError,
    direct_io_works,
)


SHM = Path("/dev/shm")  # tmpfs on the host and in the guest: no O_DIRECT


@dataclass
class Target:
    """One nvmet under test; records what the test made so teardown removes exactly that."""

    nvmet: NvmetConfigfs
    ops: ConfigfsOps
    files: Path
    nqns: list[str] = field(default_factory=list)
    port_ids: list[int] = field(default_factory=list)

    def nqn(self) -> str:
        name = f"nqn.2000-02.com.mikrotik:pvc-{uuid.uuid4()}"
        self.nqns.append(name)
        return name

    def port_id(self) -> int:
        taken = set(self.nvmet.ports()) | set(self.port_ids)
        pid = next(i for i in range(100, 200) if i not in taken)
        self.port_ids.append(pid)
        return pid

    def backing(
        self, name: str = "disk.img", size: int = 64 << 20, where: Path | None = None
    ) -> Path:
        path = (where or self.files) / f"{uuid.uuid4().hex[:8]}-{name}"
        with path.open("wb") as f:
            f.truncate(size)
        return path


def _kernel_target() -> tuple[NvmetConfigfs, ConfigfsOps]:
    nvmet = NvmetConfigfs()
    if not nvmet.available():
        pytest.fail(f"in the guest but {DEFAULT_ROOT} is missing: nvmet was not loaded")
    return nvmet, KernelConfigfs()


IN_GUEST = os.environ.get("RDS_CSI_VM_GUEST") == "1"


# The kernel variant exists only in the guest, where the e2e_nvme tier checks that it ran; on a
# host it would only add a skip per test.
@pytest.fixture(params=["fake", *([pytest.param("kernel", marks=pytest.mark.e2e_nvme)] * IN_GUEST)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "fake":
        ops: ConfigfsOps = FakeConfigfs(tmp_path / "nvmet")
        nvmet = NvmetConfigfs(tmp_path / "nvmet", ops)
    else:
        nvmet, ops = _kernel_target()
    files = tmp_path / "files"
    files.mkdir()
    t = Target(nvmet, ops, files)
    yield t
    for pid in t.port_ids:
        nvmet.remove_port(pid)
    for nqn in t.nqns:
        nvmet.remove_subsystem(nqn)
    for leftover in SHM.glob("*-rdsvm-*.img"):
        leftover.unlink()


def _errno(exc: pytest.ExceptionInfo[OSError]) -> int | None:
    return exc.value.errno


class TestSubsystems:
    def test_a_new_subsystem_allows_any_host_with_the_given_model_and_serial(
        self, target: Target
    ) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn, model="RouterOS-test", serial="MT0123456789")
        assert nqn in target.nvmet.subsystems()
        sub = target.nvmet.root / "subsystems" / nqn
        assert target.ops.read(sub / "attr_allow_any_host").strip() == "1"
        assert target.ops.read(sub / "attr_model").strip() == "RouterOS-test"
        assert target.ops.read(sub / "attr_serial").strip() == "MT0123456789"
        assert target.nvmet.namespaces(nqn) == []

    def test_creating_again_keeps_the_subsystem(self, target: Target) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn, serial="first")
        target.nvmet.create_subsystem(nqn, serial="second")
        sub = target.nvmet.root / "subsystems" / nqn
        assert target.ops.read(sub / "attr_serial").strip() == "first"

    @pytest.mark.parametrize(
        "nqn",
        [
            "nqn.2000-02.com.mikrotik:../../escape",
            "nqn.2000-02.com.mikrotik:a/b",
            "not-an-nqn",
            "nqn.2000-02.com.mikrotik:with space",
            "nqn.2014-08.org.nvmexpress.discovery",
            "nqn." + "a" * 230,
        ],
    )
    def test_bad_nqns_are_refused_before_anything_is_made(self, target: Target, nqn: str) -> None:
        before = target.nvmet.subsystems()
        with pytest.raises(NvmetError, match="NQN"):
            target.nvmet.create_subsystem(nqn)
        assert target.nvmet.subsystems() == before

    def test_a_model_longer_than_40_characters_is_refused(self, target: Target) -> None:
        nqn = target.nqn()
        with pytest.raises(NvmetError, match="model"):
            target.nvmet.create_subsystem(nqn, model="M" * 41)
        assert nqn not in target.nvmet.subsystems()

    def test_the_kernel_refuses_an_overlong_serial_written_directly(self, target: Target) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn)
        with pytest.raises(OSError) as exc:
            target.ops.write(target.nvmet.root / "subsystems" / nqn / "attr_serial", "9" * 21)
        assert _errno(exc) == errno.EINVAL

    def test_the_discovery_subsystem_cannot_be_made_by_mkdir(self, target: Target) -> None:
        with pytest.raises(OSError) as exc:
            target.ops.mkdir(
                target.nvmet.root / "subsystems" / "nqn.2014-08.org.nvmexpress.discovery"
            )
        assert _errno(exc) == errno.EINVAL

    def test_attributes_cannot_be_created_and_objects_only_exist_where_the_kernel_has_them(
        self, target: Target
    ) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn)
        with pytest.raises(OSError) as exc:
            target.ops.write(target.nvmet.root / "subsystems" / nqn / "attr_bogus", "1")
        assert _errno(exc) == errno.ENOENT
        with pytest.raises(OSError) as exc:
            target.ops.mkdir(target.nvmet.root / "bogus")
        assert _errno(exc) == errno.EPERM


class TestNamespaces:
    def test_a_file_backed_namespace_is_enabled_on_its_file(self, target: Target) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn)
        disk = target.backing()
        ns_uuid = uuid.uuid4()
        target.nvmet.add_namespace(nqn, 1, disk, ns_uuid=ns_uuid)
        info = target.nvmet.namespace(nqn, 1)
        assert info is not None
        assert (info.device_path, info.enabled, info.uuid) == (str(disk), True, str(ns_uuid))
        assert target.nvmet.namespaces(nqn) == [1]

    def test_buffered_io_is_chosen_where_direct_io_does_not_work(self, target: Target) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn)
        disk = target.backing("rdsvm-shm.img", where=SHM)
        target.nvmet.add_namespace(nqn, 1, disk)
        info = target.nvmet.namespace(nqn, 1)
        assert info is not None
        assert (info.enabled, info.buffered_io) == (True, not direct_io_works(disk))

    def test_direct_io_on_tmpfs_fails_to_enable_and_leaves_no_namespace(
        self, target: Target
    ) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn)
        disk = target.backing("rdsvm-shm.img", where=SHM)
        if direct_io_works(disk):
            pytest.skip("tmpfs takes O_DIRECT on this kernel (6.6 and later): nothing to refuse")
        with pytest.raises(NvmetError, match=rf"namespace 1 of {re.escape(nqn)}.*enable"):
            target.nvmet.add_namespace(nqn, 1, disk, buffered_io=False)
        assert target.nvmet.namespaces(nqn) == []

    def test_a_missing_backing_file_is_refused(self, target: Target) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn)
        with pytest.raises(NvmetError, match=r"missing\.img"):
            target.nvmet.add_namespace(nqn, 1, target.files / "missing.img")
        assert target.nvmet.namespaces(nqn) == []

    def test_the_kernel_does_not_enable_a_namespace_whose_file_is_gone(
        self, target: Target
    ) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn)
        ns = target.nvmet.root / "subsystems" / nqn / "namespaces" / "1"
        target.ops.mkdir(ns)
        target.ops.write(ns / "device_path", str(target.files / "gone.img"))
        with pytest.raises(OSError) as exc:
            target.ops.write(ns / "enable", "1")
        assert _errno(exc) == errno.ENOENT

    def test_the_same_namespace_again_is_kept_and_a_different_one_refused(
        self, target: Target
    ) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn)
        disk, other = target.backing(), target.backing()
        target.nvmet.add_namespace(nqn, 1, disk)
        target.nvmet.add_namespace(nqn, 1, disk)
        with pytest.raises(NvmetError, match="already exists"):
            target.nvmet.add_namespace(nqn, 1, other)

    def test_the_kernel_refuses_a_new_device_while_enabled(self, target: Target) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn)
        target.nvmet.add_namespace(nqn, 1, target.backing())
        ns = target.nvmet.root / "subsystems" / nqn / "namespaces" / "1"
        with pytest.raises(OSError) as exc:
            target.ops.write(ns / "device_path", str(target.backing()))
        assert _errno(exc) == errno.EBUSY
        with pytest.raises(OSError) as exc:
            target.ops.write(ns / "buffered_io", "1")
        assert _errno(exc) == errno.EINVAL

    @pytest.mark.parametrize("name", ["0", "abc"])
    def test_invalid_namespace_ids_are_refused_by_mkdir(self, target: Target, name: str) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn)
        with pytest.raises(OSError) as exc:
            target.ops.mkdir(target.nvmet.root / "subsystems" / nqn / "namespaces" / name)
        assert _errno(exc) == errno.EINVAL

    def test_namespace_ids_are_validated_by_the_library(self, target: Target) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn)
        with pytest.raises(NvmetError, match="namespace ID"):
            target.nvmet.add_namespace(nqn, 0, target.backing())

    def test_resize_notification_needs_an_enabled_namespace(self, target: Target) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn)
        disk = target.backing()
        target.nvmet.add_namespace(nqn, 1, disk)
        os.truncate(disk, 128 << 20)
        assert target.nvmet.notify_resized(nqn, 1) is True
        ns = target.nvmet.root / "subsystems" / nqn / "namespaces" / "1"
        with pytest.raises(OSError) as exc:
            target.ops.read(ns / "revalidate_size")
        assert _errno(exc) == errno.EACCES
        target.ops.write(ns / "enable", "0")
        with pytest.raises(NvmetError, match="revalidate"):
            target.nvmet.notify_resized(nqn, 1)

    def test_removing_a_namespace_twice_is_fine(self, target: Target) -> None:
        nqn = target.nqn()
        target.nvmet.create_subsystem(nqn)
        target.nvmet.add_namespace(nqn, 1, target.backing())
        target.nvmet.remove_namespace(nqn, 1)
        target.nvmet.remove_namespace(nqn, 1)
        assert target.nvmet.namespaces(nqn) == []


class TestPorts:
    def test_a_tcp_port_exports_and_unexports_a_subsystem(self, target: Target) -> None:
        nqn, pid = target.nqn(), target.port_id()
        target.nvmet.create_subsystem(nqn)
        target.nvmet.create_port(pid, traddr="127.0.0.1", trsvcid=4520)
        target.nvmet.export(pid, nqn)
        target.nvmet.export(pid, nqn)
        info = target.nvmet.port(pid)
        assert info is not None
        assert (info.trtype, info.adrfam, info.traddr, info.trsvcid) == (
            "tcp",
            "ipv4",
            "127.0.0.1",
            "4520",
        )
        assert info.subsystems == (nqn,)
        target.nvmet.unexport(pid, nqn)
        target.nvmet.unexport(pid, nqn)
        info = target.nvmet.port(pid)
        assert info is not None
        assert info.subsystems == ()

    def test_ensure_port_finds_the_port_for_an_address(self, target: Target) -> None:
        pid = target.port_id()
        target.nvmet.create_port(pid, traddr="127.0.0.1", trsvcid=4521)
        assert target.nvmet.ensure_port("127.0.0.1", 4521) == pid
        made = target.nvmet.ensure_port("127.0.0.1", 4522)
        target.port_ids.append(made)
        assert made != pid
        assert target.nvmet.find_port("127.0.0.1", 4522) == made

    def test_a_port_cannot_be_reconfigured_to_another_address(self, target: Target) -> None:
        pid = target.port_id()
        target.nvmet.create_port(pid, traddr="127.0.0.1", trsvcid=4523)
        target.nvmet.create_port(pid, traddr="127.0.0.1", trsvcid=4523)
        with pytest.raises(NvmetError, match="already configured"):
            target.nvmet.create_port(pid, traddr="127.0.0.1", trsvcid=4524)

    @pytest.mark.parametrize(("traddr", "trsvcid"), [("localhost", 4420), ("127.0.0.1", 0)])
    def test_bad_addresses_are_refused(self, target: Target, traddr: str, trsvcid: int) -> None:
        with pytest.raises(NvmetError, match="port"):
            target.nvmet.create_port(target.port_id(), traddr=traddr, trsvcid=trsvcid)

    def test_the_kernel_rules_for_ports_and_links(self, target: Target) -> None:
        nqn, pid = target.nqn(), target.port_id()
        target.nvmet.create_subsystem(nqn)
        port = target.nvmet.root / "ports" / str(pid)
        target.ops.mkdir(port)
        link = port / "subsystems" / nqn
        with pytest.raises(OSError) as exc:  # no transport yet: the port cannot be enabled
            target.ops.symlink(target.nvmet.root / "subsystems" / nqn, link)
        assert _errno(exc) == errno.EINVAL
        with pytest.raises(OSError) as exc:
            target.ops.write(port / "addr_trtype", "bogus")
        assert _errno(exc) == errno.EINVAL
        for attr, value in [
            ("addr_trtype", "tcp"),
            ("addr_adrfam", "ipv4"),
            ("addr_traddr", "127.0.0.1"),
            ("addr_trsvcid", "4525"),
        ]:
            target.ops.write(port / attr, value)
        target.ops.symlink(target.nvmet.root / "subsystems" / nqn, link)
        with pytest.raises(OSError) as exc:  # enabled: the address is fixed
            target.ops.write(port / "addr_trsvcid", "4526")
        assert _errno(exc) == errno.EACCES
        with pytest.raises(OSError) as exc:
            target.ops.rmdir(target.nvmet.root / "subsystems" / nqn)
        assert _errno(exc) == errno.EBUSY
        with pytest.raises(OSError) as exc:
            target.ops.rmdir(port)
        assert _errno(exc) == errno.ENOTEMPTY
        with pytest.raises(OSError) as exc:
            target.ops.unlink(port / "addr_traddr")
        assert _errno(exc) == errno.EPERM

    @pytest.mark.parametrize("name", ["abc", "70000"])
    def test_invalid_port_ids_are_refused_by_mkdir(self, target: Target, name: str) -> None:
        with pytest.raises(OSError) as exc:
            target.ops.mkdir(target.nvmet.root / "ports" / name)
        assert _errno(exc) == errno.EINVAL


class TestTeardown:
    def test_removing_a_subsystem_unexports_it_and_removes_its_namespaces(
        self, target: Target
    ) -> None:
        nqn, pid = target.nqn(), target.port_id()
        target.nvmet.create_subsystem(nqn)
        target.nvmet.add_namespace(nqn, 1, target.backing())
        target.nvmet.add_namespace(nqn, 2, target.backing())
        target.nvmet.create_port(pid, traddr="127.0.0.1", trsvcid=4527)
        target.nvmet.export(pid, nqn)
        target.nvmet.remove_subsystem(nqn)
        assert nqn not in target.nvmet.subsystems()
        info = target.nvmet.port(pid)
        assert info is not None
        assert info.subsystems == ()
        target.nvmet.remove_subsystem(nqn)

    def test_removing_a_port_unexports_what_it_carries(self, target: Target) -> None:
        nqn, pid = target.nqn(), target.port_id()
        target.nvmet.create_subsystem(nqn)
        target.nvmet.create_port(pid, traddr="127.0.0.1", trsvcid=4528)
        target.nvmet.export(pid, nqn)
        target.nvmet.remove_port(pid)
        target.nvmet.remove_port(pid)
        assert pid not in target.nvmet.ports()
        assert nqn in target.nvmet.subsystems()


def test_the_fake_records_each_accepted_resize_notification(tmp_path: Path) -> None:
    fake = FakeConfigfs(tmp_path / "nvmet")
    nvmet = NvmetConfigfs(tmp_path / "nvmet", fake)
    nqn = "nqn.2000-02.com.mikrotik:pvc-11111111-2222-3333-4444-555555555555"
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 4096)
    nvmet.create_subsystem(nqn)
    nvmet.add_namespace(nqn, 1, disk)
    assert fake.resize_events == []
    assert nvmet.notify_resized(nqn, 1) is True
    assert fake.resize_events == [(nqn, 1)]


def test_a_kernel_without_revalidate_size_is_reported_not_guessed(tmp_path: Path) -> None:
    fake = FakeConfigfs(tmp_path / "nvmet")
    nvmet = NvmetConfigfs(tmp_path / "nvmet", fake)
    nqn = "nqn.2000-02.com.mikrotik:pvc-11111111-2222-3333-4444-555555555555"
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 4096)
    nvmet.create_subsystem(nqn)
    nvmet.add_namespace(nqn, 1, disk)
    # What a kernel before 5.15 looks like: the attribute does not exist.
    (tmp_path / "nvmet" / "subsystems" / nqn / "namespaces" / "1" / "revalidate_size").unlink()
    assert nvmet.notify_resized(nqn, 1) is False
    assert fake.resize_events == []
