"""Orphans: found after a grace, told, counted, removed only when asked; never a foreign NQN."""

from __future__ import annotations

import pathlib

import attrs
import pytest

from rds_csi.adapters.fake_node import DeviceTable, FakeFilesystem, FakeMounter, FakeNvmeInitiator
from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.adapters.kubernetes import FakeKubernetes
from rds_csi.adapters.mount import KubeletRecords
from rds_csi.application.events import ORPHAN_FOUND, EventRecorder
from rds_csi.application.kubernetes import PersistentVolumeInfo
from rds_csi.application.locks import KeyedLocks
from rds_csi.application.orphans import (
    DISK,
    SESSION,
    CleanOrphans,
    FindOrphans,
    Orphan,
    OrphanReconciler,
    Sightings,
)
from rds_csi.domain import DiskPath, Nqn, NvmeTarget, Size, Volume, VolumeId
from rds_csi.domain.identity import DEFAULT_NQN_PREFIX
from tests.unit.application.test_attachment import FakeClock


GRACE = 600.0
FOREIGN = Nqn("nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427")
FOREIGN_OURS_SHAPED = Nqn(f"nqn.2019-01.io.other:{VolumeId.from_name('theirs')}")


@attrs.define
class Gauges:
    counts: dict[str, int] = attrs.field(factory=dict)

    def orphans(self, kind: str, count: int) -> None:
        self.counts[kind] = count


def _disk(rds: InMemoryRds, name: str) -> VolumeId:
    vid = VolumeId.from_name(name)
    rds.create_volume(
        Volume(
            vid,
            Size(1 << 30),
            DiskPath.parse(f"/storage-pool/metal-csi/{vid}.img"),
            Nqn.for_volume(vid),
        )
    )
    return vid


@attrs.define
class Controller:
    rds: InMemoryRds
    k8s: FakeKubernetes
    clock: FakeClock
    gauges: Gauges
    find: FindOrphans

    def reconciler(self, *, delete: bool = False, identity: str = "") -> OrphanReconciler:
        return OrphanReconciler(
            self.find,
            Sightings(self.clock, GRACE),
            interval=60,
            clean=CleanOrphans(self.find, backend=self.rds),
            delete=delete,
            events=EventRecorder(self.k8s, self.clock),
            metrics=self.gauges,
            kubernetes=self.k8s,
            identity=identity,
        )


@pytest.fixture
def controller() -> Controller:
    rds, k8s, clock = InMemoryRds(), FakeKubernetes(), FakeClock()
    find = FindOrphans(nqn_prefix=DEFAULT_NQN_PREFIX, backend=rds, kubernetes=k8s)
    return Controller(rds, k8s, clock, Gauges(), find)


def test_a_disk_without_a_pv_is_an_orphan_only_after_the_grace(controller: Controller) -> None:
    owned = _disk(controller.rds, "owned")
    controller.k8s.put_persistent_volume(PersistentVolumeInfo("pv-owned", str(owned)))
    lost = _disk(controller.rds, "lost")
    reconciler = controller.reconciler()
    assert reconciler.check() == []  # just seen: maybe a CreateVolume whose PV is on its way
    assert controller.gauges.counts == {DISK: 0}
    controller.clock.now += GRACE - 1
    assert reconciler.check() == []
    controller.clock.now += 1
    found = reconciler.check()
    assert [o.name for o in found] == [str(lost)]
    assert controller.gauges.counts == {DISK: 1}
    assert [e.reason for e in controller.k8s.events] == [ORPHAN_FOUND]
    assert controller.k8s.events[0].about.name == str(lost)
    assert "nothing is deleted" in controller.k8s.events[0].message
    # Reported, never deleted by default.
    assert {str(v.volume_id) for v in controller.rds.list_volumes()} == {str(owned), str(lost)}


def test_a_pv_appearing_resets_the_clock(controller: Controller) -> None:
    vid = _disk(controller.rds, "slow-provisioner")
    reconciler = controller.reconciler()
    reconciler.check()
    controller.clock.now += GRACE / 2
    controller.k8s.put_persistent_volume(PersistentVolumeInfo("pv", str(vid)))
    assert reconciler.check() == []
    controller.clock.now += GRACE
    assert reconciler.check() == []
    assert controller.gauges.counts == {DISK: 0}


def test_delete_enabled_removes_the_orphan_disk(controller: Controller) -> None:
    lost = _disk(controller.rds, "lost")
    reconciler = controller.reconciler(delete=True)
    reconciler.check()
    controller.clock.now += GRACE
    assert [o.name for o in reconciler.check()] == [str(lost)]
    assert controller.rds.list_volumes() == []
    assert "it is deleted now" in controller.k8s.events[0].message


def test_clean_checks_again_and_spares_a_disk_that_got_its_pv(controller: Controller) -> None:
    vid = _disk(controller.rds, "adopted")
    (orphan,) = controller.find.disks()
    controller.k8s.put_persistent_volume(PersistentVolumeInfo("pv", str(vid)))
    (result,) = CleanOrphans(controller.find, backend=controller.rds)([orphan])
    assert "no longer an orphan" in result.error
    assert len(controller.rds.list_volumes()) == 1


def test_only_the_lease_holder_reports(controller: Controller) -> None:
    _disk(controller.rds, "lost")
    one = controller.reconciler(identity="replica-1")
    two = controller.reconciler(identity="replica-2")
    assert one.leading()
    assert not two.leading()
    controller.k8s.leases["rds-csi-orphans"] = ("replica-1", 0.0)  # it stopped renewing
    assert two.leading()
    assert not one.leading()


@attrs.define
class Node:
    initiator: FakeNvmeInitiator
    mounter: FakeMounter
    filesystem: FakeFilesystem
    kubelet_dir: pathlib.Path
    find: FindOrphans


@pytest.fixture
def node(tmp_path: pathlib.Path) -> Node:
    devices = DeviceTable()
    initiator = FakeNvmeInitiator(devices)
    mounter = FakeMounter(devices)
    filesystem = FakeFilesystem(devices, mounter)
    find = FindOrphans(
        nqn_prefix=DEFAULT_NQN_PREFIX,
        initiator=initiator,
        mounter=mounter,
        filesystem=filesystem,
        kubelet=KubeletRecords(str(tmp_path), "rds.csi.srvlab.io"),
    )
    return Node(initiator, mounter, filesystem, tmp_path, find)


def _connect(node: Node, nqn: Nqn) -> str:
    return node.initiator.connect(NvmeTarget("192.0.2.1", 4420, nqn))


def test_foreign_sessions_are_never_orphans_nor_touched(node: Node) -> None:
    root = _connect(node, FOREIGN)
    other = _connect(node, FOREIGN_OURS_SHAPED)  # ends in a volume ID, but not our prefix
    ours = Nqn.for_volume(VolumeId.from_name("lost"))
    _connect(node, ours)
    assert [o.name for o in node.find.sessions()] == [str(ours)]
    results = CleanOrphans(node.find, initiator=node.initiator)(
        [Orphan(SESSION, str(FOREIGN), root), Orphan(SESSION, str(FOREIGN_OURS_SHAPED), other)]
    )
    assert all("no longer an orphan" in r.error for r in results)
    assert node.initiator.device_for(FOREIGN) == root
    assert node.initiator.device_for(FOREIGN_OURS_SHAPED) == other


def test_a_session_mounted_or_known_to_kubelet_is_not_an_orphan(node: Node) -> None:
    mounted = VolumeId.from_name("mounted")
    staged_block = VolumeId.from_name("staged-block")
    lost = VolumeId.from_name("lost")
    device = _connect(node, Nqn.for_volume(mounted))
    node.filesystem.make(device, "ext4")
    target = node.kubelet_dir / "plugins/kubernetes.io/csi/rds.csi.srvlab.io/abc/globalmount"
    target.mkdir(parents=True)
    node.mounter.mount(device, str(target), "ext4", [])
    _connect(node, Nqn.for_volume(staged_block))
    record = node.kubelet_dir / "plugins/kubernetes.io/csi/volumeDevices/pv-b/data"
    record.mkdir(parents=True)
    (record / "vol_data.json").write_text(
        f'{{"driverName": "rds.csi.srvlab.io", "volumeHandle": "{staged_block}"}}'
    )
    foreign_record = node.kubelet_dir / "pods/u1/volumes/kubernetes.io~csi/pv-x"
    foreign_record.mkdir(parents=True)
    (foreign_record / "vol_data.json").write_text(
        f'{{"driverName": "other.csi.example.com", "volumeHandle": "{lost}"}}'
    )
    _connect(node, Nqn.for_volume(lost))
    (orphan,) = node.find.sessions()
    assert orphan.name == str(Nqn.for_volume(lost))
    (result,) = CleanOrphans(node.find, initiator=node.initiator)([orphan])
    assert result.error == ""
    assert node.initiator.device_for(Nqn.for_volume(lost)) is None
    assert node.initiator.device_for(Nqn.for_volume(mounted)) == device
    assert node.initiator.device_for(Nqn.for_volume(staged_block)) is not None


def test_disks_outside_the_volume_path_are_never_candidates(controller: Controller) -> None:
    # Another cluster on the same RDS keeps its disks in a directory of its own.
    ours = _disk(controller.rds, "ours")
    theirs = VolumeId.from_name("theirs")
    controller.rds.create_volume(
        Volume(
            theirs,
            Size(1 << 30),
            DiskPath.parse(f"/storage-pool/other-cluster/{theirs}.img"),
            Nqn.for_volume(theirs),
        )
    )
    find = FindOrphans(
        nqn_prefix=DEFAULT_NQN_PREFIX,
        backend=controller.rds,
        kubernetes=controller.k8s,
        volume_path="/storage-pool/metal-csi",
    )
    assert [o.name for o in find.disks()] == [str(ours)]


def test_each_orphan_is_logged_once_and_told_every_pass(
    controller: Controller, caplog: pytest.LogCaptureFixture
) -> None:
    lost = _disk(controller.rds, "lost")
    reconciler = controller.reconciler()
    reconciler.check()
    controller.clock.now += GRACE
    reconciler.check()
    controller.clock.now += 3600  # past the recorder's rate limit
    reconciler.check()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("OrphanFound")]
    assert len(lines) == 1
    assert str(lost) in lines[0]
    assert [e.reason for e in controller.k8s.events] == [ORPHAN_FOUND, ORPHAN_FOUND]


def test_forgotten_sightings_start_the_grace_again(controller: Controller) -> None:
    _disk(controller.rds, "lost")
    sightings = Sightings(controller.clock, GRACE)
    find = controller.find
    assert sightings.confirm(find.disks(), [DISK]) == []
    controller.clock.now += GRACE
    sightings.forget()  # e.g. another replica held the Lease meanwhile
    assert sightings.confirm(find.disks(), [DISK]) == []
    controller.clock.now += GRACE
    assert len(sightings.confirm(find.disks(), [DISK])) == 1


def test_a_disk_whose_volume_is_being_created_is_not_removed(controller: Controller) -> None:
    # A long restore or clone: CreateVolume holds the volume's lock and no PV exists yet.
    locks = KeyedLocks()
    lost = _disk(controller.rds, "restoring")
    (orphan,) = controller.find.disks()
    clean = CleanOrphans(controller.find, backend=controller.rds, locks=locks)
    with locks.hold(str(lost)):
        (result,) = clean([orphan])
    assert "in progress" in result.error
    assert len(controller.rds.list_volumes()) == 1
    (result,) = clean([orphan])
    assert result.error == ""
    assert controller.rds.list_volumes() == []
