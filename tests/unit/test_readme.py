"""The README's first commands are the ones a new user runs; CI must run the same test command."""

from __future__ import annotations

import configparser
import os
import pathlib
import re
import tomllib

from tests.conftest import TIERS


ROOT = pathlib.Path(__file__).resolve().parents[2]


def _first_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", text, flags=re.DOTALL)
    return [b.strip() for b in blocks[:2]]


def test_readme_opens_with_a_run_and_a_test_command() -> None:
    head = (ROOT / "README.md").read_text().split("\n## ")[0]
    run, test = _first_commands()
    assert run in head
    assert test in head
    assert "rds-csi" in run
    assert "\n" not in run
    assert "\n" not in test
    # The test command is a script that runs tox (scripts/test: pyenv's Pythons on PATH first).
    script = ROOT / test.split()[0]
    assert script.is_file()
    assert os.access(script, os.X_OK)
    assert "-m tox run" in script.read_text()


def test_ci_runs_the_readme_test_command() -> None:
    _, test = _first_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in [line.strip() for line in ci]


def test_the_readme_test_command_runs_every_tier() -> None:
    # `tox run` runs env_list: a tier the bare pyXYZ envs leave out needs an env of its own.
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    envs = [e.strip() for e in tox["tox"]["env_list"].split(",")]
    assert any(re.fullmatch(r"py3\d+", e) for e in envs)
    bare = next(
        line for line in tox["testenv"]["commands"].splitlines() if line.startswith("!unit-")
    )
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    registered = {m.partition(":")[0] for m in markers["markers"]}
    for tier in TIERS:
        assert tier in registered
        assert (ROOT / "tests" / tier).is_dir()
        own_env = any(
            f"pytest -m {tier}" in tox[f"testenv:{env}"].get("commands", "")
            for env in envs
            if tox.has_section(f"testenv:{env}")
        )
        assert f"not {tier}" not in bare or own_env, f"no env in env_list runs the {tier} tier"
