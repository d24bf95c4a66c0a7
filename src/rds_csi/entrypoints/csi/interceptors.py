"""
The one place every CSI call passes through: status mapping, the RPC log line, metrics.

Servicers raise domain errors (or ``Unimplemented``); here they become a gRPC status via
``status.status_for`` and ``context.abort``. Each call then gives exactly one log line
(method, volume ID, duration, result code) and one observation through the Metrics port.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import grpc
from google.protobuf.message import Message

from rds_csi.application.ports import Metrics
from rds_csi.domain.text import printable
from rds_csi.entrypoints.csi.redaction import redacted_text
from rds_csi.entrypoints.csi.status import status_for


__all__ = ["RpcInterceptor"]

_rpc_log = logging.getLogger("rds_csi.rpc")
# A request in a DEBUG line: enough to debug, never megabytes.
REQUEST_LIMIT: Final = 4096

_Behavior = Callable[[Any, grpc.ServicerContext], Any]

if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
else:  # the runtime classes are not generic
    _Handler = grpc.RpcMethodHandler
    _ServerInterceptor = grpc.ServerInterceptor


def _volume_id(request: Message, response: Message | None) -> str:
    """The volume a call is about: the request's volume_id, or the one CreateVolume made."""
    fields = request.DESCRIPTOR.fields_by_name
    for name in ("volume_id", "source_volume_id"):
        if name in fields:
            return str(getattr(request, name))
    if response is not None and "volume" in response.DESCRIPTOR.fields_by_name:
        return str(response.volume.volume_id)  # type: ignore[attr-defined]
    return ""


class RpcInterceptor(_ServerInterceptor):
    """Wraps every unary-unary handler; other handler kinds (none in CSI v1.12 that we
    serve) pass through untouched."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method.rpartition("/")[2]
        return grpc.unary_unary_rpc_method_handler(
            self._wrap(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, method: str, behavior: _Behavior) -> _Behavior:
        def observed(request: Message, context: grpc.ServicerContext) -> Message:
            self._metrics.rpc_started(method)
            started = time.perf_counter()
            if _rpc_log.isEnabledFor(logging.DEBUG):
                _rpc_log.debug(
                    "request %s %s", method, printable(redacted_text(request), REQUEST_LIMIT)
                )
            try:
                response: Message = behavior(request, context)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status here
                status = status_for(exc)
                if not status.expected:
                    _rpc_log.error("%s failed unexpectedly", method, exc_info=exc)
                self._finish(
                    method=method,
                    request=request,
                    response=None,
                    code=status.code,
                    started=started,
                    message=status.message,
                )
                context.abort(status.code, status.message)
            self._finish(
                method=method,
                request=request,
                response=response,
                code=grpc.StatusCode.OK,
                started=started,
                message="",
            )
            return response

        return observed

    def _finish(
        self,
        *,
        method: str,
        request: Message,
        response: Message | None,
        code: grpc.StatusCode,
        started: float,
        message: str,
    ) -> None:
        seconds = time.perf_counter() - started
        code_name = code.name
        self._metrics.rpc_finished(method, code_name, seconds)
        fields: dict[str, object] = {"method": method}
        volume_id = _volume_id(request, response)
        if volume_id:
            fields["volume_id"] = printable(volume_id)
        fields["code"] = code_name
        fields["duration_ms"] = round(seconds * 1000, 3)
        if message:
            fields["error"] = message
        level = logging.INFO if code is grpc.StatusCode.OK else logging.WARNING
        _rpc_log.log(level, "rpc", extra={"fields": fields})
