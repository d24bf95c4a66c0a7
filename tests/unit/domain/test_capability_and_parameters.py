from __future__ import annotations

import pytest

from rds_csi.domain import (
    AccessMode,
    InvalidArgument,
    MountAccess,
    UnsupportedCapability,
    VolumeCapability,
    check_capabilities,
)


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
