"""No merge conflict marker survives in a tracked text file (one was once committed in docs)."""

from __future__ import annotations

import os
import re
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
_MARKER = re.compile(r"^(<{7}|>{7}|={7})( |$)", re.MULTILINE)
_TEXT = {".py", ".md", ".yaml", ".yml", ".ini", ".toml", ".txt", ".json", ".cfg", ".tpl"}
_SKIP = {".git", ".tox", ".venv", "venv", "node_modules", "__pycache__", "build", "dist"}


def _text_files() -> list[Path]:
    found: list[Path] = []
    for top, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in _SKIP and not d.startswith(".tox")]
        for name in names:
            path = Path(top, name)
            if path.suffix in _TEXT or name in {"Dockerfile", "run"}:
                found.append(path)
    return found


def test_no_file_holds_a_conflict_marker() -> None:
    files = _text_files()
    assert len(files) > 50  # the walk found the tree
    marked = [
        str(p.relative_to(ROOT)) for p in files if _MARKER.search(p.read_text("utf-8", "replace"))
    ]
    assert marked == []
