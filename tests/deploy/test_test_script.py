"""
scripts/test, the README's and CI's test command, finds pyenv's Pythons on a fresh machine:
every 3.11+ release under the pyenv root goes on PATH, 3.11 first, even when pyenv itself is
not on PATH; then it runs tox with that PATH. Fake interpreters record what they were asked.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

from tests.deploy_support import ROOT


SCRIPT = ROOT / "scripts" / "test"
RECORDER = """#!/bin/sh
printf '%s|%s|%s\\n' "$0" "$*" "$PATH" >> "$CALLS"
"""


def _fake_python(bin_dir: pathlib.Path) -> None:
    bin_dir.mkdir(parents=True)
    for name in ("python3", "python"):
        exe = bin_dir / name
        exe.write_text(RECORDER)
        exe.chmod(0o755)


@pytest.fixture
def fake_pyenv(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "pyenv"
    for version in ("3.10.13", "3.11.7", "3.12.1", "3.13.0", "3.14.0a1", "3.12-venv"):
        _fake_python(root / "versions" / version / "bin")
    (root / "versions" / "3.11.9" / "bin").mkdir(parents=True)  # a broken install: no python3
    return root


def _run(tmp_path: pathlib.Path, pyenv_root: pathlib.Path, *args: str) -> list[list[str]]:
    system = tmp_path / "system-bin"
    _fake_python(system)
    for tool in ("bash", "env", "find", "grep", "sort", "dirname", "printf"):
        found = shutil.which(tool)
        assert found, tool
        (system / tool).symlink_to(found)
    calls = tmp_path / "calls"
    env = {
        "PATH": str(system),
        "HOME": str(tmp_path / "home"),  # no ~/.pyenv there: PYENV_ROOT is the one
        "PYENV_ROOT": str(pyenv_root),
        "CALLS": str(calls),
    }
    done = subprocess.run(
        [str(system / "bash"), str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    if args[:1] == ("--print-path",):
        return [done.stdout.strip().split(os.pathsep)]
    return [line.split("|") for line in calls.read_text().splitlines()]


def test_every_pyenv_python_from_3_11_goes_on_path_and_tox_runs(
    tmp_path: pathlib.Path, fake_pyenv: pathlib.Path
) -> None:
    (install, run) = _run(tmp_path, fake_pyenv, "-e", "py312")
    versions = fake_pyenv / "versions"
    # 3.11 is `python3`: tox is installed into it and runs from it.
    assert install[0] == str(versions / "3.11.7" / "bin" / "python3")
    assert install[1] == "-m pip install -q tox"
    assert run[0] == install[0]
    assert run[1] == "-m tox run -e py312"
    path = run[2].split(os.pathsep)
    assert path[:3] == [str(versions / v / "bin") for v in ("3.11.7", "3.12.1", "3.13.0")]
    assert path[3] == str(tmp_path / "system-bin")  # nothing else: 3.10, alphas, venvs stay off


def test_without_pyenv_the_system_python_runs_tox(tmp_path: pathlib.Path) -> None:
    (install, run) = _run(tmp_path, tmp_path / "no-pyenv")
    assert install[0] == str(tmp_path / "system-bin" / "python3")
    assert run[1] == "-m tox run"


def test_print_path_prints_the_path_ci_exports(
    tmp_path: pathlib.Path, fake_pyenv: pathlib.Path
) -> None:
    (path,) = _run(tmp_path, fake_pyenv, "--print-path")
    assert path[0] == str(fake_pyenv / "versions" / "3.11.7" / "bin")
    assert not (tmp_path / "calls").exists()
