"""What the node use cases truly share: metric outcomes, undo steps, the counted connect."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final

from rds_csi.application.ports import Metrics, MountInfo, NvmeInitiator
from rds_csi.domain import BackendUnavailable, NvmeTarget, VolumeNotFound


__all__ = [
    "CONNECTED",
    "FAILED",
    "NOT_EXPORTED",
    "RECOVERED",
    "RECOVERY_FAILED",
    "RECOVERY_REFUSED",
    "REUSED",
    "UNREACHABLE",
    "Step",
    "cleanup",
    "connect",
    "count_recovery",
    "mode",
]

_log = logging.getLogger(__name__)

# Metrics.nvme_connect outcomes.
CONNECTED: Final = "success"
REUSED: Final = "reused"
NOT_EXPORTED: Final = "not_found"
UNREACHABLE: Final = "unavailable"
FAILED: Final = "failure"
# Metrics.mount_recovery outcomes.
RECOVERED: Final = "recovered"
RECOVERY_REFUSED: Final = "refused"
RECOVERY_FAILED: Final = "failed"

Step = tuple[str, Callable[[], object]]


def mode(info: MountInfo) -> str:
    return "read-only" if info.read_only else "read-write"


def cleanup(error: BaseException, what: str, steps: Sequence[Step]) -> None:
    """
    Run undo ``steps`` (name, zero-argument callable) in order, stopping at the first that
    fails: each later step assumes the earlier ones worked (never disconnect a device that is
    still mounted). A cleanup failure is noted on ``error``, never replaces it.
    """
    for name, step in steps:
        try:
            step()
        except Exception as failure:  # noqa: BLE001 - reported on the error being raised
            error.add_note(f"cleanup after the failed {what} also failed ({name}): {failure}")
            _log.warning("cleanup after the failed %s: %s failed: %s", what, name, failure)
            return


def count_recovery(metrics: Metrics | None, outcome: str) -> None:
    if metrics is not None:
        metrics.mount_recovery(outcome)


def connect(
    initiator: NvmeInitiator, metrics: Metrics | None, target: NvmeTarget, *, reused: bool
) -> str:
    """``initiator.connect``, its outcome counted through ``Metrics.nvme_connect``."""

    def count(outcome: str) -> None:
        if metrics is not None:
            metrics.nvme_connect(outcome)

    try:
        device = initiator.connect(target)
    except VolumeNotFound:
        count(NOT_EXPORTED)
        raise
    except BackendUnavailable:
        count(UNREACHABLE)
        raise
    except Exception:
        count(FAILED)
        raise
    count(REUSED if reused else CONNECTED)
    return device
