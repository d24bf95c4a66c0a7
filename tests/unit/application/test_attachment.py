"""ControllerPublish / Unpublish and the rebuild from VolumeAttachments, on the fake cluster."""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import pytest

from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.adapters.kubernetes import FakeKubernetes
from rds_csi.application.attachment import AttachmentState, PublishVolume, UnpublishVolume
from rds_csi.application.attachment_sync import AttachmentSync, usage_of
from rds_csi.application.events import (
    ATTACH_REFUSED,
    MIGRATION_FINISHED,
    MIGRATION_STARTED,
    MIGRATION_TIMED_OUT,
    EventRecorder,
)
from rds_csi.application.kubernetes import (
    PersistentVolumeInfo,
    VolumeAttachmentInfo,
)
from rds_csi.application.locks import KeyedLocks
from rds_csi.application.ports import AttachmentMetrics, Clock
from rds_csi.application.provisioning import CreateVolume, DeleteVolume
from rds_csi.domain import (
    AccessMode,
    AlreadyExists,
    AttachRefused,
    BackendUnavailable,
    CapacityExhausted,
    CapacityRange,
    Conflict,
    InvalidArgument,
    MigrationTimedOut,
    NotFound,
    Size,
    Usage,
    VolumeCapability,
    VolumeNotFound,
    VolumeParameters,
)
from rds_csi.domain.size import GIB


RWO = VolumeCapability.mount()
RWX_BLOCK = VolumeCapability.block(AccessMode.MULTI_NODE_MULTI_WRITER)
DEFAULTS = VolumeParameters(rds_address="10.0.0.1")


@attrs.define
class FakeClock(Clock):
    now: float = 1_000_000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@attrs.define
class Recorded(AttachmentMetrics):
    modes: dict[str, int] = attrs.field(factory=dict)
    migrations: list[tuple[str, float]] = attrs.field(factory=list)
    refused: list[str] = attrs.field(factory=list)
    stale: int = -1

    def attachments(self, by_mode: Mapping[str, int]) -> None:
        self.modes = dict(by_mode)

    def migration(self, outcome: str, seconds: float) -> None:
        self.migrations.append((outcome, seconds))

    def attach_refused(self, reason: str) -> None:
        self.refused.append(reason)

    def stale_attachments(self, count: int) -> None:
        self.stale = count


@attrs.define
class World:
    rds: InMemoryRds
    k8s: FakeKubernetes
    clock: FakeClock
    state: AttachmentState
    publish: PublishVolume
    unpublish: UnpublishVolume
    metrics: Recorded
    create: CreateVolume

    def volume(self, **params: str) -> tuple[str, dict[str, str]]:
        made = self.create(
            f"pvc-{len(self.rds.list_volumes())}",
            CapacityRange(required=GIB),
            [RWO],
            params,
        )
        vid = str(made.volume.volume_id)
        self.k8s.put_persistent_volume(
            PersistentVolumeInfo(
                f"pv-{vid}",
                vid,
                ("ReadWriteOnce",),
                claim_namespace="ns",
                claim_name=f"claim-{vid}",
            )
        )
        return vid, made.context.to_mapping()


@pytest.fixture
def world() -> World:
    rds = InMemoryRds(pool_size=Size(100 * GIB))
    k8s = FakeKubernetes(["a", "b", "c"])
    clock = FakeClock()
    state = AttachmentState(clock)
    locks = KeyedLocks()
    events = EventRecorder(k8s, clock)
    metrics = Recorded()
    return World(
        rds,
        k8s,
        clock,
        state,
        PublishVolume(
            rds,
            state,
            locks,
            clock,
            defaults=DEFAULTS,
            kubernetes=k8s,
            events=events,
            metrics=metrics,
        ),
        UnpublishVolume(state, locks, clock, kubernetes=k8s, events=events, metrics=metrics),
        metrics,
        CreateVolume(rds, locks, DEFAULTS),
    )


def reasons(k8s: FakeKubernetes) -> list[str]:
    return [e.reason for e in k8s.events]


class TestPublish:
    def test_publish_context_carries_what_the_node_connects_with(self, world: World) -> None:
        vid, ctx = world.volume(ctrlLossTmo="60")
        published = world.publish(vid, "a", RWO, ctx)
        pc = published.publish_context
        assert pc["nqn"] == ctx["nqn"]
        assert pc["nvmeAddress"] == "10.0.0.1"
        assert pc["nvmePort"] == "4420"
        assert pc["ctrlLossTmo"] == "60"
        assert world.publish(vid, "a", RWO, ctx).publish_context == pc  # idempotent
        # Without a volume context (csi-sanity, an old PV) it comes from the RDS and defaults.
        assert world.publish(vid, "a", RWO, {}).publish_context["nqn"] == ctx["nqn"]

    def test_second_node_refused_naming_the_holder_with_an_event(self, world: World) -> None:
        vid, ctx = world.volume()
        world.publish(vid, "a", RWO, ctx)
        with pytest.raises(AttachRefused, match="attached to node 'a'"):
            world.publish(vid, "b", RWO, ctx)
        event = world.k8s.events[-1]
        assert event.reason == ATTACH_REFUSED
        assert event.warning
        assert (event.about.kind, event.about.namespace, event.about.name) == (
            "PersistentVolumeClaim",
            "ns",
            f"claim-{vid}",
        )
        assert world.metrics.refused == ["held"]

    def test_refusals_are_rate_limited_per_object(self, world: World) -> None:
        vid, ctx = world.volume()
        world.publish(vid, "a", RWO, ctx)
        for _ in range(5):
            with pytest.raises(AttachRefused):
                world.publish(vid, "b", RWO, ctx)
        assert reasons(world.k8s) == [ATTACH_REFUSED]
        world.clock.now += 61
        with pytest.raises(AttachRefused):
            world.publish(vid, "b", RWO, ctx)
        assert reasons(world.k8s) == [ATTACH_REFUSED, ATTACH_REFUSED]

    def test_same_node_other_capability_is_already_exists(self, world: World) -> None:
        vid, ctx = world.volume()
        world.publish(vid, "a", RWO, ctx)
        with pytest.raises(AlreadyExists):
            world.publish(vid, "a", RWO, ctx, read_only=True)

    @pytest.mark.parametrize(
        ("volume_id", "node", "cap", "field"),
        [
            ("", "a", RWO, "volume_id"),
            ("foreign", "", RWO, "node_id"),
            ("foreign", "a", None, "volume_capability"),
        ],
    )
    def test_missing_fields_before_anything_else(
        self, world: World, volume_id: str, node: str, cap: VolumeCapability | None, field: str
    ) -> None:
        with pytest.raises(InvalidArgument, match=field):
            world.publish(volume_id, node, cap, {})

    def test_unknown_volume_and_unknown_node_are_not_found(self, world: World) -> None:
        vid, ctx = world.volume()
        with pytest.raises(VolumeNotFound):
            world.publish("pvc-00000000-0000-0000-0000-000000000000", "a", RWO, {})
        with pytest.raises(NotFound, match="no CSINode lists this driver"):
            world.publish(vid, "nowhere", RWO, ctx)

    def test_bad_migration_timeout_is_invalid(self, world: World) -> None:
        vid, ctx = world.volume()
        with pytest.raises(InvalidArgument, match="migrationTimeoutSeconds"):
            world.publish(vid, "a", RWX_BLOCK, {**ctx, "migrationTimeoutSeconds": "soon"})

    def test_nothing_is_attached_before_the_first_rebuild(self, world: World) -> None:
        vid, ctx = world.volume()
        cold = PublishVolume(
            world.rds,
            AttachmentState(world.clock, ready=False),
            KeyedLocks(),
            world.clock,
            defaults=DEFAULTS,
            kubernetes=world.k8s,
        )
        with pytest.raises(BackendUnavailable, match="VolumeAttachments"):
            cold(vid, "a", RWO, ctx)


class TestMigration:
    def test_live_migration_then_source_detached(self, world: World) -> None:
        vid, ctx = world.volume()
        world.publish(vid, "a", RWX_BLOCK, ctx)
        world.publish(vid, "b", RWX_BLOCK, ctx)
        assert reasons(world.k8s) == [MIGRATION_STARTED]
        with pytest.raises(AttachRefused, match="migration limit"):
            world.publish(vid, "c", RWX_BLOCK, ctx)
        world.clock.now += 15
        world.unpublish(vid, "a")
        assert reasons(world.k8s)[-1] == MIGRATION_FINISHED
        assert world.metrics.migrations == [("succeeded", 15.0)]
        assert world.state.nodes_of(world.state.snapshot().popitem()[0]) == ("b",)

    def test_timeout_from_the_volume_context(self, world: World) -> None:
        vid, ctx = world.volume(migrationTimeoutSeconds="5")
        world.publish(vid, "a", RWX_BLOCK, ctx)
        world.publish(vid, "b", RWX_BLOCK, ctx)
        world.clock.now += 6
        with pytest.raises(MigrationTimedOut, match="detach the source node 'a'"):
            world.publish(vid, "c", RWX_BLOCK, ctx)
        assert reasons(world.k8s)[-1] == MIGRATION_TIMED_OUT
        world.unpublish(vid, "a")
        assert world.metrics.migrations[-1][0] == "timed_out"


class TestUnpublish:
    def test_unknown_volume_node_or_nothing_attached_is_success(self, world: World) -> None:
        vid, _ = world.volume()
        world.unpublish("pvc-00000000-0000-0000-0000-000000000000", "a")
        world.unpublish("foreign-id", "a")
        world.unpublish(vid, "nowhere")
        world.unpublish(vid, "")
        with pytest.raises(InvalidArgument, match="volume_id"):
            world.unpublish("", "a")

    def test_without_node_detaches_everywhere(self, world: World) -> None:
        vid, ctx = world.volume()
        cap = VolumeCapability.mount(AccessMode.MULTI_NODE_READER_ONLY)
        world.publish(vid, "a", cap, ctx)
        world.publish(vid, "b", cap, ctx)
        world.unpublish(vid, "")
        assert world.state.snapshot() == {}

    def test_delete_of_an_attached_volume_is_refused(self, world: World) -> None:
        vid, ctx = world.volume()
        delete = DeleteVolume(world.rds, KeyedLocks(), world.state)
        world.publish(vid, "a", RWO, ctx)
        with pytest.raises(Conflict, match="still attached to node 'a'"):
            delete(vid)
        world.unpublish(vid, "a")
        delete(vid)
        assert world.rds.list_volumes() == []


class TestRebuild:
    def _va(self, vid: str, node: str, at: float, *, attached: bool = True) -> VolumeAttachmentInfo:
        return VolumeAttachmentInfo(f"csi-{vid}-{node}", f"pv-{vid}", node, attached, at)

    def test_a_restart_rebuilds_the_same_state(self, world: World) -> None:
        vid, ctx = world.volume()
        world.publish(vid, "a", RWO, ctx)
        world.k8s.put_volume_attachment(self._va(vid, "a", world.clock.now))
        restarted = AttachmentState(world.clock, ready=False)
        AttachmentSync(world.k8s, restarted, default_timeout=300).rebuild()
        assert restarted.ready
        assert restarted.nodes_of(world.state.snapshot().popitem()[0]) == ("a",)
        again = PublishVolume(
            world.rds, restarted, KeyedLocks(), world.clock, defaults=DEFAULTS, kubernetes=world.k8s
        )
        assert again(vid, "a", RWO, ctx).publish_context  # the holder again: success
        with pytest.raises(AttachRefused, match="'a'"):
            again(vid, "b", RWO, ctx)

    def test_unattached_and_foreign_attachments_are_ignored(self, world: World) -> None:
        vid, _ = world.volume()
        world.k8s.put_volume_attachment(self._va(vid, "a", 1.0, attached=False))
        world.k8s.put_volume_attachment(VolumeAttachmentInfo("other", "pv-other", "a", True))
        state = AttachmentState(world.clock)
        AttachmentSync(world.k8s, state, default_timeout=300).rebuild()
        assert state.snapshot() == {}

    def test_a_fresh_publish_survives_a_resync_that_cannot_show_it_yet(self, world: World) -> None:
        vid, ctx = world.volume()
        sync = AttachmentSync(world.k8s, world.state, default_timeout=300)
        world.publish(vid, "a", RWO, ctx)
        sync.rebuild()
        assert world.state.nodes_of(next(iter(world.state.snapshot()))) == ("a",)
        world.clock.now += 121  # the attacher never recorded it: the cluster wins
        sync.rebuild()
        assert world.state.snapshot() == {}

    def test_watch_events_keep_the_state_current(self, world: World) -> None:
        vid, _ = world.volume()
        sync = AttachmentSync(world.k8s, world.state, default_timeout=300)
        version = sync.rebuild()
        world.k8s.put_volume_attachment(self._va(vid, "a", 5.0))
        for event in world.k8s.watch_volume_attachments(version, 1):
            sync.apply(event)
            break
        assert [a.nodes for a in world.state.snapshot().values()] == [("a",)]

    def test_migration_clock_comes_from_the_later_attachment(self, world: World) -> None:
        vid, _ = world.volume()
        pv = PersistentVolumeInfo(
            f"pv-{vid}",
            vid,
            ("ReadWriteMany",),
            block=True,
            attributes={"migrationTimeoutSeconds": "30"},
        )
        world.k8s.put_persistent_volume(pv)
        world.k8s.put_volume_attachment(self._va(vid, "a", 100.0))
        world.k8s.put_volume_attachment(self._va(vid, "b", 160.0))
        AttachmentSync(world.k8s, world.state, default_timeout=300).rebuild()
        (found,) = world.state.snapshot().values()
        assert found.nodes == ("a", "b")
        assert found.migration_started == 160.0
        assert found.migration_timeout == 30


@pytest.mark.parametrize(
    ("modes", "block", "mode"),
    [
        (("ReadWriteOnce",), False, AccessMode.SINGLE_NODE_WRITER),
        (("ReadWriteOncePod",), False, AccessMode.SINGLE_NODE_SINGLE_WRITER),
        (("ReadOnlyMany",), False, AccessMode.MULTI_NODE_READER_ONLY),
        (("ReadWriteMany",), True, AccessMode.MULTI_NODE_MULTI_WRITER),
        (("ReadWriteOnce", "ReadOnlyMany"), False, AccessMode.SINGLE_NODE_WRITER),
    ],
)
def test_usage_of_pv_access_modes(modes: tuple[str, ...], block: bool, mode: AccessMode) -> None:
    assert usage_of(PersistentVolumeInfo("pv", "h", modes, block)) == Usage(mode, block)


def test_without_an_attacher_the_memory_is_the_record(world: World) -> None:
    world.k8s.unavailable = True  # nothing is asked of the cluster
    state = AttachmentState(world.clock, ready=False)
    AttachmentSync(world.k8s, state, default_timeout=300, enabled=False).start()
    assert state.ready


def test_a_retried_refusal_does_not_list_the_pvs_each_time(world: World) -> None:
    vid, ctx = world.volume()
    world.publish(vid, "a", RWO, ctx)
    listed = 0
    real = world.k8s.list_persistent_volumes

    def counting() -> list[PersistentVolumeInfo]:
        nonlocal listed
        listed += 1
        return list(real())

    world.k8s.list_persistent_volumes = counting  # type: ignore[method-assign]
    for _ in range(10):
        with pytest.raises(AttachRefused):
            world.publish(vid, "b", RWO, ctx)
    assert listed == 1


def test_the_nodes_attach_limit_is_resource_exhausted(world: World) -> None:
    world.k8s.max_volumes["a"] = 1
    first, ctx1 = world.volume()
    second, ctx2 = world.volume()
    world.publish(first, "a", RWO, ctx1)
    world.publish(first, "a", RWO, ctx1)  # a repeat is not another volume
    with pytest.raises(CapacityExhausted, match="attach limit"):
        world.publish(second, "a", RWO, ctx2)
    world.publish(second, "b", RWO, ctx2)
