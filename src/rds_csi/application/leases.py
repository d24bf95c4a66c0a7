"""
Leader election for the controller's background reporters, through a Lease.

With two controller replicas both run the stale-attachment and orphan reconcilers; each pass
first takes or renews its Lease, and only the holder acts, so an operator gets one Event, not
two. The sidecars (provisioner, attacher, resizer) elect their own leaders for the CSI calls.
A holder that stops renewing (its pod died) loses the Lease once it expires.
"""

from __future__ import annotations

import logging

from rds_csi.application.kubernetes import Kubernetes


__all__ = ["Lease"]

_log = logging.getLogger(__name__)


class Lease:
    """
    Args:
        identity: This replica's name (unique per process); empty: no election, always held.
        seconds: How long one renewal holds it (a few of the reporter's intervals).
    """

    def __init__(
        self, kubernetes: Kubernetes | None, name: str, identity: str, seconds: int
    ) -> None:
        self._kubernetes = kubernetes
        self._name = name
        self._identity = identity
        self._seconds = seconds
        self._held: bool | None = None

    def held(self) -> bool:
        """Take or renew the Lease now; whether this replica holds it."""
        if not self._identity or self._kubernetes is None:
            return True
        held = self._kubernetes.acquire_lease(self._name, self._identity, self._seconds)
        if held != self._held:
            text = (
                "took the lease %s as %s"
                if held
                else "another replica holds the lease %s; %s waits"
            )
            _log.info(text, self._name, self._identity, extra={"fields": {"held": held}})
            self._held = held
        return held
