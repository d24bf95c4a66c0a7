"""SPEC-CHECKLIST.md §1 (not implemented) and §4: the Controller service."""

from __future__ import annotations

import pytest

from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e.checklist.support import (
    GIB,
    MNMW_MOUNT,
    MNSW_BLOCK,
    MOUNT,
    SNMW,
    TIB,
    UNKNOWN_ID,
    C,
    Cap,
    DriverProcess,
    Mode,
    Row,
    block_capability,
    check_error_row,
    cr,
    rng,
    unique_name,
)


# --- rows that end in an error code ---------------------------------------------------------


def _create_twice_incompatible(d: DriverProcess) -> None:
    name = unique_name()
    d.controller.CreateVolume(cr(name=name, capacity_range=rng(GIB)))
    d.controller.CreateVolume(cr(name=name, capacity_range=rng(4 * GIB)))


def _expand_below_current(d: DriverProcess) -> None:
    vid = d.create(size=2 * GIB).volume_id
    d.controller.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(volume_id=vid, capacity_range=rng(GIB, GIB))
    )


def pr(**kw: object) -> csi_pb2.ControllerPublishVolumeRequest:
    """A ControllerPublishVolume request to the driver's own node (the fake cluster's one)."""
    base: dict[str, object] = {
        "volume_id": UNKNOWN_ID,
        "node_id": "e2e-node",
        "volume_capability": MOUNT,
    }
    return csi_pb2.ControllerPublishVolumeRequest(**{**base, **kw})  # type: ignore[arg-type]


def _publish_incompatible(d: DriverProcess) -> None:
    volume = d.create()
    d.controller.ControllerPublishVolume(pr(volume_id=volume.volume_id))
    d.controller.ControllerPublishVolume(pr(volume_id=volume.volume_id, readonly=True))


def _publish_unknown_node(d: DriverProcess) -> None:
    volume = d.create()
    d.controller.ControllerPublishVolume(pr(volume_id=volume.volume_id, node_id="no-such-node"))


def _delete_attached(d: DriverProcess) -> None:
    volume = d.create()
    d.controller.ControllerPublishVolume(pr(volume_id=volume.volume_id))
    d.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id))


ERROR_ROWS = [
    # §1 generic: not implemented -> 12 (and never advertised: see the capability tests)
    *(
        Row(f"{m}: not implemented -> 12", c, C.UNIMPLEMENTED)
        for m, c in [
            (
                "ControllerModifyVolume",
                lambda d: d.controller.ControllerModifyVolume(
                    csi_pb2.ControllerModifyVolumeRequest()
                ),
            ),
        ]
    ),
    # §4 CreateVolume
    Row(
        "CreateVolume: name missing -> 3",
        lambda d: d.controller.CreateVolume(cr(name="")),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: name with a control character -> 3",
        lambda d: d.controller.CreateVolume(cr(name="pvc-\x07bell")),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: name longer than 128 bytes -> 3",
        lambda d: d.controller.CreateVolume(cr(name="pvc-" + "x" * 125)),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: volume_capabilities missing -> 3",
        lambda d: d.controller.CreateVolume(cr(volume_capabilities=[])),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: capability without access_mode -> 3",
        lambda d: d.controller.CreateVolume(cr(volume_capabilities=[Cap(mount=Cap.MountVolume())])),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: capability without access_type -> 3",
        lambda d: d.controller.CreateVolume(
            cr(volume_capabilities=[Cap(access_mode=MOUNT.access_mode)])
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: unsupported capability (MULTI_NODE_MULTI_WRITER filesystem) -> 3",
        lambda d: d.controller.CreateVolume(cr(volume_capabilities=[MNMW_MOUNT])),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: unsupported capability (MULTI_NODE_SINGLE_WRITER) -> 3",
        lambda d: d.controller.CreateVolume(cr(volume_capabilities=[MNSW_BLOCK])),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: one of several capabilities unsupported -> 3",
        lambda d: d.controller.CreateVolume(cr(volume_capabilities=[MOUNT, MNMW_MOUNT])),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: capacity_range set without bounds -> 3",
        lambda d: d.controller.CreateVolume(cr(capacity_range=rng())),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: negative bound -> 3",
        lambda d: d.controller.CreateVolume(cr(capacity_range=rng(-1))),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: limit below required -> 3",
        lambda d: d.controller.CreateVolume(cr(capacity_range=rng(2 * GIB, GIB))),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: range cannot be satisfied (limit below the 1 GiB minimum) -> 11",
        lambda d: d.controller.CreateVolume(cr(capacity_range=rng(1, 1 << 20))),
        C.OUT_OF_RANGE,
    ),
    Row(
        "CreateVolume: range cannot be satisfied (above the 16 TiB maximum) -> 11",
        lambda d: d.controller.CreateVolume(cr(capacity_range=rng(17 * TIB))),
        C.OUT_OF_RANGE,
    ),
    Row(
        "CreateVolume: same name, incompatible -> 6",
        _create_twice_incompatible,
        C.ALREADY_EXISTS,
    ),
    Row(
        "CreateVolume: bad parameters -> 3",
        lambda d: d.controller.CreateVolume(cr(parameters={"nvmePort": "four"})),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "CreateVolume: not enough space on the RDS -> 8",
        lambda d: d.controller.CreateVolume(cr(capacity_range=rng(12 * TIB))),
        C.RESOURCE_EXHAUSTED,
    ),
    # §4 ControllerPublishVolume / ControllerUnpublishVolume (the other-node rows, 9 with the
    # holder named, are in test_attachments.py: they need a second node in the cluster)
    Row(
        "ControllerPublishVolume: volume_id missing -> 3",
        lambda d: d.controller.ControllerPublishVolume(pr(volume_id="")),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "ControllerPublishVolume: node_id missing -> 3",
        lambda d: d.controller.ControllerPublishVolume(pr(node_id="")),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "ControllerPublishVolume: volume_capability missing -> 3",
        lambda d: d.controller.ControllerPublishVolume(
            csi_pb2.ControllerPublishVolumeRequest(volume_id=UNKNOWN_ID, node_id="e2e-node")
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "ControllerPublishVolume: volume unknown -> 5",
        lambda d: d.controller.ControllerPublishVolume(pr()),
        C.NOT_FOUND,
    ),
    Row("ControllerPublishVolume: node unknown -> 5", _publish_unknown_node, C.NOT_FOUND),
    Row(
        "ControllerPublishVolume: published to this node but incompatible -> 6",
        _publish_incompatible,
        C.ALREADY_EXISTS,
    ),
    Row(
        "ControllerUnpublishVolume: volume_id missing -> 3",
        lambda d: d.controller.ControllerUnpublishVolume(
            csi_pb2.ControllerUnpublishVolumeRequest(node_id="e2e-node")
        ),
        C.INVALID_ARGUMENT,
    ),
    Row("DeleteVolume: in use (attached) -> 9", _delete_attached, C.FAILED_PRECONDITION),
    # §4 DeleteVolume
    Row(
        "DeleteVolume: volume_id missing -> 3",
        lambda d: d.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest()),
        C.INVALID_ARGUMENT,
    ),
    # §4 ValidateVolumeCapabilities
    Row(
        "ValidateVolumeCapabilities: volume_id missing -> 3",
        lambda d: d.controller.ValidateVolumeCapabilities(
            csi_pb2.ValidateVolumeCapabilitiesRequest(volume_capabilities=[MOUNT])
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "ValidateVolumeCapabilities: volume_capabilities missing -> 3",
        lambda d: d.controller.ValidateVolumeCapabilities(
            csi_pb2.ValidateVolumeCapabilitiesRequest(volume_id=d.create().volume_id)
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "ValidateVolumeCapabilities: unknown volume -> 5",
        lambda d: d.controller.ValidateVolumeCapabilities(
            csi_pb2.ValidateVolumeCapabilitiesRequest(
                volume_id=UNKNOWN_ID, volume_capabilities=[MOUNT]
            )
        ),
        C.NOT_FOUND,
    ),
    # §4 ListVolumes
    Row(
        "ListVolumes: negative max_entries -> 3",
        lambda d: d.controller.ListVolumes(csi_pb2.ListVolumesRequest(max_entries=-1)),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "ListVolumes: unknown starting_token -> 10",
        lambda d: d.controller.ListVolumes(
            csi_pb2.ListVolumesRequest(starting_token="not-a-token-of-ours")
        ),
        C.ABORTED,
    ),
    # §4 ControllerExpandVolume
    Row(
        "ControllerExpandVolume: volume_id missing -> 3",
        lambda d: d.controller.ControllerExpandVolume(
            csi_pb2.ControllerExpandVolumeRequest(capacity_range=rng(GIB))
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "ControllerExpandVolume: capacity_range missing -> 3",
        lambda d: d.controller.ControllerExpandVolume(
            csi_pb2.ControllerExpandVolumeRequest(volume_id=d.create().volume_id)
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "ControllerExpandVolume: unknown volume -> 5",
        lambda d: d.controller.ControllerExpandVolume(
            csi_pb2.ControllerExpandVolumeRequest(volume_id=UNKNOWN_ID, capacity_range=rng(GIB))
        ),
        C.NOT_FOUND,
    ),
    Row(
        "ControllerExpandVolume: bad range (limit below the current size) -> 11",
        _expand_below_current,
        C.OUT_OF_RANGE,
    ),
    Row(
        "ControllerExpandVolume: bad range (above the maximum) -> 11",
        lambda d: d.controller.ControllerExpandVolume(
            csi_pb2.ControllerExpandVolumeRequest(
                volume_id=d.create().volume_id, capacity_range=rng(17 * TIB)
            )
        ),
        C.OUT_OF_RANGE,
    ),
    Row(
        "ControllerExpandVolume: unsupported capability -> 3",
        lambda d: d.controller.ControllerExpandVolume(
            csi_pb2.ControllerExpandVolumeRequest(
                volume_id=d.create().volume_id,
                capacity_range=rng(2 * GIB),
                volume_capability=MNMW_MOUNT,
            )
        ),
        C.INVALID_ARGUMENT,
    ),
    # §4 ControllerGetVolume
    Row(
        "ControllerGetVolume: volume_id missing -> 3",
        lambda d: d.controller.ControllerGetVolume(csi_pb2.ControllerGetVolumeRequest()),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "ControllerGetVolume: unknown volume -> 5",
        lambda d: d.controller.ControllerGetVolume(
            csi_pb2.ControllerGetVolumeRequest(volume_id=UNKNOWN_ID)
        ),
        C.NOT_FOUND,
    ),
    Row(
        "ControllerGetVolume: an ID not of ours -> 5",
        lambda d: d.controller.ControllerGetVolume(
            csi_pb2.ControllerGetVolumeRequest(volume_id="vol-from-another-driver")
        ),
        C.NOT_FOUND,
    ),
]


@pytest.mark.parametrize("row", ERROR_ROWS, ids=[r.row for r in ERROR_ROWS])
def test_error_row(driver: DriverProcess, row: Row) -> None:
    check_error_row(driver, row)


# --- the other rows -------------------------------------------------------------------------

_Rpc = csi_pb2.ControllerServiceCapability.RPC


def test_controller_get_capabilities_lists_exactly_what_we_serve(driver: DriverProcess) -> None:
    caps = driver.controller.ControllerGetCapabilities(csi_pb2.ControllerGetCapabilitiesRequest())
    assert {c.rpc.type for c in caps.capabilities} == {
        _Rpc.CREATE_DELETE_VOLUME,
        _Rpc.LIST_VOLUMES,
        _Rpc.GET_CAPACITY,
        _Rpc.EXPAND_VOLUME,
        _Rpc.GET_VOLUME,
        _Rpc.SINGLE_NODE_MULTI_WRITER,
        _Rpc.CREATE_DELETE_SNAPSHOT,
        _Rpc.LIST_SNAPSHOTS,
        _Rpc.CLONE_VOLUME,
        _Rpc.PUBLISH_UNPUBLISH_VOLUME,
        _Rpc.LIST_VOLUMES_PUBLISHED_NODES,
    }  # no PUBLISH_READONLY (not honoured)


def test_controller_publish_is_idempotent_and_lists_the_node(driver: DriverProcess) -> None:
    volume = driver.create()
    first = driver.controller.ControllerPublishVolume(pr(volume_id=volume.volume_id))
    again = driver.controller.ControllerPublishVolume(pr(volume_id=volume.volume_id))
    assert again.publish_context == first.publish_context
    assert first.publish_context["nqn"] == volume.volume_context["nqn"]
    got = driver.controller.ControllerGetVolume(
        csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id)
    )
    assert list(got.status.published_node_ids) == ["e2e-node"]
    listed = driver.controller.ListVolumes(csi_pb2.ListVolumesRequest())
    entry = next(e for e in listed.entries if e.volume.volume_id == volume.volume_id)
    assert list(entry.status.published_node_ids) == ["e2e-node"]


def test_controller_unpublish_not_attached_or_unknown_is_ok(driver: DriverProcess) -> None:
    volume = driver.create()
    unpublish = driver.controller.ControllerUnpublishVolume
    unpublish(csi_pb2.ControllerUnpublishVolumeRequest(volume_id=volume.volume_id))
    unpublish(csi_pb2.ControllerUnpublishVolumeRequest(volume_id=UNKNOWN_ID, node_id="x"))
    driver.controller.ControllerPublishVolume(pr(volume_id=volume.volume_id))
    request = csi_pb2.ControllerUnpublishVolumeRequest(
        volume_id=volume.volume_id, node_id="e2e-node"
    )
    unpublish(request)
    unpublish(request)
    driver.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id))


def test_node_stage_works_from_publish_context_alone(driver: DriverProcess) -> None:
    volume = driver.create()
    published = driver.controller.ControllerPublishVolume(pr(volume_id=volume.volume_id))
    staging = driver.staging_dir(volume.volume_id)
    driver.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=volume.volume_id,
            staging_target_path=staging,
            volume_capability=MOUNT,
            publish_context=published.publish_context,
        )
    )
    driver.node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=volume.volume_id, staging_target_path=staging)
    )


def test_create_volume_returns_capacity_at_least_required(driver: DriverProcess) -> None:
    volume = driver.create(size=GIB + 1)
    assert volume.capacity_bytes >= GIB + 1


def test_create_volume_same_name_compatible_returns_the_same_volume(driver: DriverProcess) -> None:
    name = unique_name()
    first = driver.controller.CreateVolume(cr(name=name)).volume
    second = driver.controller.CreateVolume(cr(name=name, capacity_range=rng(GIB, 2 * GIB)))
    assert second.volume == first


def test_create_volume_without_capacity_range_gets_the_minimum(driver: DriverProcess) -> None:
    volume = driver.controller.CreateVolume(
        csi_pb2.CreateVolumeRequest(name=unique_name(), volume_capabilities=[MOUNT])
    ).volume
    assert volume.capacity_bytes == GIB


def test_create_volume_block_multi_node_multi_writer_for_live_migration(
    driver: DriverProcess,
) -> None:
    cap = block_capability(Mode.MULTI_NODE_MULTI_WRITER)
    assert driver.create(capabilities=[cap]).volume_id


def test_delete_volume_unknown_foreign_and_repeated_are_ok(driver: DriverProcess) -> None:
    vid = driver.create().volume_id
    for volume_id in (vid, vid, UNKNOWN_ID, "vol-from-another-driver"):
        driver.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume_id))


def test_validate_supported_is_confirmed_with_an_echo(driver: DriverProcess) -> None:
    volume = driver.create()
    request = csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id=volume.volume_id,
        volume_capabilities=[MOUNT, SNMW],
        volume_context=volume.volume_context,
        parameters={"fsType": "ext4"},
    )
    response = driver.controller.ValidateVolumeCapabilities(request)
    assert list(response.confirmed.volume_capabilities) == [MOUNT, SNMW]
    assert dict(response.confirmed.volume_context) == dict(volume.volume_context)
    assert dict(response.confirmed.parameters) == {"fsType": "ext4"}


def test_validate_unsupported_is_ok_unconfirmed_with_a_message(driver: DriverProcess) -> None:
    response = driver.controller.ValidateVolumeCapabilities(
        csi_pb2.ValidateVolumeCapabilitiesRequest(
            volume_id=driver.create().volume_id, volume_capabilities=[MNMW_MOUNT]
        )
    )
    assert not response.HasField("confirmed")
    assert "MULTI_NODE_MULTI_WRITER" in response.message


def test_list_volumes_pages_through_every_volume_once(driver: DriverProcess) -> None:
    mine = {driver.create().volume_id for _ in range(3)}
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = driver.controller.ListVolumes(
            csi_pb2.ListVolumesRequest(max_entries=2, starting_token=token)
        )
        pages += 1
        assert len(page.entries) <= 2
        seen += [e.volume.volume_id for e in page.entries]
        token = page.next_token
        if not token:
            break
    assert pages >= 2
    assert len(seen) == len(set(seen))
    assert mine <= set(seen)
    everything = driver.controller.ListVolumes(csi_pb2.ListVolumesRequest(max_entries=0))
    assert not everything.next_token
    assert {e.volume.volume_id for e in everything.entries} >= mine


def test_get_capacity_reports_available_and_limits(driver: DriverProcess) -> None:
    capacity = driver.controller.GetCapacity(
        csi_pb2.GetCapacityRequest(volume_capabilities=[MOUNT], parameters={"fsType": "ext4"})
    )
    assert capacity.available_capacity > 0
    assert capacity.minimum_volume_size.value == GIB
    assert 0 < capacity.maximum_volume_size.value <= 16 * TIB


def test_get_capacity_for_an_unsupported_capability_is_zero(driver: DriverProcess) -> None:
    capacity = driver.controller.GetCapacity(
        csi_pb2.GetCapacityRequest(volume_capabilities=[MNMW_MOUNT])
    )
    assert capacity.available_capacity == 0


def test_controller_expand_already_big_enough_is_ok(driver: DriverProcess) -> None:
    vid = driver.create(size=2 * GIB).volume_id
    response = driver.controller.ControllerExpandVolume(
        csi_pb2.ControllerExpandVolumeRequest(volume_id=vid, capacity_range=rng(GIB))
    )
    assert response.capacity_bytes == 2 * GIB
    assert response.node_expansion_required


def test_controller_get_volume_returns_volume_and_status(driver: DriverProcess) -> None:
    volume = driver.create()
    response = driver.controller.ControllerGetVolume(
        csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id)
    )
    assert response.volume.volume_id == volume.volume_id
    assert response.volume.capacity_bytes == volume.capacity_bytes
    assert response.HasField("status")
