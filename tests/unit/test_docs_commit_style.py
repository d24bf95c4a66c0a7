"""scripts/check_commit_msg.py holds commit messages to CONTRIBUTING.md's style."""

from __future__ import annotations

import importlib.util
import pathlib
import re
from collections.abc import Callable, Sequence

import pytest


ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "check_commit_msg", ROOT / "scripts" / "check_commit_msg.py"
)
assert _spec is not None
assert _spec.loader is not None
_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_script)
problems: Callable[[str], list[str]] = _script.problems
main: Callable[[Sequence[str]], int] = _script.main

BODY = "\n\nThe checklist had grown past the module limit; one file per service\nreads better."


def test_a_message_in_the_house_style_passes() -> None:
    assert problems("Split the e2e checklist into one module per CSI service" + BODY) == []


def test_an_area_prefix_is_allowed() -> None:
    assert problems("Emulator: refuse keepalive requests as RouterOS does" + BODY) == []


def test_the_example_in_contributing_passes() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    example = re.findall(r"```text\n(.*?)```", text, flags=re.DOTALL)
    assert example
    assert problems(example[0]) == []


def test_a_subject_over_72_characters_is_refused() -> None:
    subject = "Retry " + "x" * 67
    assert len(subject) == 73
    assert problems(subject + BODY) == ["subject is 73 characters; at most 72"]
    assert problems(subject[:72] + BODY) == []


def test_a_trailing_period_is_refused() -> None:
    assert problems("Retry nvme connect with tenacity." + BODY) == ["subject ends with a period"]


@pytest.mark.parametrize(
    ("subject", "word"),
    [
        ("Added the architecture page", "Added"),
        ("Fixed a race in the breaker", "Fixed"),
        ("Docs: updated the module map", "updated"),
        ("Adding a commit-msg hook", "Adding"),
        ("Fixes the stale mount recovery", "Fixes"),
        ("Applies NodePath in the adapters", "Applies"),
    ],
)
def test_a_subject_not_in_the_imperative_is_refused(subject: str, word: str) -> None:
    found = problems(subject + BODY)
    assert len(found) == 1
    assert f"starts with {word!r}" in found[0]


@pytest.mark.parametrize(
    "subject",
    [
        "Embed the emulator in rds-csi all",
        "Speed up the unit tier",
        "Bring the fakes under their contract suites",
        "Process node paths once",
        "Focus the breaker on transport failures",
    ],
)
def test_imperatives_that_look_inflected_pass(subject: str) -> None:
    assert problems(subject + BODY) == []


def test_the_body_must_be_separated_by_a_blank_line() -> None:
    found = problems("Split the checklist\nBecause it was too long.")
    assert found == ["no blank line between the subject and the body"]


def test_a_message_without_a_body_is_refused() -> None:
    assert problems("Split the checklist\n") == ["no body: say why the change is made"]


def test_comments_and_the_scissors_are_what_git_drops() -> None:
    message = (
        "Split the checklist\n\nIt was too long.\n# Please enter the commit message\n"
        "# ------------------------ >8 ------------------------\ndiff --git a/x b/x\n"
    )
    assert problems(message) == []
    assert problems("# only comments\n\n") == ["the message is empty"]


def test_merge_and_autosquash_subjects_are_left_alone() -> None:
    assert problems("Merge branch 'docs' into main") == []
    assert problems("fixup! Split the checklist") == []


def test_the_hook_exits_1_and_names_each_problem(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "COMMIT_EDITMSG"
    bad.write_text("Added things.\n")
    assert main([str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert all(line.startswith(f"{bad}: ") for line in err)
    good = tmp_path / "good"
    good.write_text("Add things" + BODY)
    assert main([str(good)]) == 0
