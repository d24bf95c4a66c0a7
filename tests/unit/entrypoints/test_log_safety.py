"""
Request values cannot forge log lines, flood the log or a status, or leak a mount password:
a real gRPC server, its log read through the driver's own text formatter.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator

import attrs
import grpc
import pytest

from rds_csi.domain import VolumeId
from rds_csi.entrypoints.config import settings_from
from rds_csi.entrypoints.container import Container
from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc
from rds_csi.entrypoints.logs import TextFormatter
from rds_csi.entrypoints.settings import Mode


Cap = csi_pb2.VolumeCapability
FORGED = "2026-01-01T00:00:00.000Z INFO rds_csi.rpc rpc method=DeleteVolume code=OK"


@attrs.define
class Driver:
    controller: csi_pb2_grpc.ControllerStub
    node: csi_pb2_grpc.NodeStub
    log: io.StringIO

    def lines(self) -> list[str]:
        return self.log.getvalue().splitlines()


@pytest.fixture
def driver() -> Iterator[Driver]:
    container = Container(
        settings=settings_from({"node_id": "n", "backend": "fake", "initiator": "fake"}),
        mode=Mode.ALL,
    )
    server = container.grpc_server()
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield Driver(csi_pb2_grpc.ControllerStub(channel), csi_pb2_grpc.NodeStub(channel), log)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        channel.close()
        server.stop(None)


def _error(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def _mount(*flags: str) -> csi_pb2.VolumeCapability:
    return Cap(
        access_mode=Cap.AccessMode(mode=Cap.AccessMode.SINGLE_NODE_WRITER),
        mount=Cap.MountVolume(mount_flags=list(flags)),
    )


def test_a_newline_in_a_parameter_key_cannot_forge_a_log_line(driver: Driver) -> None:
    driver.controller.CreateVolume(
        csi_pb2.CreateVolumeRequest(
            name="pvc-forge",
            capacity_range=csi_pb2.CapacityRange(required_bytes=1 << 30),
            volume_capabilities=[_mount()],
            parameters={f"typo\n{FORGED}": "x"},
        )
    )
    warning = [line for line in driver.lines() if "ignoring unknown" in line]
    assert len(warning) == 1
    assert "\\n2026-01-01T00:00:00.000Z" in warning[0]  # shown, escaped, on the same line
    assert not any(line.startswith(FORGED) for line in driver.lines())


def test_a_carriage_return_in_a_volume_id_is_escaped(driver: Driver) -> None:
    vid = "pvc-1\rfake"
    error = _error(
        lambda: driver.node.NodeUnpublishVolume(
            csi_pb2.NodeUnpublishVolumeRequest(volume_id=vid, target_path="/nowhere")
        )
    )
    assert "\r" not in str(error.details())
    assert "\r" not in driver.log.getvalue()
    rpc = [line for line in driver.lines() if "method=NodeUnpublishVolume" in line]
    assert len(rpc) == 1
    assert "pvc-1\\" in rpc[0]  # the CR, written as an escape on the RPC's own line


def test_a_huge_token_is_capped_in_the_status_and_the_log(driver: Driver) -> None:
    token = "A" * ((4 << 20) - 64)  # just under gRPC's 4 MiB message limit
    error = _error(
        lambda: driver.controller.ListVolumes(csi_pb2.ListVolumesRequest(starting_token=token))
    )
    assert error.code() is grpc.StatusCode.ABORTED
    details = str(error.details())
    assert len(details) < 2048
    assert "more characters" in details
    assert len(driver.log.getvalue()) < 32 * 1024  # the request's DEBUG line included


@pytest.mark.parametrize("rpc", ["stage", "publish"])
def test_an_invalid_mount_flag_is_named_never_shown(
    driver: Driver, rpc: str, caplog: pytest.LogCaptureFixture
) -> None:
    vid = str(VolumeId.from_name("pvc-secret"))
    capability = _mount("noatime", "username=bob,password=secret")

    def call() -> object:
        if rpc == "stage":
            return driver.node.NodeStageVolume(
                csi_pb2.NodeStageVolumeRequest(
                    volume_id=vid, staging_target_path="/s", volume_capability=capability
                )
            )
        return driver.node.NodePublishVolume(
            csi_pb2.NodePublishVolumeRequest(
                volume_id=vid,
                staging_target_path="/s",
                target_path="/t",
                volume_capability=capability,
            )
        )

    with caplog.at_level(logging.DEBUG):
        error = _error(call)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "'username'" in str(error.details())
    for text in (str(error.details()), driver.log.getvalue(), caplog.text):
        assert "secret" not in text.replace("pvc-secret", "")
        assert "bob" not in text
