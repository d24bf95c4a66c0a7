#!/usr/bin/env python3
"""Check commit messages against the house style (CONTRIBUTING.md).

The style: a subject of at most 72 characters in the imperative ("Split the checklist", not
"Split the checklist." or "Splitting ..." or "Added ..."), a blank line, then a body saying
why. The imperative test is a heuristic on the subject's first word (after an optional
``Area:`` prefix): no past tense, no gerund, no third person of a common verb.

Usage:
    python scripts/check_commit_msg.py FILE          # as a commit-msg hook (git passes FILE)
    python scripts/check_commit_msg.py --range A..B  # every commit in a range, e.g. main..HEAD

Install as the commit-msg hook (worktrees share the hooks of the common git directory):
    ln -s "$PWD/scripts/check_commit_msg.py" "$(git rev-parse --git-common-dir)/hooks/commit-msg"
Exit status 1 when a message breaks a rule; each problem is printed on its own line.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final


MAX_SUBJECT: Final = 72

# git's own subjects, and the autosquash markers that are rewritten before they land.
_EXEMPT: Final = re.compile(r"^(Merge |Revert \"|fixup! |squash! |amend! )")
# "Docs: ...", "SSH adapter: ..." name the area; the verb follows.
_AREA: Final = re.compile(r"^[\w./ -]{1,30}: ")
# "red", "bed", "king": too short to be an inflected verb.
_MIN_STEM: Final = 2
_SCISSORS: Final = "# ------------------------ >8 ------------------------"

# Words ending in -ed/-ing/-s that are imperatives (or nouns) themselves.
_NOT_INFLECTED: Final = frozenset(
    {
        "anything",
        "bed",
        "bring",
        "embed",
        "everything",
        "feed",
        "need",
        "nothing",
        "ping",
        "proceed",
        "ring",
        "seed",
        "shed",
        "something",
        "speed",
        "spring",
        "string",
        "succeed",
        "swing",
        "thing",
    }
)
# Common verbs whose third person ("Adds", "Fixes") slips into subjects.
_VERBS: Final = frozenset(
    {
        "add",
        "allow",
        "apply",
        "bump",
        "change",
        "check",
        "clean",
        "document",
        "drop",
        "ensure",
        "fix",
        "handle",
        "implement",
        "improve",
        "keep",
        "make",
        "merge",
        "move",
        "refactor",
        "remove",
        "rename",
        "replace",
        "return",
        "run",
        "split",
        "support",
        "test",
        "update",
        "use",
    }
)


def _third_person(word: str) -> bool:
    if word.endswith("ies") and word[:-3] + "y" in _VERBS:
        return True
    if word.endswith("es") and word[:-2] in _VERBS:
        return True
    return word.endswith("s") and word[:-1] in _VERBS


def _first_word_problem(subject: str) -> str | None:
    words = _AREA.sub("", subject, count=1).split()
    if not words:
        return None
    word = re.sub(r"[^a-z]", "", words[0].lower())
    if word in _NOT_INFLECTED:
        return None
    for suffix, instead in (("ed", "Added"), ("ing", "Adding")):
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            return f"subject starts with {words[0]!r}: use the imperative ('Add', not {instead!r})"
    if _third_person(word):
        return f"subject starts with {words[0]!r}: use the imperative ('Add', not 'Adds')"
    return None


def message_lines(text: str) -> list[str]:
    """The message as git will store it: comments and everything below the scissors dropped."""
    lines: list[str] = []
    for line in text.splitlines():
        if line == _SCISSORS:
            break
        if not line.startswith("#"):
            lines.append(line.rstrip())
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def problems(text: str) -> list[str]:
    """Every way ``text`` (a whole commit message) breaks the style; empty when it is fine."""
    lines = message_lines(text)
    if not lines:
        return ["the message is empty"]
    subject = lines[0]
    if _EXEMPT.match(subject):
        return []
    found: list[str] = []
    if len(subject) > MAX_SUBJECT:
        found.append(f"subject is {len(subject)} characters; at most {MAX_SUBJECT}")
    if subject.endswith("."):
        found.append("subject ends with a period")
    word = _first_word_problem(subject)
    if word:
        found.append(word)
    if len(lines) > 1 and lines[1]:
        found.append("no blank line between the subject and the body")
    if not any(line.strip() for line in lines[1:]):
        found.append("no body: say why the change is made")
    return found


def _range_messages(revisions: str) -> list[tuple[str, str]]:
    out = subprocess.run(
        ["git", "log", "--no-merges", "--format=%h%x00%B%x01", revisions],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = []
    for record in out.split("\x01"):
        if "\x00" in record:
            commit, body = record.strip("\n").split("\x00", 1)
            found.append((commit, body))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", type=Path, help="a commit message file")
    source.add_argument("--range", dest="revisions", help="a git revision range (main..HEAD)")
    args = parser.parse_args(argv)
    if args.revisions:
        messages = _range_messages(args.revisions)
    else:
        messages = [(str(args.file), args.file.read_text(encoding="utf-8"))]
    bad = 0
    for name, text in messages:
        found = problems(text)
        bad += bool(found)
        for problem in found:
            print(f"{name}: {problem}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
