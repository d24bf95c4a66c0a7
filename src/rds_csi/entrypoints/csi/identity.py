"""The CSI Identity service: who we are, what we can do, whether we are ready."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Final

import grpc
from google.protobuf import wrappers_pb2

from rds_csi.application.health import Health
from rds_csi.domain import InvalidArgument
from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc


__all__ = ["DEFAULT_DRIVER_NAME", "NOT_READY_REASON_KEY", "IdentityService", "check_driver_name"]

DEFAULT_DRIVER_NAME: Final = "rds.csi.srvlab.io"  # the Go driver's: existing PVs name it
# CSI: at most 63 characters, DNS-like; csi-sanity wants a letter at both ends.
_DRIVER_NAME_RE: Final = re.compile(r"(?=.{1,63}$)[A-Za-z]([A-Za-z0-9.-]*[A-Za-z])?")

_log = logging.getLogger(__name__)

# Why Probe answered ready=false (UTF-8 bytes: a "-bin" key); `rds-csi call probe` prints it.
NOT_READY_REASON_KEY: Final = "rds-csi-not-ready-reason-bin"

_Service = csi_pb2.PluginCapability.Service
_Expansion = csi_pb2.PluginCapability.VolumeExpansion


def check_driver_name(name: str) -> str:
    if _DRIVER_NAME_RE.fullmatch(name) is None:
        raise InvalidArgument(
            "driver_name",
            f"{name!r} is not a CSI driver name (1-63 characters, letters, digits, '.' and "
            "'-', starting and ending with a letter)",
        )
    return name


class IdentityService(csi_pb2_grpc.IdentityServicer):
    """
    Identity, served by every instance.

    Args:
        health: Answers at once (``HealthMonitor``): Probe must never wait on the RDS.
        controller: Whether this instance serves the Controller service.
        topology: Whether topology segments are configured (VOLUME_ACCESSIBILITY_CONSTRAINTS).
    """

    def __init__(
        self,
        driver_name: str,
        version: str,
        health: Callable[[], Health],
        *,
        controller: bool,
        topology: bool,
    ) -> None:
        self._name = check_driver_name(driver_name)
        self._version = version
        self._health = health
        services = [_Service.CONTROLLER_SERVICE] if controller else []
        if topology:
            services.append(_Service.VOLUME_ACCESSIBILITY_CONSTRAINTS)
        self._capabilities = [
            *(csi_pb2.PluginCapability(service=_Service(type=s)) for s in services),
            csi_pb2.PluginCapability(volume_expansion=_Expansion(type=_Expansion.ONLINE)),
        ]

    def GetPluginInfo(
        self, request: csi_pb2.GetPluginInfoRequest, context: grpc.ServicerContext
    ) -> csi_pb2.GetPluginInfoResponse:
        return csi_pb2.GetPluginInfoResponse(name=self._name, vendor_version=self._version)

    def GetPluginCapabilities(
        self, request: csi_pb2.GetPluginCapabilitiesRequest, context: grpc.ServicerContext
    ) -> csi_pb2.GetPluginCapabilitiesResponse:
        return csi_pb2.GetPluginCapabilitiesResponse(capabilities=self._capabilities)

    def Probe(
        self, request: csi_pb2.ProbeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ProbeResponse:
        health = self._health()
        if not health.ready:
            _log.warning("probe: not ready: %s", health.reason)
            # Probe has no field for a reason; trailing metadata carries it to `call probe`.
            reason = health.reason or "not ready"
            context.set_trailing_metadata(((NOT_READY_REASON_KEY, reason.encode()),))
        return csi_pb2.ProbeResponse(ready=wrappers_pb2.BoolValue(value=health.ready))
