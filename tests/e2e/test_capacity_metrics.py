"""
The controller's capacity metrics as a scraper sees them: the pool's size, free and used
space, our volume count and ``backend_up``, refreshed in the background at
``--capacity-interval``; a node has none of them.
"""

from __future__ import annotations

import pathlib

import attrs
import pytest

from rds_csi.domain.size import GIB, TIB
from rds_csi.entrypoints.container import Container
from rds_csi.entrypoints.csi._pb import csi_pb2
from rds_csi.entrypoints.settings import ControllerSettings, Mode, Settings
from tests.deploy_support import by_kind, manifest_objects
from tests.e2e.conftest import DriverProcess, start_driver


RDS = "127.0.0.1"  # --rds-address's default: the label of the series


def test_the_pool_figures_follow_the_volumes(tmp_path: pathlib.Path) -> None:
    driver = start_driver(tmp_path, "--capacity-interval", "0.2")
    try:
        driver.wait_for(
            lambda: driver.sample("rds_csi_backend_up", rds=RDS) == 1, "the first refresh"
        )
        assert driver.sample("rds_csi_pool_size_bytes", rds=RDS) == 10 * TIB  # the fake's pool
        assert driver.sample("rds_csi_pool_used_bytes", rds=RDS) == 0
        assert driver.sample("rds_csi_volumes", rds=RDS) == 0

        driver.create(size=3 * GIB)
        driver.wait_for(
            lambda: driver.sample("rds_csi_volumes", rds=RDS) == 1, "the volume to be counted"
        )
        assert driver.sample("rds_csi_pool_used_bytes", rds=RDS) == 3 * GIB
        assert driver.sample("rds_csi_pool_free_bytes", rds=RDS) == 10 * TIB - 3 * GIB
    finally:
        driver.stop()


@pytest.mark.parametrize("mode", [Mode.CONTROLLER, Mode.ALL])
def test_the_controller_refreshes_at_its_interval(mode: Mode) -> None:
    container = Container()
    settings = attrs.evolve(
        Settings(backend="fake"),  # type: ignore[arg-type]
        controller=ControllerSettings(capacity_interval=7.5),  # type: ignore[arg-type]
    )
    container.settings.override(settings)
    container.mode.override(mode)
    refresher = container.capacity_refresher()
    assert refresher is not None
    assert refresher._interval == 7.5


def test_a_node_has_no_capacity_refresher() -> None:
    container = Container()
    container.settings.override(Settings())
    container.mode.override(Mode.NODE)
    assert container.capacity_refresher() is None


def test_getcapacity_answers_for_every_storageclass_deployed(driver: DriverProcess) -> None:
    # The provisioner (--enable-capacity) calls GetCapacity with each StorageClass's
    # parameters as they are, csi.storage.k8s.io/ keys included; an error there means no
    # CSIStorageCapacity, and with storageCapacity: true no pod with a new PVC is scheduled.
    classes = by_kind(manifest_objects(), "StorageClass")
    assert classes
    for storage_class in classes:
        answer = driver.controller.GetCapacity(
            csi_pb2.GetCapacityRequest(parameters=storage_class.get("parameters", {})),
            timeout=10,
        )
        assert answer.available_capacity > 0, storage_class["metadata"]["name"]
        assert answer.maximum_volume_size.value > 0
