"""The error table: every domain error class, and subclasses of them, map to the right code."""

from __future__ import annotations

import grpc
import pytest

from rds_csi.domain import errors
from rds_csi.domain.errors import (
    Aborted,
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    CapacityExhausted,
    Conflict,
    DomainError,
    InvalidArgument,
    InvalidPageToken,
    MalformedOutput,
    NotFound,
    OperationInProgress,
    OutOfRange,
    SnapshotNotFound,
    UnsupportedCapability,
    VolumeIncompatible,
    VolumeNotFound,
)
from rds_csi.entrypoints.csi.status import INTERNAL_MESSAGE, Unimplemented, status_for


C = grpc.StatusCode

EXPECTED: list[tuple[BaseException, grpc.StatusCode]] = [
    (InvalidArgument("name", "is required"), C.INVALID_ARGUMENT),
    (UnsupportedCapability("volume_capabilities", "no"), C.INVALID_ARGUMENT),
    (NotFound("thing"), C.NOT_FOUND),
    (VolumeNotFound("pvc-x"), C.NOT_FOUND),
    (SnapshotNotFound("snap-x"), C.NOT_FOUND),
    (AlreadyExists("taken"), C.ALREADY_EXISTS),
    (VolumeIncompatible("other size"), C.ALREADY_EXISTS),
    (OutOfRange("too big"), C.OUT_OF_RANGE),
    (CapacityExhausted("full"), C.RESOURCE_EXHAUSTED),
    (Conflict("in use"), C.FAILED_PRECONDITION),
    (Aborted("later"), C.ABORTED),
    (OperationInProgress("pvc-x"), C.ABORTED),
    (InvalidPageToken("zzz"), C.ABORTED),
    (BackendUnavailable("down"), C.UNAVAILABLE),
    (BackendError("refused", "failure: no such item"), C.INTERNAL),
    (MalformedOutput("cannot parse", "garbage"), C.INTERNAL),
    (Unimplemented("not here"), C.UNIMPLEMENTED),
]


@pytest.mark.parametrize(("exc", "code"), EXPECTED, ids=lambda v: type(v).__name__)
def test_each_error_maps_to_its_code_with_its_message(exc: BaseException, code: C) -> None:
    status = status_for(exc)
    assert status.code == code
    assert status.message == str(exc)
    assert status.expected


def test_every_class_of_the_error_tree_is_in_the_table_above() -> None:
    # A new error class must be added to EXPECTED, deciding its code on purpose.
    listed = {type(exc) for exc, _ in EXPECTED}
    tree = {getattr(errors, name) for name in errors.__all__} - {DomainError}
    assert tree <= listed


def test_a_subclass_defined_elsewhere_maps_like_its_parent() -> None:
    class StaleVolumeHandle(VolumeNotFound):
        pass

    class PoolReadOnly(CapacityExhausted):
        pass

    assert status_for(StaleVolumeHandle("pvc-x")).code == C.NOT_FOUND
    assert status_for(PoolReadOnly("ro")).code == C.RESOURCE_EXHAUSTED


def test_unknown_exceptions_are_internal_unexpected_and_keep_their_text_out() -> None:
    status = status_for(RuntimeError("password=hunter2 in a traceback"))
    assert status.code == C.INTERNAL
    assert not status.expected
    assert status.message == INTERNAL_MESSAGE
    assert "hunter2" not in status.message


def test_the_bare_base_class_is_a_bug_not_a_condition() -> None:
    assert not status_for(DomainError("which?")).expected
