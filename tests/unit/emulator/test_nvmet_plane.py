"""
The emulator's kernel data plane, driven by RouterOS commands, against the fake nvmet configfs.

The same plane runs against the real kernel target inside the qemu guest (tests/vm/guest); here
the fake's rules (measured on the kernel) check what it asks of configfs: one subsystem per
exported disk named by its NQN, namespace 1 on the disk's image, a TCP port on the data address
and the disk's port, resized in place, moved, withdrawn, adopted after a restart.
"""

from __future__ import annotations

import json
import pathlib
from types import SimpleNamespace

import pytest

from rds_csi.domain import Size
from rds_csi.emulator import Emulator, EmulatorConfig
from rds_csi.emulator.nvmet import FakeConfigfs, NvmetConfigfs
from rds_csi.emulator.nvmet_plane import (
    CompositeDataPlane,
    DataPlaneError,
    NvmetDataPlane,
    open_data_plane,
)


GIB = 1 << 30
VID = "pvc-11111111-2222-3333-4444-555555555555"
OTHER = "pvc-99999999-2222-3333-4444-555555555555"
NQN = f"nqn.2000-02.com.mikrotik:{VID}"
OTHER_NQN = f"nqn.2000-02.com.mikrotik:{OTHER}"
ADDRESS = "127.0.0.1"


def add_line(slot: str = VID, size: str = "1G", port: int = 4420, nqn: str | None = None) -> str:
    nqn = nqn or f"nqn.2000-02.com.mikrotik:{slot}"
    return (
        f'/disk add type=file file-path="storage-pool/vols/{slot}.img" file-size={size} '
        f'slot="{slot}" nvme-tcp-export=yes nvme-tcp-server-port={port} '
        f'nvme-tcp-server-nqn="{nqn}"'
    )


class Rig:
    """An emulator whose data plane is the exports file plus nvmet on a fake configfs."""

    def __init__(self, tmp: pathlib.Path) -> None:
        self.tmp = tmp
        self.fake = FakeConfigfs(tmp / "configfs")
        self.nvmet = NvmetConfigfs(tmp / "configfs", self.fake)
        self.emulator = self.start()

    def start(self) -> Emulator:
        config = EmulatorConfig(data_dir=self.tmp / "rds", pool_size=Size.from_quantity("100Gi"))
        plane = open_data_plane(
            "nvmet", config.data_dir, ADDRESS, nvmet_root=self.fake.root, ops=self.fake
        )
        return Emulator(config, data_plane=plane)

    def run(self, line: str) -> str:
        output, ok = self.emulator.console.run(line)
        assert ok, output
        return output

    def image(self, slot: str = VID) -> pathlib.Path:
        return self.emulator.state.data_dir / "storage-pool" / "vols" / f"{slot}.img"

    def links(self) -> dict[str, tuple[str, ...]]:
        """``traddr:trsvcid`` -> the NQNs linked to that port."""
        found = {}
        for port_id in self.nvmet.ports():
            info = self.nvmet.port(port_id)
            assert info is not None
            assert (info.trtype, info.adrfam) == ("tcp", "ipv4")
            found[f"{info.traddr}:{info.trsvcid}"] = tuple(sorted(info.subsystems))
        return found

    def exports_file(self) -> dict[str, object]:
        doc = json.loads((self.emulator.state.data_dir / "nvme-exports.json").read_text())
        exports: dict[str, object] = doc["exports"]
        return exports


@pytest.fixture
def rig(tmp_path: pathlib.Path) -> Rig:
    return Rig(tmp_path)


def test_an_exported_disk_is_a_subsystem_with_its_image_on_the_data_port(rig: Rig) -> None:
    rig.run(add_line())
    assert rig.nvmet.subsystems() == [NQN]
    namespace = rig.nvmet.namespace(NQN, 1)
    assert namespace is not None
    assert namespace.enabled
    assert namespace.device_path == str(rig.image())
    assert rig.links() == {"127.0.0.1:4420": (NQN,)}
    assert list(rig.exports_file()) == [NQN]  # the exports file is kept as well


def test_a_resize_grows_the_image_then_revalidates_the_namespace(rig: Rig) -> None:
    rig.run(add_line())
    before = rig.nvmet.namespace(NQN, 1)
    rig.run(f'/disk set [find slot="{VID}"] file-size=2G')
    assert rig.image().stat().st_size == 2 * GIB
    assert rig.fake.resize_events == [(NQN, 1)]
    assert rig.nvmet.namespace(NQN, 1) == before  # in place: connected hosts keep it


def test_a_port_change_moves_the_export_and_drops_the_port_left_empty(rig: Rig) -> None:
    rig.run(add_line())
    rig.run(f'/disk set [find slot="{VID}"] nvme-tcp-server-port=4421')
    assert rig.links() == {"127.0.0.1:4421": (NQN,)}


def test_a_port_shared_by_two_disks_stays_until_the_last_goes(rig: Rig) -> None:
    rig.run(add_line())
    rig.run(add_line(OTHER))
    assert rig.links() == {"127.0.0.1:4420": tuple(sorted((NQN, OTHER_NQN)))}
    rig.run(f'/disk remove [find slot="{VID}"]')
    assert rig.links() == {"127.0.0.1:4420": (OTHER_NQN,)}
    assert rig.nvmet.subsystems() == [OTHER_NQN]
    rig.run(f'/disk remove [find slot="{OTHER}"]')
    assert rig.links() == {}
    assert rig.nvmet.subsystems() == []


def test_export_off_withdraws_and_on_brings_it_back(rig: Rig) -> None:
    rig.run(add_line())
    rig.run(f'/disk set [find slot="{VID}"] nvme-tcp-export=no')
    assert rig.nvmet.subsystems() == []
    assert rig.links() == {}
    assert rig.exports_file() == {}
    rig.run(f'/disk set [find slot="{VID}"] nvme-tcp-export=yes')
    assert rig.links() == {"127.0.0.1:4420": (NQN,)}


def test_an_nqn_change_replaces_the_subsystem(rig: Rig) -> None:
    rig.run(add_line())
    renamed = "nqn.2000-02.com.mikrotik:renamed"
    rig.run(f'/disk set [find slot="{VID}"] nvme-tcp-server-nqn="{renamed}"')
    assert rig.nvmet.subsystems() == [renamed]
    assert rig.links() == {"127.0.0.1:4420": (renamed,)}


def test_disk_remove_withdraws_and_frees_the_image(rig: Rig) -> None:
    rig.run(add_line())
    rig.run(f'/disk remove [find slot="{VID}"]')
    assert rig.nvmet.subsystems() == []
    assert rig.links() == {}
    assert rig.exports_file() == {}
    rig.run(f'/file remove [find name="storage-pool/vols/{VID}.img"]')
    assert not rig.image().exists()


def test_a_restart_adopts_the_kernel_state_without_disturbing_it(rig: Rig) -> None:
    rig.run(add_line())
    namespace = rig.nvmet.namespace(NQN, 1)
    rig.emulator.stop()  # the process dies without withdrawing: the kernel keeps serving
    rig.emulator = rig.start()
    assert rig.nvmet.namespace(NQN, 1) == namespace  # same UUID: not re-created
    assert rig.links() == {"127.0.0.1:4420": (NQN,)}
    rig.run(f'/disk remove [find slot="{VID}"]')
    assert rig.nvmet.subsystems() == []
    # A port this run did not make may be someone else's: it stays, linked to nothing (the
    # kernel stops listening on a port without subsystems).
    assert rig.links() == {"127.0.0.1:4420": ()}


def test_close_withdraws_everything_but_leaves_a_port_it_did_not_make(rig: Rig) -> None:
    foreign = rig.nvmet.ensure_port(ADDRESS, 4420)  # someone else's, before the emulator's exports
    rig.run(add_line())
    rig.run(add_line(OTHER, port=4421))
    rig.emulator.close()
    assert rig.nvmet.subsystems() == []
    assert rig.nvmet.ports() == [foreign]
    assert rig.nvmet.port(foreign) is not None


def test_a_disk_the_target_refuses_is_not_added(rig: Rig) -> None:
    # With no NQN prefix the kernel target cannot name a subsystem after it.
    with pytest.raises(DataPlaneError, match=r"cannot export bad-slot .*NQN 'bad'"):
        rig.emulator.console.run(add_line("bad-slot", nqn="bad"))
    assert [d.slot for d in rig.emulator.state.disks()] == []
    assert rig.nvmet.subsystems() == []
    assert rig.exports_file() == {}


def test_the_server_answers_a_data_plane_failure_as_a_routeros_failure(rig: Rig) -> None:
    session = SimpleNamespace(width=80)
    output, ok = rig.emulator._run(add_line("bad-slot", nqn="bad"), session)  # type: ignore[arg-type]
    assert not ok
    assert output.startswith("failure: cannot export bad-slot over NVMe/TCP")


def test_json_is_the_default_and_auto_without_nvmet_is_json(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "no-nvmet"
    plane = open_data_plane("json", tmp_path, ADDRESS, nvmet_root=missing)
    assert not isinstance(plane, CompositeDataPlane)
    plane = open_data_plane("auto", tmp_path, ADDRESS, nvmet_root=missing, load_modules=False)
    assert not isinstance(plane, CompositeDataPlane)
    with pytest.raises(ValueError, match="kernel NVMe target is not available"):
        open_data_plane("nvmet", tmp_path, ADDRESS, nvmet_root=missing, load_modules=False)


def test_auto_with_nvmet_serves_through_it(tmp_path: pathlib.Path) -> None:
    fake = FakeConfigfs(tmp_path / "configfs")
    plane = open_data_plane("auto", tmp_path, ADDRESS, nvmet_root=fake.root, ops=fake)
    assert isinstance(plane, CompositeDataPlane)
    assert any(isinstance(p, NvmetDataPlane) for p in plane.planes)


@pytest.mark.parametrize(("kind", "address"), [("nvmet", "rds.example"), ("fast", ADDRESS)])
def test_a_bad_kind_or_address_is_refused(tmp_path: pathlib.Path, kind: str, address: str) -> None:
    fake = FakeConfigfs(tmp_path / "configfs")
    with pytest.raises(ValueError, match=r"rds\.example' is not an IP|'fast' is not one of"):
        open_data_plane(kind, tmp_path, address, nvmet_root=fake.root, ops=fake)
