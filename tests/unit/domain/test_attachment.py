"""The attachment rules, as properties over arbitrary sequences of publishes and unpublishes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rds_csi.domain import (
    AccessMode,
    AlreadyExists,
    AttachOutcome,
    AttachRefused,
    DetachOutcome,
    InvalidArgument,
    MigrationTimedOut,
    Usage,
    VolumeId,
)
from rds_csi.domain.attachment import (
    Attachment,
    attach,
    check_node_id,
    detach,
    detach_all,
    rebuilt,
)


VID = VolumeId.from_name("attach-test")
SINGLE_NODE = [
    AccessMode.SINGLE_NODE_WRITER,
    AccessMode.SINGLE_NODE_READER_ONLY,
    AccessMode.SINGLE_NODE_SINGLE_WRITER,
    AccessMode.SINGLE_NODE_MULTI_WRITER,
]
MIGRATION = Usage(AccessMode.MULTI_NODE_MULTI_WRITER, block=True)
RWO = Usage(AccessMode.SINGLE_NODE_WRITER)
ROX = Usage(AccessMode.MULTI_NODE_READER_ONLY)

nodes = st.sampled_from(["a", "b", "c", "d"])
usages = st.builds(
    Usage,
    st.sampled_from([*SINGLE_NODE, AccessMode.MULTI_NODE_READER_ONLY]),
    st.booleans(),
    st.booleans(),
) | st.just(MIGRATION)
# (publish?, node, seconds later)
steps = st.lists(st.tuples(st.booleans(), nodes, st.floats(0, 200)), max_size=25)


def _run(
    usage: Usage, script: list[tuple[bool, str, float]], timeout: int = 300
) -> list[tuple[Attachment | None, Exception | None]]:
    """Apply a script; return the state after each step and any refusal."""
    state: Attachment | None = None
    now = 1000.0
    seen = []
    for publish, node, later in script:
        now += later
        error: Exception | None = None
        if publish:
            try:
                state = attach(
                    state, VID, node, usage, now=now, migration_timeout=timeout
                ).attachment
            except AttachRefused as exc:
                error = exc
        else:
            state = detach(state, node, now=now).attachment
        seen.append((state, error))
    return seen


@given(usages, steps)
def test_never_more_nodes_than_the_mode_allows(
    usage: Usage, script: list[tuple[bool, str, float]]
) -> None:
    limit = 4 if usage.shared_read_only else 2 if usage.migratable else 1
    for state, _ in _run(usage, script):
        assert state is None or len(state.nodes) <= limit


@given(usages, steps)
def test_a_refusal_names_the_holder_and_changes_nothing(
    usage: Usage, script: list[tuple[bool, str, float]]
) -> None:
    previous: Attachment | None = None
    for state, error in _run(usage, script):
        if error is not None:
            assert state == previous
            assert state is not None
            assert state.holder in str(error)
            assert isinstance(error, AttachRefused)
            assert error.holders == state.nodes
        previous = state


@given(st.sampled_from(SINGLE_NODE), st.booleans(), nodes, nodes)
def test_single_node_modes_allow_one_node(
    mode: AccessMode, block: bool, first: str, second: str
) -> None:
    usage = Usage(mode, block)
    held = attach(None, VID, first, usage, now=0).attachment
    again = attach(held, VID, first, usage, now=1)
    assert again.outcome is AttachOutcome.ALREADY_ATTACHED
    assert again.attachment == held
    if second != first:
        with pytest.raises(AttachRefused, match=f"attached to node '{first}'"):
            attach(held, VID, second, usage, now=1)


@given(usages, nodes, nodes)
def test_unpublish_of_a_node_without_the_volume_is_success(
    usage: Usage, holder: str, other: str
) -> None:
    assert detach(None, other, now=0).outcome is DetachOutcome.NOT_ATTACHED
    held = attach(None, VID, holder, usage, now=0).attachment
    result = detach(held, other, now=1)
    if other == holder:
        assert result.attachment is None
        assert result.outcome is DetachOutcome.DETACHED
    else:
        assert result.attachment == held
        assert result.outcome is DetachOutcome.NOT_ATTACHED


@given(st.floats(0, 299.9))
def test_migration_within_the_window_then_source_detached(elapsed: float) -> None:
    held = attach(None, VID, "a", MIGRATION, now=0).attachment
    started = attach(held, VID, "b", MIGRATION, now=10)
    assert started.outcome is AttachOutcome.MIGRATION_STARTED
    assert started.attachment.nodes == ("a", "b")
    with pytest.raises(AttachRefused, match="migration limit"):
        attach(started.attachment, VID, "c", MIGRATION, now=10 + elapsed)
    done = detach(started.attachment, "a", now=10 + elapsed)
    assert done.outcome is DetachOutcome.MIGRATION_FINISHED
    assert done.migration_seconds == pytest.approx(elapsed)
    assert done.attachment is not None
    assert done.attachment.nodes == ("b",)
    assert not done.attachment.migrating


def test_migration_past_the_timeout_refuses_a_new_node_with_the_way_out() -> None:
    held = attach(None, VID, "a", MIGRATION, now=0, migration_timeout=30).attachment
    both = attach(held, VID, "b", MIGRATION, now=0, migration_timeout=30).attachment
    with pytest.raises(MigrationTimedOut, match="detach the source node 'a'") as caught:
        attach(both, VID, "c", MIGRATION, now=31)
    assert "migrationTimeoutSeconds" in str(caught.value)
    # The nodes already attached stay so: a repeat is not a new attach.
    assert attach(both, VID, "b", MIGRATION, now=31).outcome is AttachOutcome.ALREADY_ATTACHED
    late = detach(both, "a", now=40)
    assert late.outcome is DetachOutcome.MIGRATION_TIMED_OUT
    assert late.attachment is not None
    # Once the source is gone the VM may migrate again.
    again = attach(late.attachment, VID, "c", MIGRATION, now=41)
    assert again.outcome is AttachOutcome.MIGRATION_STARTED


def test_target_detached_aborts_the_migration() -> None:
    both = attach(
        attach(None, VID, "a", MIGRATION, now=0).attachment, VID, "b", MIGRATION, now=1
    ).attachment
    aborted = detach(both, "b", now=5)
    assert aborted.outcome is DetachOutcome.MIGRATION_ABORTED
    assert aborted.attachment is not None
    assert aborted.attachment.nodes == ("a",)


def test_filesystem_multi_writer_never_migrates() -> None:
    usage = Usage(AccessMode.MULTI_NODE_MULTI_WRITER, block=False)
    held = attach(None, VID, "a", usage, now=0).attachment
    with pytest.raises(AttachRefused):
        attach(held, VID, "b", usage, now=0)


@given(st.lists(nodes, min_size=1, max_size=4, unique=True))
def test_reader_only_many_allows_every_node(names: list[str]) -> None:
    state = None
    for name in names:
        state = attach(state, VID, name, ROX, now=0).attachment
    assert state is not None
    assert state.nodes == tuple(names)


def test_same_node_with_another_capability_is_already_exists() -> None:
    held = attach(None, VID, "a", RWO, now=0).attachment
    with pytest.raises(AlreadyExists, match="already published to node 'a'"):
        attach(held, VID, "a", Usage(AccessMode.SINGLE_NODE_WRITER, read_only=True), now=0)


def test_another_node_with_another_mode_is_refused() -> None:
    held = attach(None, VID, "a", ROX, now=0).attachment
    with pytest.raises(AttachRefused, match="node 'b' asks for SINGLE_NODE_WRITER"):
        attach(held, VID, "b", RWO, now=0)


def test_detach_all() -> None:
    held = attach(None, VID, "a", ROX, now=0).attachment
    assert detach_all(held).attachment is None
    assert detach_all(None).outcome is DetachOutcome.NOT_ATTACHED


@settings(max_examples=50)
@given(st.dictionaries(nodes, st.floats(0, 1e6), min_size=1, max_size=2))
def test_rebuilt_orders_by_attach_time_and_restarts_the_migration_clock(
    attached: dict[str, float],
) -> None:
    state = rebuilt(VID, attached.items(), MIGRATION, migration_timeout=60)
    assert state is not None
    assert list(state.nodes) == sorted(attached, key=lambda n: (attached[n], n))
    if len(attached) == 2:
        assert state.migration_started == max(attached.values())
    else:
        assert not state.migrating


def test_rebuilt_keeps_more_nodes_than_the_rules_allow() -> None:
    state = rebuilt(VID, [("a", 1.0), ("b", 2.0)], RWO)
    assert state is not None
    assert state.nodes == ("a", "b")
    assert rebuilt(VID, [], RWO) is None


@pytest.mark.parametrize("bad", ["", "x" * 257, "a\nb"])
def test_node_id_checked(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="node_id"):
        check_node_id(bad)
