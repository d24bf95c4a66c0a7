"""
The snapshot sub-container: the SnapshotBackend for the chosen RDS backend, the background
copies, and the use cases the controller serves (``docs/snapshots.md``).

Every backend kind has a snapshot adapter (the in-memory one, SSH, REST, each on the
emulator too); a kind without one would get none: ``served`` is ``no``, the use cases are
None, and the controller advertises no snapshot capability.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Final

from rds_csi.adapters.fake_rds import InMemoryRds, InMemorySnapshots
from rds_csi.application.copies import PendingCopies
from rds_csi.application.ports import Locks, Metrics, StorageBackend
from rds_csi.application.snapshots import (
    CreateSnapshot,
    DeleteSnapshot,
    ListSnapshots,
    PopulateVolume,
)
from rds_csi.application.snapshots_port import SnapshotBackend
from rds_csi.entrypoints.csi.snapshots import SnapshotUseCases
from rds_csi.entrypoints.di import containers, providers


__all__ = ["SNAPSHOT_KINDS", "SnapshotWiring", "running_copies", "snapshot_counter"]

SNAPSHOT_KINDS: Final = frozenset(
    {"fake", "ssh", "emulator", "rest", "emulator-rest"}
)  # backends with an adapter


def snapshot_counter(snapshots: SnapshotBackend) -> Callable[[], int]:
    """For the capacity metrics: how many snapshots of ours the RDS holds (one list)."""
    return lambda: len(snapshots.list_snapshots())


def running_copies() -> Iterator[PendingCopies]:
    """The background snapshot copies; stopped (unfinished ones abandoned) at shutdown."""
    copies = PendingCopies()
    try:
        yield copies
    finally:
        copies.close()


def _served(kind: str) -> str:
    return "yes" if kind in SNAPSHOT_KINDS else "no"


class SnapshotWiring(containers.DeclarativeContainer):
    """Snapshots for one driver: wired by the main container, which owns ``copies``."""

    backend_kind: providers.Dependency[str] = providers.Dependency()
    fake_rds: providers.Dependency[InMemoryRds] = providers.Dependency()
    ssh: providers.Dependency[SnapshotBackend] = providers.Dependency()
    emulator: providers.Dependency[SnapshotBackend] = providers.Dependency()
    rest: providers.Dependency[SnapshotBackend] = providers.Dependency()
    emulator_rest: providers.Dependency[SnapshotBackend] = providers.Dependency()
    volumes: providers.Dependency[StorageBackend] = providers.Dependency()
    locks: providers.Dependency[Locks] = providers.Dependency()
    metrics: providers.Dependency[Metrics] = providers.Dependency()
    copies: providers.Dependency[PendingCopies] = providers.Dependency()

    served = providers.Callable(_served, backend_kind)
    backend = providers.Selector(
        backend_kind,
        fake=providers.Singleton(InMemorySnapshots, fake_rds),
        ssh=ssh,
        emulator=emulator,
        rest=rest,
        **{"emulator-rest": emulator_rest},
    )
    populate = providers.Selector(
        served,
        yes=providers.Factory(
            PopulateVolume,
            snapshots=backend,
            volumes=volumes,
            locks=locks,
            copies=copies,
            metrics=metrics,
        ),
        no=providers.Object(None),
    )
    use_cases = providers.Selector(
        served,
        yes=providers.Factory(
            SnapshotUseCases,
            create=providers.Factory(
                CreateSnapshot,
                snapshots=backend,
                volumes=volumes,
                locks=locks,
                copies=copies,
                clock=providers.Object(time.time),
                metrics=metrics,
            ),
            delete=providers.Factory(DeleteSnapshot, snapshots=backend, locks=locks, copies=copies),
            list=providers.Factory(ListSnapshots, snapshots=backend, copies=copies),
        ),
        no=providers.Object(None),
    )
    counter = providers.Selector(
        served,
        yes=providers.Callable(snapshot_counter, backend),
        no=providers.Object(None),
    )
