"""
What the deployment tests share: the manifests, the chart, the docs' tables, the driver's CLI.

The tests read the same files an operator applies (deploy/, docs/) and compare them with the
code (PARAMETER_KEYS, ``rds-csi --help``, the running driver), so a change on one side that the
other did not follow fails a test instead of a cluster.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any, Final

import pytest
import yaml


ROOT: Final = pathlib.Path(__file__).resolve().parents[1]
MANIFESTS: Final = ROOT / "deploy" / "kubernetes"
CHART: Final = ROOT / "deploy" / "helm" / "rds-csi"
DOCS: Final = ROOT / "docs"
# In the example folder, not in the kustomization: applying it would overwrite a real key.
EXAMPLE_ONLY: Final = frozenset({"secret.example.yaml", "secret-rest.example.yaml"})
NAMESPACE: Final = "rds-csi"
DRIVER_CONTAINER: Final = "rds-csi"
OLDEST_KUBERNETES: Final = (1, 26)

# --- what the driver advertises ----------------------------------------------------------------
# The capabilities agreed with the gRPC entrypoint (issue 5's contract). The manifests are
# checked against these now; tests/e2e/deploy/test_live_driver.py checks the running driver
# against them once the CLI exists, so a capability change fails there and points here.
PLUGIN_CAPABILITIES: Final = frozenset({"CONTROLLER_SERVICE"})
VOLUME_EXPANSION: Final = "ONLINE"
CONTROLLER_CAPABILITIES: Final = frozenset(
    {
        "CREATE_DELETE_VOLUME",
        "LIST_VOLUMES",
        "GET_CAPACITY",
        "EXPAND_VOLUME",
        "GET_VOLUME",
        "SINGLE_NODE_MULTI_WRITER",
        "PUBLISH_UNPUBLISH_VOLUME",
        "LIST_VOLUMES_PUBLISHED_NODES",
        "CREATE_DELETE_SNAPSHOT",
        "LIST_SNAPSHOTS",
        "CLONE_VOLUME",
    }
)
NODE_CAPABILITIES: Final = frozenset(
    {
        "STAGE_UNSTAGE_VOLUME",
        "GET_VOLUME_STATS",
        "EXPAND_VOLUME",
        "VOLUME_CONDITION",
        "SINGLE_NODE_MULTI_WRITER",
    }
)

Obj = dict[str, Any]


# --- YAML ----------------------------------------------------------------------------------------


def load_docs(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def load_file(path: pathlib.Path) -> list[Obj]:
    return load_docs(path.read_text())


def kustomization() -> Obj:
    doc: Obj = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    return doc


def manifest_files() -> list[pathlib.Path]:
    """Every object file in deploy/kubernetes (the kustomization itself aside)."""
    return sorted(p for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")


def manifest_objects() -> list[Obj]:
    """What ``kubectl apply -k deploy/kubernetes`` applies."""
    return [obj for name in kustomization()["resources"] for obj in load_file(MANIFESTS / name)]


def example_objects() -> list[Obj]:
    return [obj for name in sorted(EXAMPLE_ONLY) for obj in load_file(MANIFESTS / name)]


def by_kind(objects: Iterable[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: Iterable[Obj], kind: str, name_suffix: str = "") -> Obj:
    found = [o for o in by_kind(objects, kind) if o["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, found {len(found)}"
    return found[0]


def containers(workload: Obj) -> dict[str, Obj]:
    return {c["name"]: c for c in workload["spec"]["template"]["spec"]["containers"]}


def driver_container(workload: Obj) -> Obj:
    return containers(workload)[DRIVER_CONTAINER]


def flag_name(arg: str) -> str | None:
    """``--rds-port=22`` -> ``--rds-port``; a positional argument -> None."""
    if not arg.startswith("--"):
        return None
    return arg.split("=", 1)[0]


def driver_flags(workload: Obj) -> tuple[str, set[str]]:
    """The driver container's subcommand and the flags it is started with."""
    args: list[str] = driver_container(workload)["args"]
    flags = {f for f in map(flag_name, args[1:]) if f}
    return args[0], flags


def config_files(objects: Iterable[Obj]) -> dict[str, Obj]:
    """The driver's YAML settings files in the ConfigMap, parsed: ``{"controller.yaml": {...}}``."""
    cm = one(objects, "ConfigMap", "-config")
    return {name: yaml.safe_load(text) for name, text in cm["data"].items()}


def sidecar_name(image: str) -> str:
    """``registry.k8s.io/sig-storage/csi-provisioner:v5.2.0`` -> ``csi-provisioner``."""
    return image.rsplit("/", 1)[-1].split(":", 1)[0]


# --- Kubernetes schemas --------------------------------------------------------------------------


def kubernetes_versions() -> list[str]:
    """Every minor version kubernetes-validate has schemas for, from the oldest we support."""
    kv_utils = pytest.importorskip(
        "kubernetes_validate.utils", reason="kubernetes-validate (dev extra) is not installed"
    )
    minors: set[tuple[int, int]] = set()
    for version in kv_utils.all_versions():
        major, minor = (int(part) for part in version.split(".")[:2])
        if (major, minor) >= OLDEST_KUBERNETES:
            minors.add((major, minor))
    return [f"{major}.{minor}" for major, minor in sorted(minors)]


def schema_errors(objects: Iterable[Obj], version: str) -> list[str]:
    """Validate against the strict schemas (unknown fields are errors); one line per problem."""
    import kubernetes_validate  # noqa: PLC0415 - the dev extra; kubernetes_versions() skips without

    errors: list[str] = []
    for obj in objects:
        what = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{what} against {version}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{what} against {version}: {exc.message}")
    return errors


# --- the Helm chart ------------------------------------------------------------------------------

NO_RENDERER: Final = (
    "rendering the chart needs a `helm` binary on PATH or the helm-python-sdk package (in the "
    "dev extra on x86_64 Linux); neither is here"
)


class ChartRenderError(Exception):
    """Helm refused to render the chart with the given values."""


def helm_backend() -> str | None:
    if shutil.which("helm"):
        return "helm"
    if importlib.util.find_spec("helm_python") is not None:
        return "helm_python"
    return None


def render_chart(values: Obj, *, release: str = "rds-csi", namespace: str = NAMESPACE) -> list[Obj]:
    """``helm template`` the chart; skips the test when no Helm engine is installed."""
    backend = helm_backend()
    if backend is None:
        pytest.skip(NO_RENDERER)
    if backend == "helm":
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values_file:
            yaml.safe_dump(values, values_file)
            values_file.flush()
            done = subprocess.run(
                [
                    *("helm", "template", release, str(CHART)),
                    *("--namespace", namespace, "--values", values_file.name),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        if done.returncode != 0:
            raise ChartRenderError(done.stderr)
        return load_docs(done.stdout)
    import helm_python  # noqa: PLC0415 - optional: only where its wheel exists

    try:
        with helm_python.Chart.load(CHART) as chart:
            rendered = chart.render(values, name=release, namespace=namespace)
    except helm_python.HelmError as exc:
        raise ChartRenderError(str(exc)) from exc
    texts = [text for path, text in sorted(rendered.items()) if path.endswith((".yaml", ".yml"))]
    return load_docs("\n---\n".join(texts))


def chart_values() -> Obj:
    values: Obj = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def chart_metadata() -> Obj:
    meta: Obj = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return meta


def values_like_the_manifests() -> Obj:
    """Chart values that should render what deploy/kubernetes holds (its ConfigMap's RDS)."""
    controller = config_files(manifest_objects())["controller.yaml"]
    return {
        "rds": {"address": controller["rds_address"], "nvmeAddress": controller["nvme_address"]}
    }


# --- the docs' machine-readable tables ----------------------------------------------------------

_TABLE_RE = re.compile(r"<!-- table: (?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /table -->", re.DOTALL)


def doc_table(page: str, name: str) -> list[dict[str, str]]:
    """
    Rows of the table between ``<!-- table: NAME -->`` and ``<!-- /table -->`` in docs/PAGE,
    keyed by the header; backticks are stripped from the cells.
    """
    text = (DOCS / page).read_text()
    tables = {m["name"]: m["body"] for m in _TABLE_RE.finditer(text)}
    assert name in tables, f"docs/{page} has no table {name!r}"
    lines = [line.strip() for line in tables[name].strip().splitlines()]
    header = _cells(lines[0])
    assert set(lines[1].replace("|", "").strip()) <= set("-: "), "second line must be |---|"
    rows = [dict(zip(header, _cells(line), strict=True)) for line in lines[2:]]
    assert rows, f"docs/{page} table {name!r} is empty"
    return rows


def _cells(line: str) -> list[str]:
    return [cell.strip().replace("`", "") for cell in line.strip().strip("|").split("|")]


def doc_pages() -> list[pathlib.Path]:
    return sorted(DOCS.glob("*.md"))


def code_blocks(text: str, language: str = "[a-z]*") -> Iterator[str]:
    """The fenced code blocks of a markdown text, those of one ``language`` if given."""
    yield from re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


# --- the driver's command line -------------------------------------------------------------------

SERVE_COMMANDS: Final = ("controller", "node", "all")
ALL_COMMANDS: Final = (*SERVE_COMMANDS, "call", "doctor", "emulator", "version")
_FLAG_RE = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")


def cli_importable() -> bool:
    try:
        return (
            importlib.util.find_spec("rds_csi.__main__") is not None
            and importlib.util.find_spec("rds_csi.entrypoints.cli") is not None
        )
    except ModuleNotFoundError:
        return False


NO_CLI: Final = (
    "the driver's CLI (rds_csi.__main__, rds_csi.entrypoints.cli) is not importable yet: the "
    "gRPC entrypoint issue adds it; until then only the static checks run"
)


def driver_env() -> dict[str, str]:
    """The parent's environment with src/ importable, as the house rules ask of child processes."""
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return env


@functools.cache
def cli_help(*command: str) -> str:
    """``rds-csi [COMMAND...] --help``; skips the test when the CLI does not exist yet."""
    if not cli_importable():
        pytest.skip(NO_CLI)
    done = subprocess.run(
        [sys.executable, "-m", "rds_csi", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=driver_env(),
        check=False,
    )
    assert done.returncode == 0, (
        f"rds-csi {' '.join(command)} --help failed ({done.returncode}):\n{done.stderr}"
    )
    return done.stdout


def help_flags(*command: str) -> set[str]:
    return set(_FLAG_RE.findall(cli_help(*command))) - {"--help"}


def command_lines(text: str) -> Iterator[tuple[str, set[str]]]:
    """``rds-csi SUBCOMMAND --flag ...`` invocations in a text: (subcommand, flags)."""
    commands = "|".join(ALL_COMMANDS)
    for match in re.finditer(rf"\brds-csi[ \t]+({commands})\b([^\n`|]*)", text):
        yield match[1], set(_FLAG_RE.findall(match[2]))
