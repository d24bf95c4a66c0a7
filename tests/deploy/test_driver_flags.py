"""
The driver flags the manifests, the chart and the docs use are the flags ``rds-csi`` has.

The static half runs always: the manifests and docs name only flags listed in the docs' flag
table (docs/configuration.md). The other half asks ``rds-csi ... --help`` and skips, saying so,
until the CLI exists.
"""

from __future__ import annotations

import functools

import pytest

from tests.deploy_support import (
    ALL_COMMANDS,
    SERVE_COMMANDS,
    Obj,
    by_kind,
    cli_help,
    command_lines,
    config_files,
    doc_pages,
    doc_table,
    driver_container,
    driver_flags,
    help_flags,
    manifest_objects,
    render_chart,
    values_like_the_manifests,
)


ROLES = ("controller", "node")


def documented_flags() -> dict[str, set[str]]:
    """Role -> the flags docs/configuration.md lists for it."""
    by_role: dict[str, set[str]] = {role: set() for role in ROLES}
    for row in doc_table("configuration.md", "driver-flags"):
        roles = {r.strip() for r in row["roles"].split(",")}
        assert roles <= set(ROLES), row
        for role in roles:
            by_role[role].add(row["flag"])
    by_role["all"] = by_role["controller"] | by_role["node"]
    return by_role


def _workloads(objects: list[Obj]) -> list[Obj]:
    return by_kind(objects, "Deployment") + by_kind(objects, "DaemonSet")


def used_flags(objects: list[Obj]) -> list[tuple[str, set[str]]]:
    """(subcommand, flags) for each driver container, its settings file's keys included."""
    files = config_files(objects)
    used: list[tuple[str, set[str]]] = []
    for workload in _workloads(objects):
        command, flags = driver_flags(workload)
        keys = files[f"{command}.yaml"]
        flags |= {"--" + key.replace("_", "-") for key in keys}
        env = driver_container(workload).get("env", [])
        flags |= {
            "--" + e["name"].removeprefix("RDS_CSI_").lower().replace("_", "-")
            for e in env
            if e["name"].startswith("RDS_CSI_")
        }
        used.append((command, flags))
    return used


def chart_variants() -> list[list[Obj]]:
    base = values_like_the_manifests()
    trial = {
        **base,
        "rds": {
            **base["rds"],
            "insecureIgnoreHostKey": True,
            "nqnPrefix": "nqn.2024-01.org.example",
        },
    }
    trial["node"] = {"maxVolumesPerNode": 32}
    return [render_chart(base), render_chart(trial)]


# --- static: manifests and docs agree with the docs' flag table --------------------------------


def test_the_manifests_use_only_documented_flags() -> None:
    documented = documented_flags()
    for command, flags in used_flags(manifest_objects()):
        assert flags - documented[command] == set(), command


def test_the_chart_uses_only_documented_flags() -> None:
    documented = documented_flags()
    for objects in chart_variants():
        for command, flags in used_flags(objects):
            assert flags - documented[command] == set(), command


def test_the_docs_use_only_documented_flags() -> None:
    documented = documented_flags()
    seen = 0
    for page in doc_pages():
        for command, flags in command_lines(page.read_text()):
            if command in documented:
                seen += 1
                assert flags - documented[command] == set(), f"{page.name}: rds-csi {command}"
    assert seen > 0


def test_the_flag_table_has_one_row_per_flag() -> None:
    flags = [row["flag"] for row in doc_table("configuration.md", "driver-flags")]
    assert len(flags) == len(set(flags))
    assert all(flag.startswith("--") for flag in flags)


# --- against the CLI itself ----------------------------------------------------------------------


def test_the_cli_has_every_command_the_docs_name() -> None:
    top = cli_help()
    missing = [command for command in ALL_COMMANDS if command not in top]
    assert missing == []


@pytest.mark.parametrize("command", SERVE_COMMANDS)
def test_every_documented_flag_exists(command: str) -> None:
    assert documented_flags()[command] - help_flags(command) == set()


@pytest.mark.parametrize("command", SERVE_COMMANDS)
def test_every_flag_is_documented(command: str) -> None:
    # Against the whole table: a role may accept the other role's flags (one shared set).
    assert help_flags(command) - documented_flags()["all"] == set()


def test_the_manifests_and_chart_start_the_driver_with_flags_it_has() -> None:
    for objects in [manifest_objects(), *chart_variants()]:
        for command, flags in used_flags(objects):
            assert flags - help_flags(command) == set(), command


@functools.cache
def _sub_flags() -> dict[str, set[str]]:
    """Every flag of `rds-csi call VERB` and `rds-csi doctor ROLE` (written after the verb)."""
    from rds_csi.entrypoints.client import VERBS  # noqa: PLC0415 - only with the CLI

    return {
        "call": set().union(*(help_flags("call", verb) for verb in VERBS)),
        "doctor": help_flags("doctor", "controller") | help_flags("doctor", "node"),
    }


def test_the_docs_commands_use_flags_the_driver_has() -> None:
    for page in doc_pages():
        for command, flags in command_lines(page.read_text()):
            known = help_flags(command) | _sub_flags().get(command, set())
            assert flags - known == set(), f"{page.name}: rds-csi {command}"
