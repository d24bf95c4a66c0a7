"""The per-volume in-flight guard: an in-process service, no I/O."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from rds_csi.application.ports import Locks
from rds_csi.domain import OperationInProgress


__all__ = ["KeyedLocks"]


class KeyedLocks(Locks):
    """
    One holder per key; a second caller gets OperationInProgress at once.

    The CSI sidecars read ABORTED as "still in progress" and retry, which is what we want
    when a CreateVolume retry overtakes the first attempt still talking to the RDS.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: set[str] = set()

    def hold(self, key: str) -> AbstractContextManager[None]:
        return self._hold(key)

    @contextmanager
    def _hold(self, key: str) -> Iterator[None]:
        with self._guard:
            if key in self._held:
                raise OperationInProgress(key)
            self._held.add(key)
        try:
            yield
        finally:
            with self._guard:
                self._held.discard(key)

    def is_held(self, key: str) -> bool:
        with self._guard:
            return key in self._held
