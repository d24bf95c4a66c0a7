"""The house rule, enforced: no import runs upward, and the domain stays pure."""

from __future__ import annotations

import ast
import pathlib
import sys

import pytest


SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "rds_csi"
STDLIB = frozenset(sys.stdlib_module_names)

# layer -> the first-party layers and third-party packages it may import
ALLOWED_FIRST_PARTY = {
    "domain": {"domain"},
    "application": {"domain", "application"},
    "adapters": {"domain", "application", "adapters"},
    "entrypoints": {"domain", "application", "adapters", "entrypoints", "emulator"},
    # a product part beside the driver: it may use the domain's values, nothing else of ours
    "emulator": {"domain", "emulator"},
}
DOMAIN_THIRD_PARTY = {"attrs"}
APPLICATION_FORBIDDEN = {
    "grpc",
    "google",
    "fabric",
    "paramiko",
    "kubernetes",
    "prometheus_client",
    "dependency_injector",
    "subprocess",
}


def _imports(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def _modules(layer: str) -> list[pathlib.Path]:
    return sorted((SRC / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED_FIRST_PARTY))
def test_first_party_imports_point_inward(layer: str) -> None:
    bad: list[str] = []
    for path in _modules(layer):
        for name in _imports(path):
            parts = name.split(".")
            if (
                parts[0] == "rds_csi"
                and len(parts) > 1
                and parts[1] not in ALLOWED_FIRST_PARTY[layer]
            ):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert bad == []


def test_domain_imports_only_stdlib_and_attrs() -> None:
    bad = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in _modules("domain")
        for name in _imports(path)
        if name.split(".")[0] not in STDLIB | DOMAIN_THIRD_PARTY | {"rds_csi"}
    ]
    assert bad == []


def test_domain_does_no_io() -> None:
    io_modules = {"os", "subprocess", "socket", "threading", "logging", "time", "io", "shutil"}
    bad = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in _modules("domain")
        for name in _imports(path)
        if name.split(".")[0] in io_modules
    ]
    assert bad == []


def test_application_never_touches_wire_or_transport_libraries() -> None:
    bad = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in _modules("application")
        for name in _imports(path)
        if name.split(".")[0] in APPLICATION_FORBIDDEN
    ]
    assert bad == []


def test_the_check_sees_imports_at_all() -> None:
    # Guards the guard: an AST walk that found nothing would pass every rule above.
    assert "rds_csi.domain" in _imports(SRC / "application" / "provisioning.py")
