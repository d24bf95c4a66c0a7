"""
Identity never queues behind backend work: a real gRPC server with every backend call stuck
(fake RDS latency far beyond the callers' deadlines) still answers Probe.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.domain import BackendUnavailable
from rds_csi.entrypoints.config import settings_from
from rds_csi.entrypoints.container import Container
from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc
from rds_csi.entrypoints.settings import Mode


Cap = csi_pb2.VolumeCapability
MOUNT = Cap(
    access_mode=Cap.AccessMode(mode=Cap.AccessMode.SINGLE_NODE_WRITER), mount=Cap.MountVolume()
)
BACKEND_LATENCY = 15.0
IN_FLIGHT = 32


class Served:
    def __init__(self, rds: InMemoryRds) -> None:
        self.rds = rds
        self.container = Container(
            settings=settings_from({"node_id": "n", "backend": "fake", "initiator": "fake"}),
            mode=Mode.ALL,
        )
        self.container.raw_backend.override(rds)  # the breaker stays in front of it
        self.server = self.container.grpc_server()
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.identity = csi_pb2_grpc.IdentityStub(self.channel)
        self.controller = csi_pb2_grpc.ControllerStub(self.channel)

    def create(self, name: str, timeout: float) -> csi_pb2.CreateVolumeResponse:
        return self.controller.CreateVolume(
            csi_pb2.CreateVolumeRequest(
                name=name,
                capacity_range=csi_pb2.CapacityRange(required_bytes=1 << 30),
                volume_capabilities=[MOUNT],
            ),
            timeout=timeout,
        )

    def close(self) -> None:
        self.rds.faults.clear()  # wakes the calls still sleeping out the latency
        self.channel.close()
        self.server.stop(None)


@pytest.fixture
def served() -> Iterator[Served]:
    served = Served(InMemoryRds())
    yield served
    served.close()


def _code(future: futures.Future[object]) -> grpc.StatusCode:
    exc = future.exception()
    assert isinstance(exc, grpc.RpcError)
    return exc.code()


def test_probe_answers_with_every_backend_call_stuck(served: Served) -> None:
    served.rds.faults.latency = BACKEND_LATENCY
    with futures.ThreadPoolExecutor(IN_FLIGHT) as pool:
        creates = [pool.submit(served.create, f"pvc-stuck-{i}", 6.0) for i in range(IN_FLIGHT)]
        for _ in range(3):
            response = served.identity.Probe(csi_pb2.ProbeRequest(), timeout=3)
            assert response.ready.value is False  # the health check is stuck too
        info = served.identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=3)
        assert info.name
        # One more than the driver admits is refused at once, with a reason.
        with pytest.raises(grpc.RpcError) as refused:
            served.create("pvc-one-too-many", 6.0)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "retry later" in str(refused.value.details())
        codes = {_code(c) for c in creates}  # type: ignore[arg-type]
    # Those that waited for a slot are told why before their deadline; the rest time out.
    assert codes == {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED}


def test_an_open_breaker_makes_probe_not_ready_with_the_reason(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    served.rds.faults.fail_next(100, lambda: BackendUnavailable("connection refused"))
    for i in range(5):
        with pytest.raises(grpc.RpcError) as failed:
            served.create(f"pvc-down-{i}", 5.0)
        assert failed.value.code() is grpc.StatusCode.UNAVAILABLE
    calls = len(served.rds.calls)
    with pytest.raises(grpc.RpcError) as fast:
        served.create("pvc-fast", 5.0)
    assert fast.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "unreachable since" in str(fast.value.details())
    assert len(served.rds.calls) == calls  # failed fast: the RDS was not asked
    served.container.health_monitor().refresh(wait=5)
    with caplog.at_level(logging.WARNING):
        assert served.identity.Probe(csi_pb2.ProbeRequest(), timeout=3).ready.value is False
    assert "circuit breaker" in caplog.text
