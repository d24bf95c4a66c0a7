"""The snapshot RPCs through the container and a real gRPC server (in memory)."""

from __future__ import annotations

import pathlib

import grpc
from dependency_injector import providers

from rds_csi.adapters.routeros_rest.snapshots import RouterOsRestSnapshots
from rds_csi.domain import SnapshotId, VolumeId
from rds_csi.entrypoints.config import settings_from
from rds_csi.entrypoints.container import Container
from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc
from rds_csi.entrypoints.settings import Mode
from tests.unit.entrypoints import test_servicers as servicers
from tests.unit.entrypoints.test_servicers import Start, code_of


start = servicers.start  # the fixture, found here by pytest
_Rpc = csi_pb2.ControllerServiceCapability.RPC
SNAPSHOT_CAPS = {_Rpc.CREATE_DELETE_SNAPSHOT, _Rpc.LIST_SNAPSHOTS, _Rpc.CLONE_VOLUME}


def _caps(driver: servicers.Driver) -> set[int]:
    got = driver.controller.ControllerGetCapabilities(csi_pb2.ControllerGetCapabilitiesRequest())
    return {c.rpc.type for c in got.capabilities}


def test_a_snapshot_held_by_another_call_is_aborted(start: Start) -> None:
    driver = start()
    source = driver.create("pvc-a").volume.volume_id
    sid = str(SnapshotId.for_name("snap-a", VolumeId(source)))
    request = csi_pb2.CreateSnapshotRequest(name="snap-a", source_volume_id=source)
    with driver.container.controller_locks().hold(sid):
        assert code_of(lambda: driver.controller.CreateSnapshot(request)) == (
            grpc.StatusCode.ABORTED
        )
        assert code_of(
            lambda: driver.controller.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest(snapshot_id=sid))
        ) == (grpc.StatusCode.ABORTED)
    assert driver.controller.CreateSnapshot(request).snapshot.snapshot_id == sid


def test_snapshots_are_advertised_with_a_snapshot_backend(start: Start) -> None:
    assert _caps(start()) >= SNAPSHOT_CAPS


def test_without_a_snapshot_backend_nothing_is_advertised_or_served(start: Start) -> None:
    # as with a backend kind that had no SnapshotBackend
    settings = settings_from(
        {"node_id": "node-1", "backend": "fake", "initiator": "fake", "kubernetes": "fake"}
    )
    container = Container(settings=settings, mode=Mode("all"))
    container.snapshots.served.override(providers.Object("no"))
    server = container.grpc_server()
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = csi_pb2_grpc.ControllerStub(channel)
            got = stub.ControllerGetCapabilities(csi_pb2.ControllerGetCapabilitiesRequest())
            assert SNAPSHOT_CAPS.isdisjoint({c.rpc.type for c in got.capabilities})
            assert code_of(
                lambda: stub.CreateSnapshot(
                    csi_pb2.CreateSnapshotRequest(name="s", source_volume_id="pvc-x")
                )
            ) == (grpc.StatusCode.UNIMPLEMENTED)
            source = csi_pb2.VolumeContentSource(
                volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id="pvc-x")
            )
            request = csi_pb2.CreateVolumeRequest(
                name="c", volume_capabilities=[servicers.MOUNT], volume_content_source=source
            )
            assert code_of(lambda: stub.CreateVolume(request)) == (grpc.StatusCode.INVALID_ARGUMENT)
    finally:
        server.stop(None)


def test_the_rest_control_plane_serves_snapshots(tmp_path: pathlib.Path) -> None:
    password = tmp_path / "rest-password"
    password.write_text("not-used\n")
    settings = settings_from(
        {
            "node_id": "node-1",
            "backend": "rest",
            "rds_address": "192.0.2.1",  # never reached: connections open on first use
            "rds_rest_password_file": str(password),
            "snapshot_method": "copy-from",
            "initiator": "fake",
            "kubernetes": "fake",
        }
    )
    container = Container(settings=settings, mode=Mode("all"))
    assert container.snapshots.served() == "yes"
    backend = container.snapshots.backend()
    assert isinstance(backend, RouterOsRestSnapshots)
    assert backend.method == "copy-from"
    assert container.snapshots.use_cases() is not None
