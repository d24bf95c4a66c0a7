"""
Attachments: which nodes a volume is published to, and the rules that fence it.

One NVMe/TCP disk attached to two kernels that both mount its filesystem is corruption, so the
controller refuses a second node for every single-node mode. The one exception is a raw block
volume in MULTI_NODE_MULTI_WRITER (a KubeVirt VM disk): during a live migration the target node
attaches while the source still runs, for at most ``migrationTimeoutSeconds`` (the Go driver's
key and default, 300 s), and never a third node. MULTI_NODE_READER_ONLY allows any number.

The rules are pure functions (``attach``, ``detach``, ``detach_all``) over an immutable
``Attachment``; the controller keeps the current value per volume and swaps it under a lock.
Times are seconds since the epoch, because a rebuilt attachment's times come from
VolumeAttachment objects written by other processes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final

import attrs

from rds_csi.domain.capability import AccessMode, VolumeCapability
from rds_csi.domain.errors import AlreadyExists, Conflict, InvalidArgument
from rds_csi.domain.identity import VolumeId
from rds_csi.domain.parameters import DEFAULT_MIGRATION_TIMEOUT
from rds_csi.domain.text import quoted


__all__ = [
    "MIGRATION_NODE_LIMIT",
    "NODE_ID_MAX_BYTES",
    "AttachOutcome",
    "AttachRefused",
    "AttachResult",
    "Attachment",
    "DetachOutcome",
    "DetachResult",
    "MigrationTimedOut",
    "Usage",
    "attach",
    "check_node_id",
    "detach",
    "detach_all",
    "rebuilt",
]

MIGRATION_NODE_LIMIT: Final = 2
NODE_ID_MAX_BYTES: Final = 256  # the CSI spec's bound on node_id


def check_node_id(node_id: str, *, field: str = "node_id") -> str:
    if not node_id:
        raise InvalidArgument(field, "is required")
    if len(node_id.encode()) > NODE_ID_MAX_BYTES:
        raise InvalidArgument(field, f"is longer than {NODE_ID_MAX_BYTES} bytes")
    if not node_id.isprintable():
        raise InvalidArgument(field, f"{quoted(node_id)} contains non-printable characters")
    return node_id


@attrs.frozen
class Usage:
    """How a publish wants the volume: the access mode, raw block or not, read-only or not."""

    access_mode: AccessMode
    block: bool = False
    read_only: bool = False

    @classmethod
    def of(cls, capability: VolumeCapability, *, read_only: bool = False) -> Usage:
        return cls(capability.access_mode, capability.is_block, read_only)

    @property
    def migratable(self) -> bool:
        """A KubeVirt live-migration disk: a second node may attach for a while."""
        return self.access_mode is AccessMode.MULTI_NODE_MULTI_WRITER and self.block

    @property
    def shared_read_only(self) -> bool:
        return self.access_mode is AccessMode.MULTI_NODE_READER_ONLY

    @property
    def sharing(self) -> str:
        """How many nodes may hold it: ``one``, ``readers`` (any) or ``migration`` (two)."""
        if self.shared_read_only:
            return "readers"
        return "migration" if self.migratable else "one"

    def describe(self) -> str:
        kind = "block" if self.block else "filesystem"
        ro = ", read-only" if self.read_only else ""
        return f"{self.access_mode.name} ({kind}{ro})"


def _nodes(_inst: object, _attr: object, value: tuple[str, ...]) -> None:
    if not value:
        raise InvalidArgument("nodes", "an attachment names at least one node")
    if len(set(value)) != len(value):
        raise InvalidArgument("nodes", f"repeat a node: {list(value)}")


@attrs.frozen
class Attachment:
    """
    A volume published to one or more nodes.

    Attributes:
        nodes: In attach order: ``nodes[0]`` holds the volume (the migration source), a second
            node is a migration target. More nodes than the mode allows can only come from a
            rebuild of what the cluster says (the state is never forced to fit the rules).
        usage: The mode the volume was published with.
        migration_started: When the migration target attached (None: no migration).
        migration_timeout: Seconds a migration may keep two nodes attached.
        exact: False when rebuilt from the cluster, which records the access modes of the PV
            and not the capability the CO sent; the next publish to a holder sets it.
    """

    volume_id: VolumeId
    nodes: tuple[str, ...] = attrs.field(validator=_nodes)
    usage: Usage
    migration_started: float | None = None
    migration_timeout: int = DEFAULT_MIGRATION_TIMEOUT
    exact: bool = True

    @property
    def holder(self) -> str:
        return self.nodes[0]

    @property
    def migrating(self) -> bool:
        return self.migration_started is not None

    def migration_elapsed(self, now: float) -> float:
        return 0.0 if self.migration_started is None else max(now - self.migration_started, 0.0)

    def migration_overdue(self, now: float) -> bool:
        return self.migrating and self.migration_elapsed(now) > self.migration_timeout


class AttachRefused(Conflict):
    """
    A node may not attach: another holds the volume (FAILED_PRECONDITION).

    Attributes:
        holders: The nodes the volume is attached to.
    """

    def __init__(self, message: str, holders: tuple[str, ...]) -> None:
        self.holders = holders
        super().__init__(message)


class MigrationTimedOut(AttachRefused):
    """A live migration kept two nodes attached past its timeout; no new node may join."""


class AttachOutcome(enum.Enum):
    ATTACHED = "attached"
    ALREADY_ATTACHED = "already_attached"
    MIGRATION_STARTED = "migration_started"


@attrs.frozen
class AttachResult:
    attachment: Attachment
    outcome: AttachOutcome


def _same_node_again(current: Attachment, node_id: str, usage: Usage) -> AttachResult:
    if not current.exact:
        return AttachResult(
            attrs.evolve(current, usage=usage, exact=True), AttachOutcome.ALREADY_ATTACHED
        )
    if current.usage != usage:
        raise AlreadyExists(
            f"volume {current.volume_id} is already published to node {quoted(node_id)} as "
            f"{current.usage.describe()}; this request asks for {usage.describe()}. Unpublish "
            "it first to change how it is used"
        )
    return AttachResult(current, AttachOutcome.ALREADY_ATTACHED)


def attach(
    current: Attachment | None,
    volume_id: VolumeId,
    node_id: str,
    usage: Usage,
    *,
    now: float,
    migration_timeout: int = DEFAULT_MIGRATION_TIMEOUT,
) -> AttachResult:
    """
    Publish ``volume_id`` to ``node_id``, or say why not.

    Raises:
        AlreadyExists: the node has the volume already, published another way.
        AttachRefused: another node holds it and the mode does not allow a second (or third).
        MigrationTimedOut: a migration is past its timeout; detach the source to finish it.
    """
    if current is None:
        return AttachResult(
            Attachment(volume_id, (node_id,), usage, migration_timeout=migration_timeout),
            AttachOutcome.ATTACHED,
        )
    if node_id in current.nodes:
        return _same_node_again(current, node_id, usage)
    holders = ", ".join(quoted(n) for n in current.nodes)
    if usage.sharing != current.usage.sharing:
        raise AttachRefused(
            f"volume {volume_id} is published to node {holders} as "
            f"{current.usage.describe()}; node {quoted(node_id)} asks for {usage.describe()}",
            current.nodes,
        )
    if usage.shared_read_only:
        return AttachResult(
            attrs.evolve(current, nodes=(*current.nodes, node_id)), AttachOutcome.ATTACHED
        )
    if not usage.migratable:
        raise AttachRefused(
            f"volume {volume_id} is attached to node {holders}; {usage.access_mode.name} allows "
            f"one node, so node {quoted(node_id)} must wait until it is detached there",
            current.nodes,
        )
    if current.migration_overdue(now):
        raise MigrationTimedOut(
            f"volume {volume_id}: the live migration from node {quoted(current.holder)} has "
            f"kept two nodes attached for {current.migration_elapsed(now):.0f}s, past "
            f"migrationTimeoutSeconds={current.migration_timeout}; detach the source node "
            f"{quoted(current.holder)} (finish or cancel the migration) or raise "
            "migrationTimeoutSeconds in the StorageClass, then retry",
            current.nodes,
        )
    if len(current.nodes) >= MIGRATION_NODE_LIMIT:
        raise AttachRefused(
            f"volume {volume_id} is already attached to {len(current.nodes)} nodes ({holders}; "
            f"migration limit {MIGRATION_NODE_LIMIT}); node {quoted(node_id)} is refused",
            current.nodes,
        )
    return AttachResult(
        attrs.evolve(
            current,
            nodes=(current.holder, node_id),
            migration_started=now,
            migration_timeout=migration_timeout,
        ),
        AttachOutcome.MIGRATION_STARTED,
    )


class DetachOutcome(enum.Enum):
    NOT_ATTACHED = "not_attached"
    DETACHED = "detached"
    MIGRATION_FINISHED = "succeeded"  # the source left within the window
    MIGRATION_TIMED_OUT = "timed_out"  # the source left, but after the window
    MIGRATION_ABORTED = "aborted"  # the target left: the VM stays on the source


@attrs.frozen
class DetachResult:
    """
    Attributes:
        attachment: What remains (None: the volume is attached nowhere).
        migration_seconds: How long the migration that just ended took, if one did.
    """

    attachment: Attachment | None
    outcome: DetachOutcome
    migration_seconds: float | None = None


def detach(current: Attachment | None, node_id: str, *, now: float) -> DetachResult:
    """Unpublish from one node. A node that does not have the volume is success."""
    if current is None or node_id not in current.nodes:
        return DetachResult(current, DetachOutcome.NOT_ATTACHED)
    rest = tuple(n for n in current.nodes if n != node_id)
    if not rest:
        return DetachResult(None, DetachOutcome.DETACHED)
    if not current.migrating or len(rest) != 1:
        return DetachResult(attrs.evolve(current, nodes=rest), DetachOutcome.DETACHED)
    elapsed = current.migration_elapsed(now)
    if node_id == current.holder:
        outcome = (
            DetachOutcome.MIGRATION_TIMED_OUT
            if current.migration_overdue(now)
            else DetachOutcome.MIGRATION_FINISHED
        )
    else:
        outcome = DetachOutcome.MIGRATION_ABORTED
    return DetachResult(attrs.evolve(current, nodes=rest, migration_started=None), outcome, elapsed)


def detach_all(current: Attachment | None) -> DetachResult:
    """Unpublish from every node (ControllerUnpublish without a node_id)."""
    if current is None:
        return DetachResult(None, DetachOutcome.NOT_ATTACHED)
    return DetachResult(None, DetachOutcome.DETACHED)


def rebuilt(
    volume_id: VolumeId,
    attached: Iterable[tuple[str, float]],
    usage: Usage,
    *,
    migration_timeout: int = DEFAULT_MIGRATION_TIMEOUT,
) -> Attachment | None:
    """
    The attachment the cluster records: ``attached`` pairs each node with when it attached
    (from its VolumeAttachment), in any order. Kept as found, even when more nodes hold it
    than the mode allows (that is a stale attachment to report, never one to forget). A
    migratable volume on two nodes is migrating since the later one attached.
    """
    ordered = sorted(dict(attached).items(), key=lambda item: (item[1], item[0]))
    if not ordered:
        return None
    nodes = tuple(node for node, _ in ordered)
    started = ordered[1][1] if usage.migratable and len(ordered) == MIGRATION_NODE_LIMIT else None
    return Attachment(volume_id, nodes, usage, started, migration_timeout, exact=False)
