"""The node's path and mount-option rules, and the one NQN -> volume rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rds_csi.domain import (
    AccessMode,
    InvalidArgument,
    MountOption,
    NodePath,
    Nqn,
    VolumeCapability,
    VolumeId,
)
from rds_csi.domain.mounting import NODE_PATH_MAX_BYTES


VID = VolumeId("pvc-0a6f8e7b-1d2c-4e5f-8a9b-0c1d2e3f4a5b")


class TestNodePath:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("/var/lib/kubelet/x", "/var/lib/kubelet/x"),
            ("/var//lib/./kubelet/x/", "/var/lib/kubelet/x"),
            ("/a b/c", "/a b/c"),
        ],
    )
    def test_absolute_paths_pass_normalized(self, text: str, expected: str) -> None:
        assert NodePath.parse(text).value == expected

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            ("", "is required"),
            ("relative/dir", "is not an absolute path"),
            ("-o/remount", "is not an absolute path"),
            ("/a\nb", "control character"),
            ("/a\0b", "control character"),
            ("/a\tb", "control character"),
            ("/a/../etc", "must not contain '..'"),
            ("/" + "a" * NODE_PATH_MAX_BYTES, "longer than 4096 bytes"),
        ],
    )
    def test_refused_paths_name_the_field(self, text: str, problem: str) -> None:
        with pytest.raises(InvalidArgument, match=problem) as caught:
            NodePath.parse(text, field="staging_target_path")
        assert caught.value.field == "staging_target_path"

    def test_direct_construction_is_checked_too(self) -> None:
        with pytest.raises(InvalidArgument):
            NodePath("relative")

    @given(st.text(min_size=1, max_size=64))
    def test_anything_accepted_is_absolute_and_plain(self, text: str) -> None:
        try:
            path = NodePath.parse(text).value
        except InvalidArgument:
            return
        assert path.startswith("/")
        assert ".." not in path.split("/")
        assert all(ord(ch) >= 0x20 and ord(ch) != 0x7F for ch in path)


class TestMountOption:
    @pytest.mark.parametrize(
        "text", ["ro", "noatime", "context=system_u:object_r:x:s0", "uid=0", "a" * 256]
    )
    def test_plain_options_pass(self, text: str) -> None:
        assert MountOption.parse(text).value == text

    @pytest.mark.parametrize(
        "text", ["", "ro,remount", "-o", "a b", "x'y", 'x"y', "a\nb", "a" * 257]
    )
    def test_options_that_could_carry_more_are_refused(self, text: str) -> None:
        with pytest.raises(InvalidArgument) as caught:
            MountOption.parse(text, field="volume_capability.mount.mount_flags")
        assert caught.value.field == "volume_capability.mount.mount_flags"

    def test_the_capability_applies_the_same_rule(self) -> None:
        # One rule: what the capability accepts, mount(8) is given; nothing later refuses.
        with pytest.raises(InvalidArgument, match="mount_flags"):
            VolumeCapability.mount(mount_flags=["a" * 257])

    def test_mount_options_add_ro_for_reader_modes_only(self) -> None:
        cap = VolumeCapability.mount(mount_flags=["noatime"])
        reader = VolumeCapability.mount(AccessMode.MULTI_NODE_READER_ONLY, mount_flags=["noatime"])
        assert cap.mount_options() == ("noatime",)
        assert reader.mount_options() == ("noatime", "ro")
        assert VolumeCapability.block().mount_options() == ()


class TestNqnVolumeId:
    @pytest.mark.parametrize(
        "prefix", ["nqn.2000-02.com.mikrotik", "nqn.2024-01.io.example.storage"]
    )
    def test_the_last_part_names_the_volume_whatever_the_prefix(self, prefix: str) -> None:
        assert Nqn(f"{prefix}:{VID}").volume_id == VID
        assert Nqn.for_volume(VID, prefix).volume_id == VID

    @pytest.mark.parametrize(
        "text",
        [
            "nqn.2000-02.com.mikrotik:some-disk",
            "nqn.2014-08.org.nvmexpress:uuid:0a6f8e7b-1d2c-4e5f-8a9b-0c1d2e3f4a5b",
            f"nqn.2000-02.com.mikrotik:{VID}:extra",
        ],
    )
    def test_an_nqn_not_ending_in_a_volume_id_names_none(self, text: str) -> None:
        assert Nqn(text).volume_id is None
