from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rds_csi.domain import (
    AccessMode,
    InvalidArgument,
    MountAccess,
    Nqn,
    ReconnectPolicy,
    UnsupportedCapability,
    VolumeCapability,
    VolumeContext,
    VolumeId,
    VolumeParameters,
    check_capabilities,
)
from rds_csi.domain.parameters import CONTEXT_KEYS


class TestCapabilities:
    @pytest.mark.parametrize(
        "mode",
        [
            AccessMode.SINGLE_NODE_WRITER,
            AccessMode.SINGLE_NODE_READER_ONLY,
            AccessMode.SINGLE_NODE_SINGLE_WRITER,
            AccessMode.SINGLE_NODE_MULTI_WRITER,
            AccessMode.MULTI_NODE_READER_ONLY,
        ],
    )
    def test_single_node_and_read_only_many_work_for_both_kinds(self, mode: AccessMode) -> None:
        check_capabilities([VolumeCapability.mount(mode)])
        check_capabilities([VolumeCapability.block(mode)])

    def test_multi_writer_is_for_raw_block_only(self) -> None:
        check_capabilities([VolumeCapability.block(AccessMode.MULTI_NODE_MULTI_WRITER)])
        with pytest.raises(UnsupportedCapability, match="raw block volumes only"):
            check_capabilities([VolumeCapability.mount(AccessMode.MULTI_NODE_MULTI_WRITER)])

    def test_multi_node_single_writer_is_unsupported(self) -> None:
        with pytest.raises(UnsupportedCapability, match="MULTI_NODE_SINGLE_WRITER"):
            check_capabilities([VolumeCapability.block(AccessMode.MULTI_NODE_SINGLE_WRITER)])

    def test_empty_list_is_invalid(self) -> None:
        with pytest.raises(InvalidArgument, match="volume_capabilities"):
            check_capabilities([])

    def test_block_and_mount_together_are_refused(self) -> None:
        with pytest.raises(UnsupportedCapability, match="not both"):
            check_capabilities([VolumeCapability.block(), VolumeCapability.mount()])

    def test_default_fs_is_ext4_and_unknown_fs_is_refused(self) -> None:
        assert MountAccess.create().fs_type == "ext4"
        with pytest.raises(UnsupportedCapability, match="fs_type"):
            VolumeCapability.mount(fs_type="ntfs")

    @pytest.mark.parametrize("flag", ["", "a b", "a,b", "x'y", "$(reboot)", "a;b", "\n"])
    def test_mount_flags_are_checked(self, flag: str) -> None:
        with pytest.raises(InvalidArgument, match="mount_flags"):
            VolumeCapability.mount(mount_flags=[flag])

    def test_ordinary_mount_flags_pass(self) -> None:
        cap = VolumeCapability.mount(mount_flags=["noatime", "discard", "context=system_u:x"])
        assert isinstance(cap.access, MountAccess)
        assert cap.access.mount_flags == ("noatime", "discard", "context=system_u:x")


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
        p = VolumeParameters.from_mapping(GO_PARAMETERS)
        assert (p.rds_address, p.nvme_address, p.nvme_port) == ("10.42.68.1", "10.42.69.1", 4420)
        assert p.fs_type == "xfs"
        assert p.reconnect == ReconnectPolicy(600, 10, 15)
        assert p.migration_timeout == 120
        assert p.unknown == ()

    def test_defaults_are_the_go_drivers(self) -> None:
        p = VolumeParameters.from_mapping({})
        assert p.reconnect == ReconnectPolicy(-1, 5, 0)
        assert (p.nvme_port, p.volume_path, p.migration_timeout) == (
            4420,
            "/storage-pool/metal-csi",
            300,
        )

    def test_unknown_keys_are_reported_not_fatal(self) -> None:
        assert VolumeParameters.from_mapping({"rdsUser": "x"}).unknown == ("rdsUser",)

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
            VolumeParameters.from_mapping({key: value})
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
        assert VolumeContext.from_mapping(mapping) == ctx

    def test_a_minimal_go_context_takes_go_defaults(self) -> None:
        vid = VolumeId.from_name("x")
        ctx = VolumeContext.from_mapping(
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
            VolumeContext.from_mapping(mapping)
        assert err.value.field == field

    @given(st.dictionaries(st.sampled_from(CONTEXT_KEYS), st.text(max_size=30)))
    def test_no_context_crashes(self, mapping: dict[str, str]) -> None:
        with contextlib.suppress(InvalidArgument):
            VolumeContext.from_mapping(mapping)
