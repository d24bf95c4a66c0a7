"""The README's first commands are the ones a new user runs; CI must run the same test command."""

from __future__ import annotations

import pathlib
import re


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
    assert "tox" in test


def test_ci_runs_the_readme_test_command() -> None:
    _, test = _first_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in [line.strip() for line in ci]
