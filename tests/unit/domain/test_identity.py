from __future__ import annotations

import hashlib
import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rds_csi.domain import (
    DiskPath,
    InvalidArgument,
    Nqn,
    VolumeId,
    VolumeNotFound,
    parse_volume_reference,
)
from rds_csi.domain.identity import check_base_path, check_nqn_prefix


GO_ID_PATTERN = re.compile(r"^pvc-[a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}$")
GO_NQN_PATTERN = re.compile(r"^nqn\.[0-9]{4}-[0-9]{2}\.[a-z0-9.-]+:[a-z0-9._-]+$")
# Everything that means something to a shell or to the RouterOS CLI parser.
METACHARACTERS = [*" \t\n\r\"'`$;&|<>()[]{}\\*?!#~=,%^@+", "\x00", "\x7f", "\u00e9", "\u2028"]


class TestVolumeId:
    def test_derived_like_the_go_driver(self) -> None:
        name = "pvc-0a6f8e7b-1d2c-4e5f-8a9b-0c1d2e3f4a5b"
        expected = "pvc-" + str(uuid.uuid5(uuid.NAMESPACE_DNS, name))
        assert VolumeId.from_name(name).value == expected

    def test_matches_rfc4122_computed_by_hand(self) -> None:
        # SHA-1 over the DNS namespace bytes + name, version 5, RFC 4122 variant: the
        # Go driver's uuid.NewSHA1(uuid.NameSpaceDNS, name), done without the uuid module.
        namespace = bytes.fromhex("6ba7b8109dad11d180b400c04fd430c8")
        digest = bytearray(hashlib.sha1(namespace + b"my-claim").digest()[:16])  # noqa: S324
        digest[6] = (digest[6] & 0x0F) | 0x50
        digest[8] = (digest[8] & 0x3F) | 0x80
        h = digest.hex()
        expected = f"pvc-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        assert VolumeId.from_name("my-claim").value == expected

    def test_even_a_pvc_looking_name_is_hashed(self) -> None:
        name = "pvc-11111111-2222-3333-4444-555555555555"
        assert VolumeId.from_name(name).value != name

    @given(st.text(min_size=1, max_size=128))
    def test_every_derived_id_has_the_production_form(self, name: str) -> None:
        vid = VolumeId.from_name(name)
        assert GO_ID_PATTERN.fullmatch(vid.value)
        assert VolumeId.from_name(name) == vid

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "pvc-",
            "PVC-11111111-2222-3333-4444-555555555555",
            "pvc-11111111-2222-3333-4444-55555555555G",
            "pvc-11111111-2222-3333-4444-555555555555 ",
            "pvc-11111111-2222-3333-4444-555555555555;reboot",
            "11111111-2222-3333-4444-555555555555",
        ],
    )
    def test_rejects_anything_else(self, text: str) -> None:
        with pytest.raises(InvalidArgument):
            VolumeId(text)

    @given(st.text(max_size=60))
    def test_accepted_ids_match_the_go_pattern(self, text: str) -> None:
        try:
            vid = VolumeId(text)
        except InvalidArgument:
            return
        assert GO_ID_PATTERN.fullmatch(vid.value)


class TestVolumeReference:
    def test_ours_parses(self) -> None:
        vid = VolumeId.from_name("x")
        assert parse_volume_reference(vid.value) == vid

    def test_empty_is_a_missing_field(self) -> None:
        with pytest.raises(InvalidArgument, match="volume_id: is required"):
            parse_volume_reference("")

    @pytest.mark.parametrize("text", ["vol-1", "pvc-abc", "some_foreign.id", "A" * 128])
    def test_foreign_but_harmless_ids_are_not_found(self, text: str) -> None:
        with pytest.raises(VolumeNotFound):
            parse_volume_reference(text)

    @pytest.mark.parametrize("meta", [*METACHARACTERS, "/"])
    def test_metacharacters_are_invalid(self, meta: str) -> None:
        with pytest.raises(InvalidArgument, match="volume_id"):
            parse_volume_reference(f"pvc-1{meta}x")


class TestNqn:
    def test_for_volume(self) -> None:
        vid = VolumeId.from_name("x")
        nqn = Nqn.for_volume(vid)
        assert nqn.value == f"nqn.2000-02.com.mikrotik:{vid}"
        assert GO_NQN_PATTERN.fullmatch(nqn.value)
        assert nqn.is_strict()

    def test_host_nqn_uuid_form_is_valid_but_not_strict(self) -> None:
        nqn = Nqn("nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000000")
        assert not nqn.is_strict()

    def test_223_bytes_is_the_limit(self) -> None:
        head = "nqn.2000-02.com.mikrotik:"
        Nqn(head + "a" * (223 - len(head)))
        with pytest.raises(InvalidArgument, match="223"):
            Nqn(head + "a" * (224 - len(head)))

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "nqn",
            "nqn.2000-13.com.x:y",
            "nqn.2000-02.com.x",
            "nqn.2000-02.com.x:",
            "iqn.2000-02.com.x:y",
            "nqn.2000-02..x:y",
        ],
    )
    def test_rejects_malformed(self, text: str) -> None:
        with pytest.raises(InvalidArgument):
            Nqn(text)

    @pytest.mark.parametrize("meta", METACHARACTERS)
    def test_refuses_every_metacharacter(self, meta: str) -> None:
        with pytest.raises(InvalidArgument):
            Nqn(f"nqn.2000-02.com.mikrotik:pvc{meta}x")

    @given(st.text(max_size=250))
    def test_no_input_crashes_and_accepted_ones_are_safe(self, text: str) -> None:
        try:
            nqn = Nqn(text)
        except InvalidArgument:
            return
        assert len(nqn.value.encode()) <= 223
        assert not any(ch in nqn.value for ch in " \t\n\"'`$;&|<>()[]{}\\*?!#")

    def test_prefix_check(self) -> None:
        assert check_nqn_prefix("nqn.2000-02.com.mikrotik")
        for bad in ["nqn.2000-02.com.mikrotik:", "NQN.2000-02.com", "nqn.2000-02", "x"]:
            with pytest.raises(InvalidArgument):
                check_nqn_prefix(bad)


class TestDiskPath:
    def test_value(self) -> None:
        vid = VolumeId.from_name("x")
        assert (
            DiskPath("/storage-pool/metal-csi", vid).value == f"/storage-pool/metal-csi/{vid}.img"
        )

    def test_parse_round_trips(self) -> None:
        vid = VolumeId.from_name("x")
        path = DiskPath("storage-pool/k8s", vid)
        assert DiskPath.parse(path.value) == path

    @pytest.mark.parametrize("meta", METACHARACTERS)
    def test_every_metacharacter_is_refused(self, meta: str) -> None:
        with pytest.raises(InvalidArgument):
            check_base_path(f"/storage-pool/a{meta}b")

    @pytest.mark.parametrize("path", ["/storage-pool/../etc", "./x", "/a//b", "/a/", "", "/"])
    def test_traversal_and_empty_segments_are_refused(self, path: str) -> None:
        with pytest.raises(InvalidArgument):
            check_base_path(path)

    @given(st.text(max_size=80))
    def test_accepted_paths_hold_only_safe_characters(self, text: str) -> None:
        try:
            check_base_path(text)
        except InvalidArgument:
            return
        assert re.fullmatch(r"/?[A-Za-z0-9._/-]+", text)
        assert ".." not in text.split("/")
        assert "//" not in text
