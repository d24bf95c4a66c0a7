"""The command builder: only validated values, always quoted, in the exact RouterOS forms."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rds_csi.adapters.routeros_ssh import commands
from rds_csi.adapters.routeros_ssh.commands import RosValue
from rds_csi.domain import DiskPath, InvalidArgument, Nqn, Size, Volume, VolumeId
from rds_csi.domain.size import GIB


VID = VolumeId("pvc-0a1b2c3d-0000-4000-8000-00000000abcd")
MARKER = "rds-csi-end-0123456789abcdef"
SAFE = set(string.ascii_letters + string.digits + "._:/@+-")


def _volume(size: int = 10 * GIB, port: int = 4420) -> Volume:
    return Volume(
        VID, Size(size), DiskPath("/storage-pool/metal-csi", VID), Nqn.for_volume(VID), port
    )


class TestValues:
    @pytest.mark.parametrize("char", sorted(set(map(chr, range(128))) - SAFE))
    def test_every_other_ascii_character_is_refused_in_a_string(self, char: str) -> None:
        with pytest.raises(InvalidArgument, match="cannot be sent to RouterOS"):
            RosValue.string(f"pvc{char}x")

    @pytest.mark.parametrize(
        "value",
        ["", "a" * 256, "é", "pvc\u2028x", "x\ufeff", 'a"]; /system reboot; :put "', "$(x)"],
    )
    def test_empty_long_non_ascii_and_injection_attempts_are_refused(self, value: str) -> None:
        with pytest.raises(InvalidArgument):
            RosValue.string(value)

    def test_a_safe_string_is_emitted_in_double_quotes(self) -> None:
        assert RosValue.string("nqn.2000-02.com.mikrotik:pvc-1").text == (
            '"nqn.2000-02.com.mikrotik:pvc-1"'
        )

    @given(st.text(max_size=40))
    def test_any_text_is_refused_or_quoted_verbatim(self, text: str) -> None:
        try:
            value = RosValue.string(text)
        except InvalidArgument:
            assert not text or not set(text) <= SAFE or len(text) > 255
        else:
            assert value.text == f'"{text}"'
            assert set(text) <= SAFE

    @pytest.mark.parametrize("bad", [-1, True, 1.5, "3"])
    def test_integers_must_be_non_negative_ints(self, bad: object) -> None:
        with pytest.raises(InvalidArgument):
            RosValue.integer(bad)

    @pytest.mark.parametrize("bad", [Size(0), 10, "10G"])
    def test_sizes_must_be_positive_sizes(self, bad: object) -> None:
        with pytest.raises(InvalidArgument):
            RosValue.size(bad)

    def test_booleans_are_yes_and_no_and_nothing_else(self) -> None:
        assert RosValue.boolean(value=True).text == "yes"
        assert RosValue.boolean(value=False).text == "no"
        with pytest.raises(InvalidArgument):
            RosValue.boolean(value="yes")


class TestScripts:
    def test_create_checks_adds_and_prints_in_one_line(self) -> None:
        slot = f'"{VID}"'
        image = f"storage-pool/metal-csi/{VID}.img"
        assert commands.create_disk(_volume(), MARKER).render() == (
            f":if ([:len [/disk find where slot={slot}]] = 0) do={{"
            f':if ([:len [/file find where name="{image}"]] > 0) do={{'
            f'/file remove [/file find where name="{image}"]}}; '
            f'/disk add type=file file-path="/{image}" file-size=10G slot={slot} '
            f"mount-filesystem=no nvme-tcp-export=yes nvme-tcp-server-port=4420 "
            f'nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:{VID}"}}; '
            f"/disk print detail where slot={slot}; "
            f':put "{MARKER}"'
        )

    def test_sizes_use_the_shortest_exact_unit(self) -> None:
        line = commands.create_disk(_volume(size=1536 * 1024**2), MARKER).render()
        assert " file-size=1536M " in line

    def test_delete_removes_the_disk_then_its_file_each_only_if_found(self) -> None:
        path = DiskPath("/storage-pool/metal-csi", VID)
        disk = f'[/disk find where slot="{VID}"]'
        image = f'[/file find where name="storage-pool/metal-csi/{VID}.img"]'
        assert commands.delete_disk(VID, [path], MARKER).render() == (
            f":if ([:len {disk}] > 0) do={{/disk remove {disk}}}; "
            f":if ([:len {image}] > 0) do={{/file remove {image}}}; "
            f':put "{MARKER}"'
        )

    def test_delete_looks_for_the_image_under_every_base_once(self) -> None:
        paths = [
            DiskPath("/storage-pool/metal-csi", VID),
            DiskPath("storage-pool/metal-csi", VID),
            DiskPath("/storage-pool/custom-sc", VID),
        ]
        line = commands.delete_disk(VID, paths, MARKER).render()
        assert line.count("/file remove") == 2
        assert f'name="storage-pool/custom-sc/{VID}.img"' in line

    def test_no_removal_depends_on_an_empty_find_being_a_no_op(self) -> None:
        """Assumption A13 is unverified: every remove is guarded by its own find."""
        path = DiskPath("/storage-pool/metal-csi", VID)
        for script in (
            commands.create_disk(_volume(), MARKER),
            commands.delete_disk(VID, [path], MARKER),
        ):
            line = script.render()
            removes = re.findall(r"(/disk|/file) remove (\[[^\]]*\])", line)
            assert removes
            for menu, found in removes:
                assert f":if ([:len {found}] > 0) do={{{menu} remove {found}}}" in line

    def test_delete_refuses_a_file_that_is_not_the_volumes(self) -> None:
        other = DiskPath("/storage-pool/metal-csi", VolumeId.from_name("other"))
        with pytest.raises(InvalidArgument, match="is not the image of"):
            commands.delete_disk(VID, [other], MARKER)

    def test_export_switches_the_export_on_and_prints(self) -> None:
        assert commands.export_disk(_volume(), MARKER).render() == (
            f'/disk set [/disk find where slot="{VID}"] nvme-tcp-export=yes '
            f'nvme-tcp-server-port=4420 nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:{VID}"; '
            f'/disk print detail where slot="{VID}"; :put "{MARKER}"'
        )

    def test_resize_sets_then_prints(self) -> None:
        assert commands.resize_disk(VID, Size(20 * GIB), MARKER).render() == (
            f'/disk set [/disk find where slot="{VID}"] file-size=20G; '
            f'/disk print detail where slot="{VID}"; :put "{MARKER}"'
        )

    def test_list_capacity_and_health(self) -> None:
        assert commands.list_disks(MARKER).render() == (
            f'/disk print detail where slot~"^pvc-"; :put "{MARKER}"'
        )
        assert commands.capacity("storage-pool", MARKER).render() == (
            f'/disk print detail where mount-point="storage-pool"; :put "{MARKER}"'
        )
        assert commands.health(MARKER).render() == f':put "{MARKER}"'

    def test_a_pool_name_with_metacharacters_is_refused(self) -> None:
        with pytest.raises(InvalidArgument):
            commands.capacity('pool"; /system reboot', MARKER)

    def test_markers_are_random_and_checked(self) -> None:
        assert commands.new_marker() != commands.new_marker()
        with pytest.raises(ValueError, match="bad marker"):
            commands.health('x"; /system reboot').render()
