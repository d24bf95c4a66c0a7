"""SPEC-CHECKLIST.md §3: the Identity service."""

from __future__ import annotations

import re

from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e.checklist.support import (
    DriverProcess,
)


def test_get_plugin_info_name_and_vendor_version(driver: DriverProcess) -> None:
    info = driver.identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest())
    assert re.fullmatch(r"[A-Za-z]([A-Za-z0-9.-]{0,61}[A-Za-z])?", info.name)
    assert info.vendor_version


def test_get_plugin_capabilities_controller_and_online_expansion(driver: DriverProcess) -> None:
    caps = driver.identity.GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest())
    services = {c.service.type for c in caps.capabilities if c.HasField("service")}
    expansion = [
        c.volume_expansion.type for c in caps.capabilities if c.HasField("volume_expansion")
    ]
    assert services == {csi_pb2.PluginCapability.Service.CONTROLLER_SERVICE}
    assert expansion == [csi_pb2.PluginCapability.VolumeExpansion.ONLINE]


def test_probe_ready(driver: DriverProcess) -> None:
    response = driver.identity.Probe(csi_pb2.ProbeRequest())
    assert response.HasField("ready")
    assert response.ready.value
