"""The maintainer docs stay true: the module map names what exists, and every port is covered."""

from __future__ import annotations

import inspect
import pathlib
import re

from rds_csi.application import ports


ROOT = pathlib.Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
PACKAGE = ROOT / "src" / "rds_csi"


def _module_map() -> list[str]:
    """The paths in the first column of the module map table."""
    text = ARCHITECTURE.read_text()
    table = re.search(r"<!-- table: modules -->\n(.*?)<!-- /table -->", text, flags=re.DOTALL)
    assert table, "docs/architecture.md has no module map (<!-- table: modules -->)"
    paths: list[str] = []
    for line in table[1].splitlines()[2:]:  # below the header and its rule
        first = line.split("|")[1]
        paths += re.findall(r"`([^`]+)`", first)
    return paths


def _packages() -> list[pathlib.Path]:
    return sorted(p.parent for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE)


def test_every_path_in_the_module_map_exists() -> None:
    paths = _module_map()
    assert paths
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert missing == [], f"docs/architecture.md's module map names missing paths: {missing}"


def test_every_package_has_a_row_in_the_module_map() -> None:
    named = {(ROOT / p).resolve() for p in _module_map()}
    covered = named | {p.parent for p in named if p.suffix == ".py"}
    missing = [str(p.relative_to(ROOT)) for p in _packages() if p.resolve() not in covered]
    assert missing == [], f"add a row to the module map in docs/architecture.md for {missing}"


def test_every_port_is_described() -> None:
    text = ARCHITECTURE.read_text()
    protocols = [
        name
        for name, value in vars(ports).items()
        if inspect.isclass(value)
        and getattr(value, "_is_protocol", False)
        and value.__module__ == ports.__name__
    ]
    assert "StorageBackend" in protocols
    assert [name for name in protocols if f"`{name}`" not in text] == []


def test_contributing_gives_the_readmes_test_command_and_the_setup() -> None:
    readme = (ROOT / "README.md").read_text()
    test_command = re.findall(r"```sh\n(.*?)\n```", readme, flags=re.DOTALL)[1].strip()
    text = CONTRIBUTING.read_text()
    assert test_command in text
    assert "python3 -m pip install -e '.[dev]'" in text
    assert "scripts/check_commit_msg.py" in text
