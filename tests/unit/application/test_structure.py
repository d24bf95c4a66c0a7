"""StorageClass parameters and volume contexts read from CSI's string maps (the Go keys)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rds_csi.application.structure import structure_context, structure_parameters
from rds_csi.domain import InvalidArgument, Nqn, ReconnectPolicy, VolumeContext, VolumeId
from rds_csi.domain.parameters import CONTEXT_KEYS


GO_PARAMETERS = {
    "rdsAddress": "10.42.68.1",
    "nvmeAddress": "10.42.69.1",
    "nvmePort": "4420",
    "sshPort": "22",
    "csi.storage.k8s.io/fstype": "xfs",
    "volumePath": "/storage-pool/metal-csi",
    "nqnPrefix": "nqn.2000-02.com.mikrotik",
    "ctrlLossTmo": "600",
    "reconnectDelay": "10",
    "keepAliveTmo": "15",
    "migrationTimeoutSeconds": "120",
    "csi.storage.k8s.io/pvc/name": "data",
}


class TestParameters:
    def test_go_driver_parameters_parse(self) -> None:
        p = structure_parameters(GO_PARAMETERS)
        assert (p.rds_address, p.nvme_address, p.nvme_port) == ("10.42.68.1", "10.42.69.1", 4420)
        assert p.fs_type == "xfs"
        assert p.reconnect == ReconnectPolicy(600, 10, 15)
        assert p.migration_timeout == 120
        assert p.unknown == ()

    def test_defaults_are_the_go_drivers(self) -> None:
        p = structure_parameters({})
        assert p.reconnect == ReconnectPolicy(-1, 5, 0)
        assert (p.nvme_port, p.volume_path, p.migration_timeout) == (
            4420,
            "/storage-pool/metal-csi",
            300,
        )

    def test_unknown_keys_are_reported_not_fatal(self) -> None:
        assert structure_parameters({"rdsUser": "x"}).unknown == ("rdsUser",)

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("nvmePort", "http"),
            ("nvmePort", "70000"),
            ("rdsAddress", "10.0.0.1; reboot"),
            ("volumePath", "/storage-pool/../x"),
            ("nqnPrefix", "nqn.2000-02.com.mikrotik:x"),
            ("ctrlLossTmo", "-5"),
            ("reconnectDelay", "0"),
            ("fsType", "btrfs"),
            ("migrationTimeoutSeconds", "0"),
        ],
    )
    def test_bad_values_name_the_parameter(self, key: str, value: str) -> None:
        with pytest.raises(InvalidArgument) as err:
            structure_parameters({key: value})
        assert err.value.field == f"parameters.{key}"


class TestVolumeContext:
    def test_round_trip_with_go_keys(self) -> None:
        vid = VolumeId.from_name("x")
        ctx = VolumeContext(
            rds_address="10.42.68.1",
            nvme_address="10.42.69.1",
            nvme_port=4420,
            nqn=Nqn.for_volume(vid),
            volume_path=f"/storage-pool/metal-csi/{vid}.img",
            reconnect=ReconnectPolicy(600, 10, 15),
        )
        mapping = ctx.to_mapping()
        assert tuple(mapping) == CONTEXT_KEYS
        assert all(isinstance(v, str) for v in mapping.values())
        assert structure_context(mapping) == ctx

    def test_a_minimal_go_context_takes_go_defaults(self) -> None:
        vid = VolumeId.from_name("x")
        ctx = structure_context(
            {"rdsAddress": "rds.lan", "nqn": str(Nqn.for_volume(vid)), "other": "ignored"}
        )
        assert ctx.target.address == "rds.lan"
        assert ctx.target.port == 4420
        assert ctx.reconnect == ReconnectPolicy()

    @pytest.mark.parametrize(
        ("mapping", "field"),
        [
            ({"rdsAddress": "a"}, "volume_context.nqn"),
            ({"nqn": "nqn.2000-02.com.mikrotik:x"}, "volume_context.nvmeAddress"),
            ({"nqn": "bad nqn", "rdsAddress": "a"}, "volume_context.nqn"),
            (
                {"nqn": "nqn.2000-02.com.mikrotik:x", "rdsAddress": "a", "ctrlLossTmo": "x"},
                "volume_context.ctrlLossTmo",
            ),
        ],
    )
    def test_bad_contexts_name_the_key(self, mapping: dict[str, str], field: str) -> None:
        with pytest.raises(InvalidArgument) as err:
            structure_context(mapping)
        assert err.value.field == field

    def test_every_missing_key_is_named_at_once(self) -> None:
        with pytest.raises(InvalidArgument) as err:
            structure_context({"ctrlLossTmo": "-1"})
        assert str(err.value) == (
            "volume_context: missing keys: nqn is required; nvmeAddress is required (or rdsAddress)"
        )

    @given(st.dictionaries(st.sampled_from(CONTEXT_KEYS), st.text(max_size=30)))
    def test_no_context_crashes(self, mapping: dict[str, str]) -> None:
        with contextlib.suppress(InvalidArgument):
            structure_context(mapping)
