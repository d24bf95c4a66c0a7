"""docs/compatibility.md says what the repository actually pins and tests."""

from __future__ import annotations

import configparser
import re
import tomllib

from tests.deploy_support import (
    ROOT,
    containers,
    doc_table,
    kubernetes_versions,
    manifest_objects,
    sidecar_name,
)


def _rows() -> dict[str, str]:
    return {
        row["component"]: row["versions"] for row in doc_table("compatibility.md", "compatibility")
    }


def test_the_kubernetes_range_is_the_validated_one() -> None:
    versions = kubernetes_versions()
    assert _rows()["Kubernetes"] == f"{versions[0]} - {versions[-1]}"


def test_the_sidecar_versions_are_the_pinned_images() -> None:
    pinned = {
        sidecar_name(c["image"]): c["image"].rsplit(":", 1)[1]
        for o in manifest_objects()
        if o["kind"] in {"Deployment", "DaemonSet"}
        for c in containers(o).values()
        if c["image"].startswith("registry.k8s.io/")
    }
    rows = _rows()
    assert pinned
    assert {name: rows.get(name) for name in pinned} == pinned


def test_the_python_versions_are_the_tested_ones() -> None:
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    envs = [e.strip() for e in tox["tox"]["env_list"].split(",")]
    tested = [f"3.{e[3:]}" for e in envs if re.fullmatch(r"py3\d+", e)]
    assert _rows()["Python"] == ", ".join(tested)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={tested[0]}"


def test_the_csi_spec_is_the_wire_fixtures() -> None:
    (fixture,) = (ROOT / "tests" / "fixtures").glob("csi-wire-fingerprint-*.json")
    assert fixture.stem.removeprefix("csi-wire-fingerprint-") == _rows()["CSI spec"]
