"""Health for Probe: whether this instance can do its job right now."""

from __future__ import annotations

import attrs

from rds_csi.application.ports import StorageBackend
from rds_csi.domain import BackendUnavailable


__all__ = ["CheckHealth", "Health"]


@attrs.frozen
class Health:
    ready: bool
    reason: str = ""


class CheckHealth:
    """
    Ask the backend, when this instance has one (the controller); a node has nothing to ask.

    An unreachable RDS is "not ready", not an error: the CSI sidecars wait on ``ready=false``
    at startup but exit on an error status, and an RDS outage is no reason to crashloop them.
    """

    def __init__(self, backend: StorageBackend | None) -> None:
        self._backend = backend

    def __call__(self) -> Health:
        if self._backend is None:
            return Health(ready=True)
        try:
            self._backend.check_health()
        except BackendUnavailable as exc:
            return Health(ready=False, reason=str(exc))
        return Health(ready=True)
