"""StorageClass parameters: the docs, the examples and the chart name exactly the driver's."""

from __future__ import annotations

import pathlib
import re

import pytest

from rds_csi.application.structure import structure_parameters
from rds_csi.domain.parameters import PARAMETER_KEYS
from tests.deploy_support import (
    DOCS,
    MANIFESTS,
    Obj,
    by_kind,
    chart_values,
    code_blocks,
    doc_table,
    load_docs,
    load_file,
    manifest_objects,
)


STORAGE_CLASS_FILES = sorted(MANIFESTS.glob("storageclass-*.yaml"))


def test_the_docs_table_lists_every_parameter_and_nothing_else() -> None:
    documented = [
        row["parameter"] for row in doc_table("storageclass.md", "storageclass-parameters")
    ]
    assert len(documented) == len(set(documented))
    assert set(documented) == set(PARAMETER_KEYS)


def test_there_is_a_filesystem_and_a_raw_block_example() -> None:
    assert [p.name for p in STORAGE_CLASS_FILES] == [
        "storageclass-block.yaml",
        "storageclass-filesystem.yaml",
    ]


@pytest.mark.parametrize("path", STORAGE_CLASS_FILES, ids=lambda p: p.name)
def test_each_example_documents_every_parameter(path: pathlib.Path) -> None:
    text = path.read_text()
    comments = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    missing = [
        key for key in PARAMETER_KEYS if not re.search(rf"(?<![\w/.]){re.escape(key)}\b", comments)
    ]
    assert missing == []


def _storage_classes() -> list[Obj]:
    return by_kind(manifest_objects(), "StorageClass")


def test_examples_and_chart_use_only_known_parameters() -> None:
    used = [key for sc in _storage_classes() for key in sc["parameters"]]
    used += [key for sc in chart_values()["storageClasses"] for key in sc.get("parameters", {})]
    assert used
    assert set(used) <= set(PARAMETER_KEYS)


def test_example_values_are_accepted_by_the_driver() -> None:
    # The controller parses the same map in CreateVolume: a typo here would fail every PVC.
    for parameters in [sc["parameters"] for sc in _storage_classes()] + [
        sc.get("parameters", {}) for sc in chart_values()["storageClasses"]
    ]:
        assert isinstance(parameters, dict)
        assert all(isinstance(v, str) for v in parameters.values()), "parameters are strings"
        parsed = structure_parameters(parameters)
        assert parsed.unknown == ()


def test_the_block_class_sets_no_filesystem() -> None:
    block = next(sc for sc in _storage_classes() if sc["metadata"]["name"] == "rds-nvme-block")
    assert not {"fsType", "csi.storage.k8s.io/fstype"} & set(block["parameters"])


def test_the_chart_defaults_to_the_same_classes_as_the_manifests() -> None:
    from_chart = {sc["name"]: sc["parameters"] for sc in chart_values()["storageClasses"]}
    from_manifests = {sc["metadata"]["name"]: sc["parameters"] for sc in _storage_classes()}
    assert from_chart == from_manifests


def test_the_docs_show_the_example_classes_as_they_are() -> None:
    text = (DOCS / "storageclass.md").read_text()
    shown = [
        doc
        for block in code_blocks(text, "yaml")
        for doc in load_docs(block)
        if doc.get("kind") == "StorageClass"
    ]
    assert len(shown) == len(STORAGE_CLASS_FILES)
    for doc in shown:
        (example,) = (
            obj
            for path in STORAGE_CLASS_FILES
            for obj in load_file(path)
            if obj["metadata"]["name"] == doc["metadata"]["name"]
        )
        assert {k: v for k, v in example.items() if k != "metadata"} == {
            k: v for k, v in doc.items() if k != "metadata"
        }
