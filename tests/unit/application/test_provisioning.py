"""The controller use cases against the in-memory RDS."""

from __future__ import annotations

import logging
import threading

import pytest

from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.application.locks import KeyedLocks
from rds_csi.application.provisioning import (
    CreateVolume,
    DeleteVolume,
    ExpandVolume,
    GetCapacity,
    GetVolume,
    ListVolumes,
    ValidateVolumeCapabilities,
)
from rds_csi.domain import (
    AccessMode,
    BackendUnavailable,
    CapacityExhausted,
    CapacityRange,
    InvalidArgument,
    InvalidPageToken,
    OperationInProgress,
    OutOfRange,
    Size,
    UnsupportedCapability,
    VolumeCapability,
    VolumeId,
    VolumeIncompatible,
    VolumeNotFound,
    VolumeParameters,
)
from rds_csi.domain.size import GIB, MIB, TIB


RWO = [VolumeCapability.mount()]
PARAMS = {"rdsAddress": "10.0.0.1"}


@pytest.fixture
def rds() -> InMemoryRds:
    return InMemoryRds(pool_size=Size(100 * GIB))


@pytest.fixture
def locks() -> KeyedLocks:
    return KeyedLocks()


@pytest.fixture
def create(rds: InMemoryRds, locks: KeyedLocks) -> CreateVolume:
    return CreateVolume(rds, locks, VolumeParameters())


class TestCreateVolume:
    def test_creates_an_exported_disk_named_after_the_request(
        self, create: CreateVolume, rds: InMemoryRds
    ) -> None:
        made = create("pvc-a", CapacityRange(required=5 * GIB), RWO, PARAMS)
        vid = VolumeId.from_name("pvc-a")
        assert made.volume.volume_id == vid
        assert rds.get_volume(vid).size == Size(5 * GIB)
        assert made.volume.exported
        ctx = made.context.to_mapping()
        assert ctx["nqn"] == f"nqn.2000-02.com.mikrotik:{vid}"
        assert ctx["volumePath"] == f"/storage-pool/metal-csi/{vid}.img"
        assert ctx["rdsAddress"] == ctx["nvmeAddress"] == "10.0.0.1"

    def test_repeat_returns_the_same_volume_without_a_second_disk(
        self, create: CreateVolume, rds: InMemoryRds
    ) -> None:
        first = create("pvc-a", CapacityRange(required=5 * GIB), RWO, PARAMS)
        second = create("pvc-a", CapacityRange(required=5 * GIB), RWO, PARAMS)
        assert first == second
        assert len(rds.list_volumes()) == 1

    def test_repeat_with_a_range_the_disk_satisfies_is_fine(self, create: CreateVolume) -> None:
        create("pvc-a", CapacityRange(required=5 * GIB), RWO, PARAMS)
        again = create("pvc-a", CapacityRange(required=2 * GIB, limit=8 * GIB), RWO, PARAMS)
        assert again.volume.size == Size(5 * GIB)

    def test_repeat_with_a_larger_size_is_already_exists(self, create: CreateVolume) -> None:
        create("pvc-a", CapacityRange(required=5 * GIB), RWO, PARAMS)
        with pytest.raises(VolumeIncompatible, match="outside the requested range"):
            create("pvc-a", CapacityRange(required=6 * GIB), RWO, PARAMS)

    def test_repeat_with_another_path_is_already_exists(self, create: CreateVolume) -> None:
        create("pvc-a", CapacityRange(required=5 * GIB), RWO, PARAMS)
        with pytest.raises(VolumeIncompatible, match="file"):
            create("pvc-a", CapacityRange(), RWO, {**PARAMS, "volumePath": "/other"})

    def test_rounds_up_and_honours_the_limit(self, create: CreateVolume) -> None:
        made = create("pvc-a", CapacityRange(required=GIB + 1, limit=2 * GIB), RWO, PARAMS)
        assert made.volume.size == Size(GIB + MIB)
        with pytest.raises(OutOfRange):
            create("pvc-b", CapacityRange(required=GIB + 1, limit=GIB + 2), RWO, PARAMS)

    def test_unknown_parameters_are_logged_not_refused(
        self, create: CreateVolume, caplog: pytest.LogCaptureFixture
    ) -> None:
        params = {**PARAMS, "rdsUser": "x", "csi.storage.k8s.io/pvc/name": "data"}
        with caplog.at_level(logging.WARNING):
            assert create("pvc-a", CapacityRange(), RWO, params).volume.exported
        assert "ignoring unknown StorageClass parameters 'rdsUser'" in caplog.text
        assert "pvc/name" not in caplog.text

    def test_pool_exhaustion_is_capacity_exhausted_and_leaves_nothing(
        self, create: CreateVolume, rds: InMemoryRds
    ) -> None:
        with pytest.raises(CapacityExhausted, match="not enough space"):
            create("pvc-a", CapacityRange(required=TIB), RWO, PARAMS)
        assert rds.list_volumes() == []

    def test_bad_input_fails_before_anything_is_made(
        self, create: CreateVolume, rds: InMemoryRds
    ) -> None:
        with pytest.raises(InvalidArgument, match="name"):
            create("", CapacityRange(), RWO, PARAMS)
        with pytest.raises(InvalidArgument, match="control character"):
            create("a\x01b", CapacityRange(), RWO, PARAMS)
        with pytest.raises(UnsupportedCapability):
            create("x", CapacityRange(), [VolumeCapability.mount(AccessMode(5))], PARAMS)
        with pytest.raises(InvalidArgument, match=r"parameters\.nvmePort"):
            create("x", CapacityRange(), RWO, {**PARAMS, "nvmePort": "x"})
        with pytest.raises(InvalidArgument, match=r"parameters\.rdsAddress"):
            create("x", CapacityRange(), RWO, {})
        assert rds.calls == []

    def test_concurrent_create_of_one_name_is_aborted_not_raced(
        self, create: CreateVolume, rds: InMemoryRds, locks: KeyedLocks
    ) -> None:
        vid = VolumeId.from_name("pvc-a")
        with locks.hold(str(vid)), pytest.raises(OperationInProgress):
            create("pvc-a", CapacityRange(), RWO, PARAMS)
        assert rds.list_volumes() == []

    def test_many_threads_one_name_make_exactly_one_disk(
        self, create: CreateVolume, rds: InMemoryRds
    ) -> None:
        rds.faults.latency = 0.01
        outcomes: list[str] = []

        def worker() -> None:
            try:
                create("pvc-a", CapacityRange(), RWO, PARAMS)
                outcomes.append("ok")
            except OperationInProgress:
                outcomes.append("aborted")

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert "ok" in outcomes
        assert len(rds.list_volumes()) == 1

    def test_backend_outage_surfaces_as_unavailable_and_a_retry_succeeds(
        self, create: CreateVolume, rds: InMemoryRds
    ) -> None:
        rds.faults.fail_next(1, operations={"create_volume"})
        with pytest.raises(BackendUnavailable):
            create("pvc-a", CapacityRange(), RWO, PARAMS)
        assert create("pvc-a", CapacityRange(), RWO, PARAMS).volume.exported


class TestDeleteVolume:
    def test_deletes_and_is_idempotent(
        self, create: CreateVolume, rds: InMemoryRds, locks: KeyedLocks
    ) -> None:
        made = create("pvc-a", CapacityRange(), RWO, PARAMS)
        delete = DeleteVolume(rds, locks)
        delete(str(made.volume.volume_id))
        delete(str(made.volume.volume_id))
        assert rds.list_volumes() == []

    def test_foreign_ids_are_success_and_never_reach_the_backend(
        self, rds: InMemoryRds, locks: KeyedLocks
    ) -> None:
        DeleteVolume(rds, locks)("vol-from-elsewhere")
        assert rds.calls == []

    def test_malformed_ids_are_invalid(self, rds: InMemoryRds, locks: KeyedLocks) -> None:
        with pytest.raises(InvalidArgument):
            DeleteVolume(rds, locks)("pvc-x; /system reboot")
        with pytest.raises(InvalidArgument, match="required"):
            DeleteVolume(rds, locks)("")


class TestExpandVolume:
    def test_grows_and_asks_the_node_to_grow_the_filesystem(
        self, create: CreateVolume, rds: InMemoryRds, locks: KeyedLocks
    ) -> None:
        vid = str(create("pvc-a", CapacityRange(required=GIB), RWO, PARAMS).volume.volume_id)
        out = ExpandVolume(rds, locks)(vid, CapacityRange(required=3 * GIB))
        assert out.size == Size(3 * GIB)
        assert out.node_expansion_required
        assert rds.get_volume(VolumeId(vid)).size == Size(3 * GIB)

    def test_block_volumes_need_no_node_step(
        self, create: CreateVolume, rds: InMemoryRds, locks: KeyedLocks
    ) -> None:
        vid = str(create("pvc-a", CapacityRange(), RWO, PARAMS).volume.volume_id)
        out = ExpandVolume(rds, locks)(vid, CapacityRange(2 * GIB), VolumeCapability.block())
        assert not out.node_expansion_required

    def test_never_shrinks_and_a_smaller_request_is_success(
        self, create: CreateVolume, rds: InMemoryRds, locks: KeyedLocks
    ) -> None:
        vid = str(create("pvc-a", CapacityRange(required=4 * GIB), RWO, PARAMS).volume.volume_id)
        rds.calls.clear()
        out = ExpandVolume(rds, locks)(vid, CapacityRange(required=2 * GIB))
        assert out.size == Size(4 * GIB)
        assert "resize_volume" not in rds.calls

    def test_limit_below_current_size_is_out_of_range(
        self, create: CreateVolume, rds: InMemoryRds, locks: KeyedLocks
    ) -> None:
        vid = str(create("pvc-a", CapacityRange(required=4 * GIB), RWO, PARAMS).volume.volume_id)
        with pytest.raises(OutOfRange, match="never shrink"):
            ExpandVolume(rds, locks)(vid, CapacityRange(limit=2 * GIB))

    def test_unknown_volume_and_missing_range(self, rds: InMemoryRds, locks: KeyedLocks) -> None:
        expand = ExpandVolume(rds, locks)
        with pytest.raises(VolumeNotFound):
            expand(str(VolumeId.from_name("nope")), CapacityRange(required=GIB))
        with pytest.raises(InvalidArgument, match="capacity_range"):
            expand(str(VolumeId.from_name("nope")), CapacityRange())

    def test_no_room_to_grow(
        self, create: CreateVolume, rds: InMemoryRds, locks: KeyedLocks
    ) -> None:
        vid = str(create("pvc-a", CapacityRange(), RWO, PARAMS).volume.volume_id)
        with pytest.raises(CapacityExhausted):
            ExpandVolume(rds, locks)(vid, CapacityRange(required=200 * GIB))


class TestValidateAndGet:
    def test_confirms_supported_capabilities(self, create: CreateVolume, rds: InMemoryRds) -> None:
        vid = str(create("pvc-a", CapacityRange(), RWO, PARAMS).volume.volume_id)
        validate = ValidateVolumeCapabilities(rds, VolumeParameters())
        assert validate(vid, RWO, {}).confirmed
        no = validate(vid, [VolumeCapability.mount(AccessMode.MULTI_NODE_MULTI_WRITER)], {})
        assert not no.confirmed
        assert "raw block" in no.message
        assert GetVolume(rds)(vid).volume_id == VolumeId(vid)

    def test_unknown_volume_is_not_found(self, rds: InMemoryRds) -> None:
        with pytest.raises(VolumeNotFound):
            ValidateVolumeCapabilities(rds, VolumeParameters())(
                str(VolumeId.from_name("x")), RWO, {}
            )


class TestListVolumes:
    def test_pages_through_every_volume_once(self, create: CreateVolume, rds: InMemoryRds) -> None:
        made = {
            str(create(f"pvc-{i}", CapacityRange(), RWO, PARAMS).volume.volume_id) for i in range(7)
        }
        listing = ListVolumes(rds)
        seen: list[str] = []
        token = ""
        while True:
            page = listing(max_entries=3, starting_token=token)
            assert len(page.volumes) <= 3
            seen += [str(v.volume_id) for v in page.volumes]
            token = page.next_token
            if not token:
                break
        assert sorted(seen) == sorted(made)

    def test_no_limit_returns_all_without_a_token(
        self, create: CreateVolume, rds: InMemoryRds
    ) -> None:
        for i in range(3):
            create(f"pvc-{i}", CapacityRange(), RWO, PARAMS)
        page = ListVolumes(rds)()
        assert len(page.volumes) == 3
        assert page.next_token == ""

    @pytest.mark.parametrize("token", ["garbage", "djE6bm90LWFuLWlk", "%%%", "djI6cHZj"])
    def test_invalid_tokens_are_refused(self, rds: InMemoryRds, token: str) -> None:
        with pytest.raises(InvalidPageToken):
            ListVolumes(rds)(starting_token=token)

    def test_negative_max_entries_is_invalid(self, rds: InMemoryRds) -> None:
        with pytest.raises(InvalidArgument, match="max_entries"):
            ListVolumes(rds)(max_entries=-1)


class TestGetCapacity:
    def test_reports_free_space_and_limits(self, create: CreateVolume, rds: InMemoryRds) -> None:
        create("pvc-a", CapacityRange(required=10 * GIB), RWO, PARAMS)
        cap = GetCapacity(rds, VolumeParameters())(RWO, {})
        assert cap.available == Size(90 * GIB)
        assert cap.maximum_volume_size == Size(90 * GIB)
        assert cap.minimum_volume_size == Size(GIB)

    def test_unsupported_capability_has_no_capacity(self, rds: InMemoryRds) -> None:
        cap = GetCapacity(rds, VolumeParameters())(
            [VolumeCapability.mount(AccessMode.MULTI_NODE_SINGLE_WRITER)], {}
        )
        assert cap.available == Size(0)
