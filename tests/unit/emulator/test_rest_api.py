"""The emulator's REST resources answer as RouterOS 7 does (FACTS section 4), in-process."""

from __future__ import annotations

import json
import pathlib

import pytest

from rds_csi.domain import Size
from rds_csi.domain.size import GIB, TIB
from rds_csi.emulator.dataplane import JsonExportsDataPlane
from rds_csi.emulator.rest_api import Answer, RestApi
from rds_csi.emulator.state import PoolState


@pytest.fixture
def api(tmp_path: pathlib.Path) -> RestApi:
    state = PoolState(
        tmp_path,
        pool_name="storage-pool",
        pool_size=Size(TIB),
        data_plane=JsonExportsDataPlane(tmp_path / "nvme-exports.json"),
    )
    return RestApi(state)


def _call(api: RestApi, method: str, path: str, body: object = None, **query: str) -> Answer:
    raw = b"" if body is None else json.dumps(body).encode()
    return api.handle(method, path, query, raw)


DISK = {
    "type": "file",
    "file-path": "storage-pool/x/pvc-1.img",
    "file-size": str(GIB),
    "slot": "pvc-1",
    "nvme-tcp-export": "yes",
    "nvme-tcp-server-port": "4420",
    "nvme-tcp-server-nqn": "nqn.2000-02.com.mikrotik:pvc-1",
}


def test_put_returns_the_whole_item_with_every_value_a_string(api: RestApi) -> None:
    made = _call(api, "PUT", "/rest/disk", DISK)
    assert made.status == 200
    assert isinstance(made.doc, dict)
    assert all(isinstance(v, str) for v in made.doc.values())
    assert made.doc[".id"].startswith("*")
    assert made.doc["size"] == made.doc["file-size"] == str(GIB)  # raw bytes
    assert made.doc["nvme-tcp-export"] == "true"  # written as yes, read as true
    assert made.doc["block-device"] == "true"  # a flag as a boolean property


def test_get_filters_on_fields_and_limits_them_with_proplist(api: RestApi) -> None:
    _call(api, "PUT", "/rest/disk", DISK)
    found = _call(api, "GET", "/rest/disk", slot="pvc-1", **{".proplist": "slot,size"})
    assert found.doc == [{".id": "*2", "slot": "pvc-1", "size": str(GIB)}]
    pool = _call(api, "GET", "/rest/disk", **{"mount-point": "storage-pool"})
    assert isinstance(pool.doc, list)
    assert [row["slot"] for row in pool.doc] == ["storage-pool"]
    assert int(pool.doc[0]["free"]) == TIB - GIB


def test_post_add_returns_ret_and_post_print_takes_a_query(api: RestApi) -> None:
    added = _call(api, "POST", "/rest/disk/add", DISK)
    assert added.doc == {"ret": "*2"}
    printed = _call(api, "POST", "/rest/disk/print", {".query": ["slot=pvc-1"]})
    assert isinstance(printed.doc, list)
    assert [row["slot"] for row in printed.doc] == ["pvc-1"]


def test_errors_have_routeros_shape(api: RestApi) -> None:
    assert _call(api, "GET", "/rest/disk/*99").doc == {"error": 404, "message": "Not Found"}
    unknown = _call(api, "PUT", "/rest/disk", {**DISK, "colour": "blue"})
    assert unknown.status == 400
    assert unknown.doc == {
        "error": 400,
        "message": "Bad Request",
        "detail": "unknown parameter colour",
    }
    _call(api, "PUT", "/rest/disk", DISK)
    again = _call(api, "PUT", "/rest/disk", DISK)
    assert isinstance(again.doc, dict)
    assert again.doc["detail"] == "failure: already have such entry"
    assert _call(api, "GET", "/rest/nothing").status == 400


def test_delete_is_empty_then_404_and_keeps_the_file(api: RestApi) -> None:
    made = _call(api, "PUT", "/rest/disk", DISK).doc
    assert isinstance(made, dict)
    gone = _call(api, "DELETE", f"/rest/disk/{made['.id']}")
    assert (gone.status, gone.doc) == (204, None)
    assert _call(api, "DELETE", f"/rest/disk/{made['.id']}").status == 404
    files = _call(api, "GET", "/rest/file", name="storage-pool/x/pvc-1.img").doc
    assert isinstance(files, list)
    assert [f["size"] for f in files] == [str(GIB)]  # removing a disk keeps its file
    assert _call(api, "DELETE", f"/rest/file/{files[0]['.id']}").status == 204


def test_the_fault_description_carries_the_console_words() -> None:
    assert RestApi.describe("PUT", "/rest/disk", {}) == "PUT /rest/disk :: /disk add"
    assert "print detail where slot=x" in RestApi.describe("GET", "/rest/disk", {"slot": "x"})
    assert RestApi.describe("PATCH", "/rest/disk/*2", {}).endswith("/disk set *2")


def test_file_copy_and_copy_from_copy_the_image(api: RestApi) -> None:
    made = _call(api, "PUT", "/rest/disk", DISK)
    assert isinstance(made.doc, dict)
    image = api.state.disk_image(api.state.by_slot("pvc-1"))  # type: ignore[arg-type]
    image.write_bytes(b"data")
    copied = _call(
        api,
        "POST",
        "/rest/file/copy",
        {"source": "storage-pool/x/pvc-1.img", "name": "storage-pool/x/c.img"},
    )
    assert copied.status == 200
    assert api.state.image_path("storage-pool/x/c.img").read_bytes() == b"data"
    again = _call(api, "POST", "/rest/file/copy", {"source": "storage-pool/x/pvc-1.img"})
    assert again.status == 400
    assert "name" in str(again.doc)
    odd = _call(api, "POST", "/rest/file/copy", {"src": "a", "name": "b"})
    assert "unknown parameter src" in str(odd.doc)
    body = {
        "type": "file",
        "file-path": "storage-pool/x/s.img",
        "slot": "s1",
        "nvme-tcp-export": "no",
    }
    twin = _call(api, "PUT", "/rest/disk", {**body, "copy-from": made.doc[".id"]})
    assert twin.status == 200
    assert api.state.image_path("storage-pool/x/s.img").read_bytes() == b"data"
    ghost = _call(api, "PUT", "/rest/disk", {**body, "slot": "s2", "copy-from": "*FFFF"})
    assert ghost.status == 400
    assert "no such item" in str(ghost.doc)
