"""The caller's gRPC deadline reaches the backend: a real gRPC server on the served container."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.application.deadline import current_deadline
from rds_csi.domain import Volume
from rds_csi.entrypoints.config import settings_from
from rds_csi.entrypoints.container import Container
from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc
from rds_csi.entrypoints.csi.deadlines import MARGIN
from rds_csi.entrypoints.settings import Mode


Cap = csi_pb2.VolumeCapability
MOUNT = Cap(
    access_mode=Cap.AccessMode(mode=Cap.AccessMode.SINGLE_NODE_WRITER), mount=Cap.MountVolume()
)


class SeeingRds(InMemoryRds):
    """Remembers the seconds left on the current deadline when each create came in."""

    def __init__(self) -> None:
        super().__init__()
        self.left: list[float | None] = []

    def create_volume(self, volume: Volume) -> Volume:
        deadline = current_deadline()
        self.left.append(None if deadline is None else deadline.remaining(time.monotonic()))
        return super().create_volume(volume)


@pytest.fixture
def served() -> Iterator[tuple[SeeingRds, csi_pb2_grpc.ControllerStub]]:
    rds = SeeingRds()
    container = Container(
        settings=settings_from({"node_id": "n", "backend": "fake", "initiator": "fake"}),
        mode=Mode.ALL,
    )
    container.raw_backend.override(rds)
    server = container.grpc_server()
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield rds, csi_pb2_grpc.ControllerStub(channel)
    channel.close()
    server.stop(None)


def _create(stub: csi_pb2_grpc.ControllerStub, name: str, timeout: float | None) -> None:
    stub.CreateVolume(
        csi_pb2.CreateVolumeRequest(
            name=name,
            capacity_range=csi_pb2.CapacityRange(required_bytes=1 << 30),
            volume_capabilities=[MOUNT],
        ),
        timeout=timeout,
    )


def test_the_callers_deadline_reaches_the_backend_a_little_early(
    served: tuple[SeeingRds, csi_pb2_grpc.ControllerStub],
) -> None:
    rds, stub = served
    _create(stub, "with-deadline", timeout=4.0)
    (left,) = rds.left
    assert left is not None
    assert 4.0 - MARGIN - 1.0 < left <= 4.0 - MARGIN


def test_a_call_without_a_deadline_leaves_the_adapters_cap(
    served: tuple[SeeingRds, csi_pb2_grpc.ControllerStub],
) -> None:
    rds, stub = served
    _create(stub, "no-deadline", timeout=None)
    assert rds.left == [None]
    assert current_deadline() is None  # nothing leaks out of the call
