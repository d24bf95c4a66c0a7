"""SPEC-CHECKLIST.md §5: the Node service."""

from __future__ import annotations

import pathlib

import pytest

from rds_csi.entrypoints.csi._pb import csi_pb2
from tests.e2e.checklist.support import (
    BLOCK,
    GIB,
    MNMW_MOUNT,
    MOUNT,
    RWOP,
    SNMW,
    UNKNOWN_ID,
    C,
    DriverProcess,
    Row,
    check_error_row,
    mount_capability,
    publish,
    rng,
    stage,
)


FOREIGN_ID = "vol-from-another-driver"  # well-formed, but not a volume ID of ours

# --- rows that end in an error code ---------------------------------------------------------


def _stage_incompatible(d: DriverProcess) -> None:
    s = stage(d)
    d.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=s.volume_id,
            staging_target_path=s.staging,
            volume_capability=BLOCK,
            volume_context=s.context,
        )
    )


def _stage_wrong_filesystem(d: DriverProcess) -> None:
    s = stage(d, mount_capability(fs_type="xfs"))
    d.node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=s.volume_id, staging_target_path=s.staging)
    )
    d.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=s.volume_id,
            staging_target_path=s.staging,
            volume_capability=mount_capability(fs_type="ext4"),
            volume_context=s.context,
        )
    )


def _stage_unknown(d: DriverProcess) -> None:
    d.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=UNKNOWN_ID,
            staging_target_path=d.staging_dir(UNKNOWN_ID),
            volume_capability=MOUNT,
            volume_context={
                "nqn": f"nqn.2000-02.com.mikrotik:{UNKNOWN_ID}",
                "nvmeAddress": "127.0.0.1",
            },
        )
    )


def _stage_without_nqn(d: DriverProcess) -> None:
    vol = d.create()
    context = {k: v for k, v in vol.volume_context.items() if k != "nqn"}
    d.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=vol.volume_id,
            staging_target_path=d.staging_dir(vol.volume_id),
            volume_capability=MOUNT,
            volume_context=context,
        )
    )


def _publish_without_staging(d: DriverProcess) -> None:
    d.node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=UNKNOWN_ID, target_path=d.target_path(UNKNOWN_ID), volume_capability=MOUNT
        )
    )


def _publish_not_staged(d: DriverProcess) -> None:
    vol = d.create()
    d.node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=vol.volume_id,
            staging_target_path=d.staging_dir(vol.volume_id),
            target_path=d.target_path(vol.volume_id),
            volume_capability=MOUNT,
        )
    )


def _publish_same_path_other_args(d: DriverProcess) -> None:
    s = stage(d)
    target = d.target_path(s.volume_id)
    publish(d, s, target)
    publish(d, s, target, readonly=True)


def _publish_single_writer_twice(d: DriverProcess) -> None:
    s = stage(d, RWOP)
    publish(d, s, d.target_path(s.volume_id, "pod-a"), RWOP)
    publish(d, s, d.target_path(s.volume_id, "pod-b"), RWOP)


def _stats_not_there(d: DriverProcess) -> None:
    s = stage(d)
    d.node.NodeGetVolumeStats(
        csi_pb2.NodeGetVolumeStatsRequest(
            volume_id=s.volume_id, volume_path=d.target_path(s.volume_id, "never-published")
        )
    )


def _node_expand_nothing_mounted(d: DriverProcess) -> None:
    vol = d.create()
    d.node.NodeExpandVolume(
        csi_pb2.NodeExpandVolumeRequest(
            volume_id=vol.volume_id, volume_path=d.target_path(vol.volume_id)
        )
    )


def _node_expand_beyond_device(d: DriverProcess) -> None:
    s = stage(d)
    d.node.NodeExpandVolume(
        csi_pb2.NodeExpandVolumeRequest(
            volume_id=s.volume_id, volume_path=s.staging, capacity_range=rng(8 * GIB)
        )
    )


def _node_expand_unsupported(d: DriverProcess) -> None:
    s = stage(d)
    d.node.NodeExpandVolume(
        csi_pb2.NodeExpandVolumeRequest(
            volume_id=s.volume_id, volume_path=s.staging, volume_capability=MNMW_MOUNT
        )
    )


def _node_expand_id_only(d: DriverProcess) -> None:
    d.node.NodeExpandVolume(csi_pb2.NodeExpandVolumeRequest(volume_id=UNKNOWN_ID))


ERROR_ROWS = [
    # §5 NodeStageVolume
    Row(
        "NodeStageVolume: volume_id missing -> 3",
        lambda d: d.node.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(staging_target_path="/s", volume_capability=MOUNT)
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodeStageVolume: staging_target_path missing -> 3",
        lambda d: d.node.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(volume_id=UNKNOWN_ID, volume_capability=MOUNT)
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodeStageVolume: staging_target_path missing, ID not of ours -> 3",
        lambda d: d.node.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(volume_id=FOREIGN_ID, volume_capability=MOUNT)
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodeStageVolume: volume_capability missing -> 3",
        lambda d: d.node.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(volume_id=UNKNOWN_ID, staging_target_path="/s")
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodeStageVolume: volume_context without nqn -> 3",
        _stage_without_nqn,
        C.INVALID_ARGUMENT,
    ),
    Row("NodeStageVolume: unknown volume -> 5", _stage_unknown, C.NOT_FOUND),
    Row(
        "NodeStageVolume: staged there but incompatible -> 6",
        _stage_incompatible,
        C.ALREADY_EXISTS,
    ),
    Row(
        "NodeStageVolume: capability does not suit the volume -> 9",
        _stage_wrong_filesystem,
        C.FAILED_PRECONDITION,
    ),
    # §5 NodeUnstageVolume
    Row(
        "NodeUnstageVolume: volume_id missing -> 3",
        lambda d: d.node.NodeUnstageVolume(
            csi_pb2.NodeUnstageVolumeRequest(staging_target_path="/s")
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodeUnstageVolume: staging_target_path missing -> 3",
        lambda d: d.node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(volume_id=UNKNOWN_ID)),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodeUnstageVolume: staging_target_path missing, ID not of ours -> 3",
        lambda d: d.node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(volume_id=FOREIGN_ID)),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodeUnstageVolume: an ID not of ours -> 5",
        lambda d: d.node.NodeUnstageVolume(
            csi_pb2.NodeUnstageVolumeRequest(
                volume_id="vol-from-another-driver", staging_target_path="/s"
            )
        ),
        C.NOT_FOUND,
    ),
    # §5 NodePublishVolume
    Row(
        "NodePublishVolume: volume_id missing -> 3",
        lambda d: d.node.NodePublishVolume(
            csi_pb2.NodePublishVolumeRequest(
                staging_target_path="/s", target_path="/t", volume_capability=MOUNT
            )
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodePublishVolume: target_path missing -> 3",
        lambda d: d.node.NodePublishVolume(
            csi_pb2.NodePublishVolumeRequest(
                volume_id=UNKNOWN_ID, staging_target_path="/s", volume_capability=MOUNT
            )
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodePublishVolume: target_path missing, ID not of ours -> 3",
        lambda d: d.node.NodePublishVolume(
            csi_pb2.NodePublishVolumeRequest(
                volume_id=FOREIGN_ID, staging_target_path="/s", volume_capability=MOUNT
            )
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodePublishVolume: volume_capability missing -> 3",
        lambda d: d.node.NodePublishVolume(
            csi_pb2.NodePublishVolumeRequest(
                volume_id=UNKNOWN_ID, staging_target_path="/s", target_path="/t"
            )
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodePublishVolume: staged plugin without staging_target_path -> 9",
        _publish_without_staging,
        C.FAILED_PRECONDITION,
    ),
    Row("NodePublishVolume: volume not staged -> 9", _publish_not_staged, C.FAILED_PRECONDITION),
    Row(
        "NodePublishVolume: same path, different arguments -> 6",
        _publish_same_path_other_args,
        C.ALREADY_EXISTS,
    ),
    Row(
        "NodePublishVolume: different path for a single-writer mode -> 9",
        _publish_single_writer_twice,
        C.FAILED_PRECONDITION,
    ),
    # §5 NodeUnpublishVolume
    Row(
        "NodeUnpublishVolume: volume_id missing -> 3",
        lambda d: d.node.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(target_path="/t")),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodeUnpublishVolume: target_path missing -> 3",
        lambda d: d.node.NodeUnpublishVolume(
            csi_pb2.NodeUnpublishVolumeRequest(volume_id=UNKNOWN_ID)
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodeUnpublishVolume: target_path missing, ID not of ours -> 3",
        lambda d: d.node.NodeUnpublishVolume(
            csi_pb2.NodeUnpublishVolumeRequest(volume_id=FOREIGN_ID)
        ),
        C.INVALID_ARGUMENT,
    ),
    # §5 NodeGetVolumeStats
    Row(
        "NodeGetVolumeStats: volume_id missing -> 3",
        lambda d: d.node.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(volume_path="/v")),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodeGetVolumeStats: volume_path missing -> 3",
        lambda d: d.node.NodeGetVolumeStats(
            csi_pb2.NodeGetVolumeStatsRequest(volume_id=UNKNOWN_ID)
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodeGetVolumeStats: volume_path missing, ID not of ours -> 3",
        lambda d: d.node.NodeGetVolumeStats(
            csi_pb2.NodeGetVolumeStatsRequest(volume_id=FOREIGN_ID)
        ),
        C.INVALID_ARGUMENT,
    ),
    Row(
        "NodeGetVolumeStats: a relative volume_path, where no volume is -> 5",
        lambda d: d.node.NodeGetVolumeStats(
            csi_pb2.NodeGetVolumeStatsRequest(volume_id=UNKNOWN_ID, volume_path="some/where")
        ),
        C.NOT_FOUND,
    ),
    Row(
        "NodeGetVolumeStats: the volume is not at that path -> 5",
        _stats_not_there,
        C.NOT_FOUND,
    ),
    # §5 NodeExpandVolume
    Row(
        "NodeExpandVolume: volume_id missing -> 3",
        lambda d: d.node.NodeExpandVolume(csi_pb2.NodeExpandVolumeRequest(volume_path="/v")),
        C.INVALID_ARGUMENT,
    ),
    Row("NodeExpandVolume: volume_path missing -> 3", _node_expand_id_only, C.INVALID_ARGUMENT),
    Row(
        "NodeExpandVolume: unknown volume (nothing there) -> 5",
        _node_expand_nothing_mounted,
        C.NOT_FOUND,
    ),
    Row("NodeExpandVolume: bad range -> 11", _node_expand_beyond_device, C.OUT_OF_RANGE),
    Row(
        "NodeExpandVolume: unsupported capability -> 3",
        _node_expand_unsupported,
        C.INVALID_ARGUMENT,
    ),
]


@pytest.mark.parametrize("row", ERROR_ROWS, ids=[r.row for r in ERROR_ROWS])
def test_error_row(driver: DriverProcess, row: Row) -> None:
    check_error_row(driver, row)


# --- the other rows -------------------------------------------------------------------------

_NodeRpc = csi_pb2.NodeServiceCapability.RPC


def test_node_get_capabilities(driver: DriverProcess) -> None:
    caps = driver.node.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest())
    assert {c.rpc.type for c in caps.capabilities} == {
        _NodeRpc.STAGE_UNSTAGE_VOLUME,
        _NodeRpc.GET_VOLUME_STATS,
        _NodeRpc.EXPAND_VOLUME,
        _NodeRpc.VOLUME_CONDITION,
        _NodeRpc.SINGLE_NODE_MULTI_WRITER,
    }


def test_node_get_info(driver: DriverProcess) -> None:
    info = driver.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest())
    assert info.node_id == "e2e-node"
    assert info.max_volumes_per_node == 0
    assert not info.HasField("accessible_topology")  # no VOLUME_ACCESSIBILITY_CONSTRAINTS


def test_node_stage_identical_repeat_is_ok(driver: DriverProcess) -> None:
    s = stage(driver)
    driver.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=s.volume_id,
            staging_target_path=s.staging,
            volume_capability=MOUNT,
            volume_context=s.context,
        )
    )


def test_node_unstage_not_staged_is_ok(driver: DriverProcess) -> None:
    vid = driver.create().volume_id
    for _ in range(2):
        driver.node.NodeUnstageVolume(
            csi_pb2.NodeUnstageVolumeRequest(
                volume_id=vid, staging_target_path=driver.staging_dir(vid)
            )
        )


def test_node_publish_same_arguments_repeat_is_ok(driver: DriverProcess) -> None:
    s = stage(driver)
    target = driver.target_path(s.volume_id)
    publish(driver, s, target)
    publish(driver, s, target)


def test_node_publish_ignores_the_pod_info_kubelet_adds(driver: DriverProcess) -> None:
    s = stage(driver)
    pod_info = {
        "csi.storage.k8s.io/pod.name": "web-0",
        "csi.storage.k8s.io/pod.namespace": "default",
        "csi.storage.k8s.io/pod.uid": "0b6a8f4e-2f6c-4c71-9f4b-8f1f5d3a2e11",
        "csi.storage.k8s.io/serviceAccount.name": "default",
        "csi.storage.k8s.io/ephemeral": "false",
    }
    driver.node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=s.volume_id,
            staging_target_path=s.staging,
            target_path=driver.target_path(s.volume_id),
            volume_capability=MOUNT,
            volume_context={**s.context, **pod_info},
        )
    )


def test_paths_longer_than_128_bytes_are_accepted(driver: DriverProcess) -> None:
    volume = driver.create()
    deep = pathlib.Path(driver.staging_dir(volume.volume_id)) / ("d" * 100) / ("e" * 100)
    deep.mkdir(parents=True)
    assert len(str(deep).encode()) > 200
    driver.node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=volume.volume_id,
            staging_target_path=str(deep),
            volume_capability=MOUNT,
            volume_context=volume.volume_context,
        )
    )


def test_node_publish_other_path_is_ok_for_single_node_multi_writer(
    driver: DriverProcess,
) -> None:
    s = stage(driver, SNMW)
    publish(driver, s, driver.target_path(s.volume_id, "pod-a"), SNMW)
    publish(driver, s, driver.target_path(s.volume_id, "pod-b"), SNMW)


def test_node_publish_still_accepts_single_node_writer(driver: DriverProcess) -> None:
    # SINGLE_NODE_MULTI_WRITER advertised; SINGLE_NODE_WRITER must still work.
    s = stage(driver, MOUNT)
    publish(driver, s, driver.target_path(s.volume_id), MOUNT)


def test_node_unpublish_removes_the_target_and_repeats(driver: DriverProcess) -> None:
    s = stage(driver)
    target = driver.target_path(s.volume_id)
    publish(driver, s, target)
    for _ in range(2):
        driver.node.NodeUnpublishVolume(
            csi_pb2.NodeUnpublishVolumeRequest(volume_id=s.volume_id, target_path=target)
        )
    assert not pathlib.Path(target).exists()


def test_node_get_volume_stats_has_a_usage_entry_and_condition(driver: DriverProcess) -> None:
    s = stage(driver, BLOCK)
    target = driver.target_path(s.volume_id)
    publish(driver, s, target, BLOCK)
    stats = driver.node.NodeGetVolumeStats(
        csi_pb2.NodeGetVolumeStatsRequest(volume_id=s.volume_id, volume_path=target)
    )
    assert len(stats.usage) >= 1
    assert all(u.total > 0 for u in stats.usage)
    assert stats.HasField("volume_condition")
    assert not stats.volume_condition.abnormal


def test_node_expand_already_big_enough_is_ok(driver: DriverProcess) -> None:
    s = stage(driver)
    for _ in range(2):
        response = driver.node.NodeExpandVolume(
            csi_pb2.NodeExpandVolumeRequest(
                volume_id=s.volume_id, volume_path=s.staging, capacity_range=rng(GIB)
            )
        )
        assert response.capacity_bytes == GIB
