"""What the REST adapter accepts and sends: settings, the password file, JSON in and out."""

from __future__ import annotations

import pathlib

import pytest

from rds_csi.adapters.routeros_rest import RestSettings, read_password_file
from rds_csi.adapters.routeros_rest.errors import RestRefusal, refusal_to_domain
from rds_csi.adapters.routeros_rest.http import RestPath, check_query
from rds_csi.adapters.routeros_rest.volumes import (
    capacity_from,
    create_body,
    safe,
    volume_from,
)
from rds_csi.domain import (
    BackendError,
    CapacityExhausted,
    DiskPath,
    InvalidArgument,
    MalformedOutput,
    Nqn,
    Size,
    Volume,
    VolumeId,
)
from rds_csi.domain.size import GIB


VID = VolumeId.from_name("values")
VOLUME = Volume(VID, Size(GIB), DiskPath("/storage-pool/metal-csi", VID), Nqn.for_volume(VID))


def _settings(**kw: object) -> RestSettings:
    return RestSettings(**{"url": "https://192.0.2.10", "user": "rds-csi", "password": "pw", **kw})  # type: ignore[arg-type]


class TestSettings:
    @pytest.mark.parametrize(
        "url",
        [
            "http://192.0.2.10",
            "https://user:pw@192.0.2.10",
            "https://192.0.2.10/rest",
            "https://192.0.2.10?x=1",
            "https://bad host",
            "https://192.0.2.10:99999",
            "ftp://192.0.2.10",
        ],
    )
    def test_only_a_bare_https_origin_is_a_url(self, url: str) -> None:
        with pytest.raises(InvalidArgument, match="rds rest url"):
            _settings(url=url)

    def test_the_api_root_and_the_port(self) -> None:
        assert _settings(url="https://rds.lan:8443").base_url == "https://rds.lan:8443/rest"
        assert _settings(url="https://[2001:db8::1]").base_url == "https://[2001:db8::1]/rest"

    def test_the_password_is_never_shown(self) -> None:
        settings = _settings(password="s3cret-value")
        assert "s3cret" not in repr(settings)
        with pytest.raises(InvalidArgument) as caught:
            _settings(password="two\nlines")
        assert "two" not in str(caught.value)

    def test_a_ca_file_and_skipping_verification_contradict(self, tmp_path: pathlib.Path) -> None:
        with pytest.raises(InvalidArgument, match="contradicts"):
            _settings(ca_file=tmp_path / "ca.pem", insecure_skip_verify=True)


class TestPasswordFile:
    def test_one_line_is_read_without_its_newline(self, tmp_path: pathlib.Path) -> None:
        path = tmp_path / "password"
        path.write_text("s3cret\n")
        path.chmod(0o440)
        assert read_password_file(path) == "s3cret"

    @pytest.mark.parametrize(("text", "mode"), [("s3cret", 0o666), ("", 0o400), ("a\nb\n", 0o400)])
    def test_a_writable_empty_or_multi_line_file_is_refused(
        self, tmp_path: pathlib.Path, text: str, mode: int
    ) -> None:
        path = tmp_path / "password"
        path.write_text(text)
        path.chmod(mode)
        with pytest.raises(InvalidArgument, match="password file") as caught:
            read_password_file(path)
        assert "s3cret" not in str(caught.value)

    def test_a_missing_file_names_the_path(self, tmp_path: pathlib.Path) -> None:
        with pytest.raises(InvalidArgument, match="nope"):
            read_password_file(tmp_path / "nope")


class TestWhatReachesAUrlOrBody:
    @pytest.mark.parametrize("bad", ['a"b', "a b", "a?b", "a#b", "a&b", "", "x" * 300, "a\nb"])
    def test_unsafe_text_never_reaches_a_body_or_query(self, bad: str) -> None:
        with pytest.raises(InvalidArgument):
            safe(bad, field="f")
        with pytest.raises(InvalidArgument):
            check_query({"slot": bad})

    @pytest.mark.parametrize("item", ["*1/../x", "1A", "*", "*xyz", "*1?a=b"])
    def test_an_item_id_in_a_path_is_checked(self, item: str) -> None:
        with pytest.raises(InvalidArgument, match=r"\.id"):
            RestPath("disk", item)

    def test_the_create_body_is_strings_in_routeros_spelling(self) -> None:
        body = create_body(VOLUME)
        assert all(isinstance(v, str) for v in body.values())
        assert body["file-path"] == f"storage-pool/metal-csi/{VID}.img"  # no leading "/"
        assert body["file-size"] == str(GIB)
        assert body["slot"] == VID.value
        assert (body["nvme-tcp-export"], body["nvme-tcp-server-port"]) == ("true", "4420")
        assert body["mount-filesystem"] == "false"


def _disk(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        ".id": "*1A",
        "type": "file",
        "slot": VID.value,
        "file-path": f"/storage-pool/metal-csi/{VID}.img",
        "size": str(GIB),
        "file-size": str(GIB),
        "nvme-tcp-export": "true",
        "nvme-tcp-server-port": "4420",
        "nvme-tcp-server-nqn": VOLUME.nqn.value,
    }
    return {k: v for k, v in {**base, **fields}.items() if v is not None}


class TestReading:
    def test_an_exported_disk_is_a_volume(self) -> None:
        assert volume_from(_disk(), "raw") == VOLUME

    def test_yes_and_a_path_without_slash_read_the_same(self) -> None:
        disk = _disk(
            **{"nvme-tcp-export": "yes", "file-path": None, "model": VOLUME.path.value[1:]}
        )
        assert volume_from(disk, "raw") == VOLUME

    def test_an_unexported_disk_without_export_fields_is_a_volume(self) -> None:
        disk = _disk(
            **{
                "nvme-tcp-export": "false",
                "nvme-tcp-server-port": None,
                "nvme-tcp-server-nqn": None,
            }
        )
        made = volume_from(disk, "raw")
        assert made is not None
        assert not made.exported

    @pytest.mark.parametrize("fields", [{"slot": "storage-pool"}, {"type": "raid"}])
    def test_other_disks_are_not_ours(self, fields: dict[str, object]) -> None:
        assert volume_from(_disk(**fields), "raw") is None

    @pytest.mark.parametrize(
        "fields",
        [
            {"size": 1073741824},  # a JSON number: RouterOS writes strings
            {"size": "1 GiB"},
            {"nvme-tcp-export": "maybe"},
            {"nvme-tcp-server-port": "70000"},
            {"nvme-tcp-server-nqn": None},
        ],
    )
    def test_a_disk_of_ours_that_is_unreadable_is_malformed(
        self, fields: dict[str, object]
    ) -> None:
        with pytest.raises(MalformedOutput):
            volume_from(_disk(**fields), "raw")

    def test_capacity_is_the_pool_rows_size_and_free(self) -> None:
        report = capacity_from([{"size": "100", "free": "40"}], "raw", "storage-pool")
        assert (report.total.bytes, report.free.bytes) == (100, 40)
        with pytest.raises(MalformedOutput):
            capacity_from([{"size": "100", "free": "400"}], "raw", "storage-pool")


class TestTranslation:
    def test_no_space_is_capacity_exhausted(self) -> None:
        refusal = RestRefusal(400, "Bad Request", "failure: not enough space", "{}")
        assert isinstance(refusal_to_domain(refusal, "create"), CapacityExhausted)

    def test_a_missing_policy_says_which_policies(self) -> None:
        refusal = RestRefusal(500, "Internal Server Error", "std failure: not allowed (9)", "{}")
        error = refusal_to_domain(refusal, "create")
        assert isinstance(error, BackendError)
        assert "rest-api" in str(error)
        assert "not allowed (9)" in str(error)
