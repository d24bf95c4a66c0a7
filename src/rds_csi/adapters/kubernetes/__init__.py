"""The Kubernetes port: the official client (``api``) and an in-memory cluster (``fake``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rds_csi.adapters.kubernetes.fake import FakeKubernetes, RecordedEvent


if TYPE_CHECKING:
    from rds_csi.adapters.kubernetes.api import ApiKubernetes, api_client

__all__ = ["ApiKubernetes", "FakeKubernetes", "RecordedEvent", "api_client"]

_API: frozenset[str] = frozenset({"ApiKubernetes", "api_client"})


def __getattr__(name: str) -> Any:
    """``api``'s names, imported on first use: the client library is 24 MB (issue 15)."""
    if name in _API:
        from rds_csi.adapters.kubernetes import api  # noqa: PLC0415

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
