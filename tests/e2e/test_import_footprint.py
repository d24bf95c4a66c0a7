"""
What each role imports (issue 15): memory and start time are paid per imported module, and a
node plugin runs on every worker. A fresh interpreter builds the role as ``rds-csi`` does
(parse, settings, container, gRPC server) and reports ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest


# The SSH stack (paramiko and what fabric pulls in), the REST one (httpx) and the emulator: a
# controller's business; and the Kubernetes client (24 MB) when the cluster is the fake one.
SSH_AND_EMULATOR = (
    "paramiko", "fabric", "invoke", "httpx", "rds_csi.emulator", "rds_csi.adapters.routeros",
)  # fmt: skip
KUBERNETES_CLIENT = ("kubernetes",)

_BUILD_ROLE = """
import json, sys
from rds_csi.entrypoints.cli import build_parser
from rds_csi.entrypoints.config import resolve_settings
from rds_csi.entrypoints.container import Container
from rds_csi.entrypoints.settings import Mode
import rds_csi.entrypoints.serve
role, *flags = sys.argv[1:]
args = build_parser(only=role).parse_args([role, *flags])
container = Container(settings=resolve_settings(args), mode=Mode(role))
container.grpc_server()
container.health_monitor()
json.dump(sorted(sys.modules), sys.stdout)
"""

_CALL = """
import json, sys
from rds_csi.entrypoints.cli import build_parser
build_parser(only="call").parse_args(["call", "probe"])
json.dump(sorted(sys.modules), sys.stdout)
"""


def _modules(script: str, *argv: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "RDS_CSI_CONFIG": ""},
        timeout=60,
    )
    found: list[str] = json.loads(result.stdout)
    return found


def _heavy(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)] + [
        m for m in modules if m.startswith("rds_csi.adapters.routeros")
    ]


@pytest.mark.parametrize("initiator", ["fake", "nvme"])
def test_a_node_imports_no_ssh_stack_and_no_emulator(initiator: str) -> None:
    modules = _modules(
        _BUILD_ROLE, "node", "--initiator", initiator, "--node-id", "n1", "--kubernetes", "fake",
        "--metrics-address", "",
    )  # fmt: skip
    assert "rds_csi.entrypoints.csi.node" in modules  # it did build the node
    assert _heavy(modules, SSH_AND_EMULATOR) == []
    assert _heavy(modules, KUBERNETES_CLIENT) == []


def test_a_node_in_a_cluster_builds_the_kubernetes_client_only_for_its_first_event(
    tmp_path: pathlib.Path,
) -> None:
    # the node's only use of the API server is an occasional Event: 24 MB to pay on demand
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    modules = _modules(
        _BUILD_ROLE, "node", "--initiator", "fake", "--node-id", "n1", "--kubernetes", "api",
        "--kubeconfig", str(kubeconfig), "--metrics-address", "",
    )  # fmt: skip
    assert "rds_csi.entrypoints.csi.node" in modules
    assert _heavy(modules, KUBERNETES_CLIENT) == []


def test_dependency_injector_loads_without_pydantic() -> None:
    """It would load pydantic for a feature the driver does not use (``entrypoints/di.py``)."""
    modules = _modules(
        "import json, sys\nimport rds_csi.entrypoints.di\n"
        "json.dump(sorted(sys.modules), sys.stdout)"
    )
    assert "dependency_injector.providers" in modules
    assert _heavy(modules, ("pydantic", "pydantic_core")) == []


def test_the_call_client_imports_neither_the_server_nor_the_container() -> None:
    modules = _modules(_CALL)
    assert _heavy(modules, SSH_AND_EMULATOR) == []
    unwanted = ("dependency_injector", "rds_csi.entrypoints.container", "rds_csi.entrypoints.serve")
    assert [m for m in modules if m.startswith(unwanted)] == []


def test_a_controller_on_a_real_rds_still_builds_the_ssh_backend_lazily() -> None:
    """The SSH stack arrives when the controller's backend is built, not at import."""
    modules = _modules(
        _BUILD_ROLE, "controller", "--backend", "fake", "--kubernetes", "fake",
        "--metrics-address", "",
    )  # fmt: skip
    assert "rds_csi.entrypoints.csi.controller" in modules
    assert _heavy(modules, SSH_AND_EMULATOR) == []
    assert _heavy(modules, KUBERNETES_CLIENT) == []
