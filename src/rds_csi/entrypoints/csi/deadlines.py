"""
Each CSI call's gRPC deadline, handed to the layers below as a ``Deadline`` (see
``application/deadline.py``): an adapter waiting on the RDS gives up in time to answer
UNAVAILABLE before the caller stops listening, instead of holding a worker for minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import grpc
from google.protobuf.message import Message

from rds_csi.application.deadline import deadline_scope
from rds_csi.domain.deadline import Deadline


__all__ = ["DeadlineInterceptor", "call_deadline"]

# Stop this long before the caller's deadline, so our answer (and its reason) reaches it.
MARGIN: Final = 0.25
# grpc reads "no deadline" as a remainder of about the age of the universe.
_NO_DEADLINE: Final = 1e9

_Behavior = Callable[[Any, grpc.ServicerContext], Any]

if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
else:  # the runtime classes are not generic
    _Handler = grpc.RpcMethodHandler
    _ServerInterceptor = grpc.ServerInterceptor


def call_deadline(context: grpc.ServicerContext, now: float) -> Deadline | None:
    """The call's deadline on the monotonic clock (a little early), or None if it has none."""
    remaining = context.time_remaining()
    if remaining >= _NO_DEADLINE:
        return None
    return Deadline.after(remaining - MARGIN, now)


class DeadlineInterceptor(_ServerInterceptor):
    """Runs every unary-unary call inside ``deadline_scope(call_deadline(...))``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._wrap(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, behavior: _Behavior) -> _Behavior:
        def bounded(request: Message, context: grpc.ServicerContext) -> Message:
            with deadline_scope(call_deadline(context, self._clock())):
                response: Message = behavior(request, context)
            return response

        return bounded
