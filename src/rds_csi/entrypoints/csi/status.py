"""
Domain errors -> gRPC status codes: one table, looked up along the exception's MRO.

Walking ``type(exc).__mro__`` means a new subclass (``VolumeIncompatible`` under
``AlreadyExists``) maps like its parent without touching this file, and never falls through
to INTERNAL the way an exact-type lookup would. The interceptor in ``interceptors.py``
applies it to every call, once; servicers only raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs
import grpc

from rds_csi.domain import (
    Aborted,
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    CapacityExhausted,
    Conflict,
    InvalidArgument,
    NotFound,
    OutOfRange,
)
from rds_csi.domain.text import printable


__all__ = ["STATUS", "Busy", "RpcStatus", "Unimplemented", "status_for"]


class Unimplemented(Exception):
    """An RPC this driver does not serve (not built yet, or not in this mode): UNIMPLEMENTED."""


class Busy(Exception):
    """The driver has no room for the call now (admission): RESOURCE_EXHAUSTED, retry later."""


STATUS: Final[Mapping[type[BaseException], grpc.StatusCode]] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    CapacityExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    Aborted: grpc.StatusCode.ABORTED,
    BackendUnavailable: grpc.StatusCode.UNAVAILABLE,
    BackendError: grpc.StatusCode.INTERNAL,
    Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
    Busy: grpc.StatusCode.RESOURCE_EXHAUSTED,
}

STATUS_LIMIT: Final = 1024
INTERNAL_MESSAGE: Final = "internal error in the driver; its log has the details"


@attrs.frozen
class RpcStatus:
    """
    What a failed call returns.

    Attributes:
        expected: False for an exception no row of the table names: a bug, whose
            traceback the caller must log (its text stays out of the status message).
    """

    code: grpc.StatusCode
    message: str
    expected: bool = True


def status_for(exc: BaseException) -> RpcStatus:
    """The status for ``exc``: the first class along its MRO that the table names."""
    for cls in type(exc).__mro__:
        code = STATUS.get(cls)
        if code is not None:
            # Messages quote request values: never a control character or megabytes of them.
            return RpcStatus(code, printable(str(exc), STATUS_LIMIT) or cls.__name__)
    return RpcStatus(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE, expected=False)
