"""
Admission: Identity calls never queue behind backend work.

A sync gRPC server hands every call to one thread pool; with every worker held by a create
waiting out a hung RDS, Probe queues until its deadline passes and the liveness probe restarts
a healthy controller. So Controller and Node calls are admitted only up to a bound below the
pool size: ``running`` of them are served at once, ``waiting`` more may wait (each holding an
otherwise idle worker) for a slot until just before their deadline, and any beyond that are
refused at once. The ``reserved`` workers left over are only ever used by Identity, whose calls
answer from memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import TYPE_CHECKING, Any, Final

import attrs
import grpc
from google.protobuf.message import Message

from rds_csi.entrypoints.csi.status import Busy


__all__ = ["IDENTITY_PREFIX", "AdmissionInterceptor", "AdmissionLimits", "admitted_server"]

IDENTITY_PREFIX: Final = "/csi.v1.Identity/"
# Give up waiting this long before the caller's deadline, so it reads our reason, not
# DEADLINE_EXCEEDED.
_MARGIN: Final = 0.25

_Behavior = Callable[[Any, grpc.ServicerContext], Any]

if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
else:  # the runtime classes are not generic
    _Handler = grpc.RpcMethodHandler
    _ServerInterceptor = grpc.ServerInterceptor


@attrs.frozen
class AdmissionLimits:
    """
    Attributes:
        running: Controller/Node calls served at once.
        waiting: Further calls that may wait for a slot; more than this are refused at once.
        reserved: Workers only Identity calls can get.
        max_wait: The longest a call without a deadline waits for a slot.
    """

    running: int = attrs.field(default=16, validator=attrs.validators.ge(1))
    waiting: int = attrs.field(default=16, validator=attrs.validators.ge(0))
    reserved: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    max_wait: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))

    @property
    def pool_size(self) -> int:
        return self.running + self.waiting + self.reserved


class AdmissionInterceptor(_ServerInterceptor):
    """Bounds the non-Identity calls; put it after the logging interceptor so refusals are
    logged and counted like any other failure."""

    def __init__(self, limits: AdmissionLimits) -> None:
        self._limits = limits
        self._admitted = threading.BoundedSemaphore(limits.running + limits.waiting)
        self._slots = threading.BoundedSemaphore(limits.running)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = continuation(handler_call_details)
        if (
            handler is None
            or handler.unary_unary is None
            or handler_call_details.method.startswith(IDENTITY_PREFIX)
        ):
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._wrap(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wait_for(self, context: grpc.ServicerContext) -> float:
        # No deadline reads as a huge remainder, which max_wait bounds.
        remaining = context.time_remaining()
        return max(0.0, min(self._limits.max_wait, remaining - _MARGIN))

    def _wrap(self, behavior: _Behavior) -> _Behavior:
        limits = self._limits

        def admitted(request: Message, context: grpc.ServicerContext) -> Message:
            if not self._admitted.acquire(blocking=False):
                raise Busy(
                    f"the driver is serving {limits.running} calls and {limits.waiting} more "
                    "are waiting; retry later"
                )
            try:
                if not self._slots.acquire(timeout=self._wait_for(context)):
                    raise Busy(
                        f"the driver is serving {limits.running} calls and none finished "
                        "within this call's deadline; retry later"
                    )
                try:
                    response: Message = behavior(request, context)
                finally:
                    self._slots.release()
            finally:
                self._admitted.release()
            return response

        return admitted


def admitted_server(
    interceptors: Sequence[grpc.ServerInterceptor],  # type: ignore[type-arg]
    limits: AdmissionLimits | None = None,
) -> grpc.Server:
    """A gRPC server whose pool has room for Identity whatever the other calls do."""
    limits = limits or AdmissionLimits()
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=limits.pool_size, thread_name_prefix="csi"),
        interceptors=[*interceptors, AdmissionInterceptor(limits)],
    )
