"""
The servicers in-process: the container wires them, a real gRPC server on 127.0.0.1:0 serves
them, a client from our stubs calls them. Providers are overridden, never patched.
"""

from __future__ import annotations

import logging
import pathlib
import threading
from collections.abc import Callable, Iterator, Sequence

import attrs
import grpc
import pytest

from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.application.ports import StorageBackend
from rds_csi.domain import CapacityReport, Size, Volume, VolumeId
from rds_csi.entrypoints.config import settings_from
from rds_csi.entrypoints.container import Container
from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc
from rds_csi.entrypoints.settings import Mode


Cap = csi_pb2.VolumeCapability
MOUNT = Cap(
    access_mode=Cap.AccessMode(mode=Cap.AccessMode.SINGLE_NODE_WRITER), mount=Cap.MountVolume()
)
GIB = 1 << 30
_Service = csi_pb2.PluginCapability.Service


@attrs.define
class Driver:
    container: Container
    channel: grpc.Channel
    identity: csi_pb2_grpc.IdentityStub
    controller: csi_pb2_grpc.ControllerStub
    node: csi_pb2_grpc.NodeStub
    group: csi_pb2_grpc.GroupControllerStub

    def create(self, name: str, **kw: object) -> csi_pb2.CreateVolumeResponse:
        return self.controller.CreateVolume(
            csi_pb2.CreateVolumeRequest(
                name=name,
                capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
                volume_capabilities=[MOUNT],
                **kw,  # type: ignore[arg-type]
            )
        )

    def plugin_services(self) -> set[int]:
        caps = self.identity.GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest())
        return {c.service.type for c in caps.capabilities if c.HasField("service")}


Start = Callable[..., Driver]


@pytest.fixture
def start() -> Iterator[Start]:
    """``start(mode="all", backend=<StorageBackend>, **config)`` -> a served Driver."""
    servers: list[tuple[grpc.Server, grpc.Channel]] = []

    def _start(
        mode: str = "all", backend: StorageBackend | None = None, **config: object
    ) -> Driver:
        settings = settings_from(
            {
                "node_id": "node-1",
                "backend": "fake",
                "initiator": "fake",
                "kubernetes": "fake",
                **config,
            }
        )
        container = Container(settings=settings, mode=Mode(mode))
        if backend is not None:
            container.backend.override(backend)
        server = container.grpc_server()
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        servers.append((server, channel))
        return Driver(
            container,
            channel,
            csi_pb2_grpc.IdentityStub(channel),
            csi_pb2_grpc.ControllerStub(channel),
            csi_pb2_grpc.NodeStub(channel),
            csi_pb2_grpc.GroupControllerStub(channel),
        )

    yield _start
    for server, channel in servers:
        channel.close()
        server.stop(None)


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


class GatedRds(InMemoryRds):
    """An RDS whose create_volume waits for the test: a call held in flight, on purpose."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def create_volume(self, volume: Volume) -> Volume:
        self.entered.set()
        assert self.release.wait(10)
        return super().create_volume(volume)


class BrokenRds(InMemoryRds):
    """An RDS adapter with a bug: it leaks a raw exception (the table must not)."""

    def list_volumes(self) -> Sequence[Volume]:
        raise RuntimeError("adapter bug, password=hunter2")


class TestAborted:
    """Checklist, every RPC: another operation in flight on the same volume -> 10 ABORTED."""

    def test_create_while_the_same_create_is_in_flight(self, start: Start) -> None:
        rds = GatedRds()
        driver = start(backend=rds)
        request = csi_pb2.CreateVolumeRequest(name="pvc-a", volume_capabilities=[MOUNT])
        first = driver.controller.CreateVolume.future(request)
        assert rds.entered.wait(10)
        assert code_of(lambda: driver.controller.CreateVolume(request)) == grpc.StatusCode.ABORTED
        rds.release.set()
        assert first.result(timeout=10).volume.volume_id == str(VolumeId.from_name("pvc-a"))

    def test_node_operation_while_the_volume_is_held(self, start: Start) -> None:
        driver = start()
        vid = str(VolumeId.from_name("pvc-a"))
        with driver.container.node.locks().hold(vid):
            code = code_of(
                lambda: driver.node.NodeUnstageVolume(
                    csi_pb2.NodeUnstageVolumeRequest(
                        volume_id=vid, staging_target_path="/var/lib/kubelet/plugins/s"
                    )
                )
            )
        assert code == grpc.StatusCode.ABORTED

    def test_delete_and_expand_while_the_volume_is_held(self, start: Start) -> None:
        driver = start()
        vid = driver.create("pvc-a").volume.volume_id
        with driver.container.controller_locks().hold(vid):
            delete = code_of(
                lambda: driver.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=vid))
            )
            expand = code_of(
                lambda: driver.controller.ControllerExpandVolume(
                    csi_pb2.ControllerExpandVolumeRequest(
                        volume_id=vid, capacity_range=csi_pb2.CapacityRange(required_bytes=2 * GIB)
                    )
                )
            )
        assert delete == expand == grpc.StatusCode.ABORTED


class TestProbe:
    """Checklist, Probe: ready when healthy; not ready (OK, ready=false) when the RDS is down."""

    def test_ready_then_not_ready_while_the_rds_is_unreachable(self, start: Start) -> None:
        rds = InMemoryRds()
        driver = start(backend=rds)
        probe = driver.identity.Probe
        assert probe(csi_pb2.ProbeRequest()).ready.value is True
        rds.faults.fail_next(1, operations={"check_health"})
        monitor = driver.container.health_monitor()
        monitor.refresh(wait=10)  # what the background loop does every interval
        response = probe(csi_pb2.ProbeRequest())
        assert response.HasField("ready")
        assert response.ready.value is False
        monitor.refresh(wait=10)
        assert probe(csi_pb2.ProbeRequest()).ready.value is True

    def test_a_node_does_not_ask_the_rds(self, start: Start) -> None:
        rds = InMemoryRds()
        driver = start("node", backend=rds)
        assert driver.identity.Probe(csi_pb2.ProbeRequest()).ready.value is True
        assert "check_health" not in rds.calls


class TestModes:
    """Checklist, rules for every RPC: disabled in this mode -> 12 UNIMPLEMENTED."""

    def test_controller_only(self, start: Start) -> None:
        driver = start("controller")
        assert _Service.CONTROLLER_SERVICE in driver.plugin_services()
        # external-resizer asks the controller socket for node capabilities
        caps = driver.node.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest())
        assert len(caps.capabilities) == 5
        for call in (
            lambda: driver.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest()),
            lambda: driver.node.NodeStageVolume(csi_pb2.NodeStageVolumeRequest()),
            lambda: driver.node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest()),
        ):
            assert code_of(call) == grpc.StatusCode.UNIMPLEMENTED

    def test_node_only(self, start: Start) -> None:
        driver = start("node")
        assert _Service.CONTROLLER_SERVICE not in driver.plugin_services()
        caps = driver.controller.ControllerGetCapabilities(
            csi_pb2.ControllerGetCapabilitiesRequest()
        )
        assert list(caps.capabilities) == []
        assert code_of(lambda: driver.create("pvc-a")) == grpc.StatusCode.UNIMPLEMENTED
        assert driver.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest()).node_id == "node-1"

    def test_a_lone_node_stages_from_the_context_alone(
        self, start: Start, tmp_path: pathlib.Path
    ) -> None:
        # No controller in this process: the fake initiator has no RDS to ask.
        driver = start("node", kubelet_dir=str(tmp_path))
        staging = str(tmp_path / "globalmount")
        vid = str(VolumeId.from_name("made-by-another-process"))
        driver.node.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(
                volume_id=vid,
                staging_target_path=staging,
                volume_capability=MOUNT,
                volume_context={
                    "nqn": f"nqn.2000-02.com.mikrotik:{vid}",
                    "nvmeAddress": "10.0.0.9",
                },
            )
        )
        stats = driver.node.NodeGetVolumeStats(
            csi_pb2.NodeGetVolumeStatsRequest(volume_id=vid, volume_path=staging)
        )
        assert stats.usage[0].total > 0

    def test_group_controller_is_not_served(self, start: Start) -> None:
        driver = start()
        code = code_of(
            lambda: driver.group.GroupControllerGetCapabilities(
                csi_pb2.GroupControllerGetCapabilitiesRequest()
            )
        )
        assert code == grpc.StatusCode.UNIMPLEMENTED


class TestTopology:
    """Checklist, topology: VOLUME_ACCESSIBILITY_CONSTRAINTS only when segments are set."""

    KEY = "topology.rds.csi.srvlab.io/rds"

    def test_off_by_default(self, start: Start) -> None:
        driver = start()
        assert _Service.VOLUME_ACCESSIBILITY_CONSTRAINTS not in driver.plugin_services()
        info = driver.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest())
        assert not info.HasField("accessible_topology")
        assert list(driver.create("pvc-a").volume.accessible_topology) == []

    def test_on_with_segments(self, start: Start) -> None:
        driver = start(topology=[f"{self.KEY}=rds1"], max_volumes_per_node=7)
        assert _Service.VOLUME_ACCESSIBILITY_CONSTRAINTS in driver.plugin_services()
        info = driver.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest())
        assert dict(info.accessible_topology.segments) == {self.KEY: "rds1"}
        assert info.max_volumes_per_node == 7
        here = csi_pb2.TopologyRequirement(
            requisite=[csi_pb2.Topology(segments={self.KEY: "rds1"})]
        )
        made = driver.create("pvc-a", accessibility_requirements=here)
        assert [dict(t.segments) for t in made.volume.accessible_topology] == [{self.KEY: "rds1"}]

    def test_requisite_this_rds_cannot_serve_is_resource_exhausted(self, start: Start) -> None:
        driver = start(topology=[f"{self.KEY}=rds1"])
        elsewhere = csi_pb2.TopologyRequirement(
            requisite=[csi_pb2.Topology(segments={self.KEY: "rds2"})]
        )
        code = code_of(lambda: driver.create("pvc-a", accessibility_requirements=elsewhere))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


class TestInterceptor:
    def test_unexpected_exception_is_internal_with_traceback_logged_not_sent(
        self, start: Start, caplog: pytest.LogCaptureFixture
    ) -> None:
        driver = start(backend=BrokenRds())
        with pytest.raises(grpc.RpcError) as info:
            driver.controller.ListVolumes(csi_pb2.ListVolumesRequest())
        assert info.value.code() == grpc.StatusCode.INTERNAL
        assert "hunter2" not in (info.value.details() or "")
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert errors
        assert errors[0].exc_info is not None

    def test_one_log_line_per_call_with_method_volume_duration_and_code(
        self, start: Start, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="rds_csi.rpc")
        driver = start()
        vid = driver.create("pvc-a").volume.volume_id
        code_of(
            lambda: driver.controller.ControllerGetVolume(
                csi_pb2.ControllerGetVolumeRequest(volume_id=str(VolumeId.from_name("nope")))
            )
        )
        lines = [getattr(r, "fields", None) for r in caplog.records if r.name == "rds_csi.rpc"]
        assert len(lines) == 2
        assert lines[0] is not None
        assert lines[1] is not None
        assert (lines[0]["method"], lines[0]["volume_id"], lines[0]["code"]) == (
            "CreateVolume",
            vid,
            "OK",
        )
        assert lines[1]["code"] == "NOT_FOUND"
        assert "not found" in str(lines[1]["error"])
        assert all(isinstance(line["duration_ms"], float) for line in lines)  # type: ignore[index]

    def test_secrets_are_never_logged_even_at_debug(
        self, start: Start, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        driver = start()
        driver.create("pvc-a", secrets={"password": "hunter2"})
        driver.controller.DeleteVolume(
            csi_pb2.DeleteVolumeRequest(volume_id="pvc-x", secrets={"token": "s3cr3t"})
        )
        assert "CreateVolume" in caplog.text  # the requests were logged at all...
        assert "hunter2" not in caplog.text  # ...without their secrets
        assert "s3cr3t" not in caplog.text

    def test_metrics_count_requests_errors_and_latency(self, start: Start) -> None:
        driver = start()
        for _ in range(3):
            driver.identity.Probe(csi_pb2.ProbeRequest())
        code_of(lambda: driver.create(""))
        registry = driver.container.metrics_registry()

        def sample(name: str, **labels: str) -> float | None:
            return registry.get_sample_value(name, labels)

        assert sample("rds_csi_rpc_requests_total", method="Probe", code="OK") == 3
        assert sample("rds_csi_rpc_errors_total", method="Probe", code="OK") is None
        assert (
            sample("rds_csi_rpc_errors_total", method="CreateVolume", code="INVALID_ARGUMENT") == 1
        )
        assert sample("rds_csi_rpc_duration_seconds_count", method="Probe") == 3
        assert sample("rds_csi_rpc_in_flight", method="Probe") == 0


class FullRds(InMemoryRds):
    def capacity(self) -> CapacityReport:
        return CapacityReport(total=Size(GIB), free=Size(0))


def test_container_override_reaches_the_servicers(start: Start) -> None:
    driver = start(backend=FullRds())
    capacity = driver.controller.GetCapacity(csi_pb2.GetCapacityRequest())
    assert capacity.available_capacity == 0
