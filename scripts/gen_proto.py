"""Regenerate the CSI Python stubs from src/rds_csi/entrypoints/csi/_pb/csi.proto.

Usage:
    python scripts/gen_proto.py            # rewrite the committed stubs under src/
    python scripts/gen_proto.py --check    # exit 1 if the committed stubs are stale
    python scripts/gen_proto.py --out DIR  # write DIR/rds_csi/entrypoints/csi/_pb/*

Needs the grpcio-tools and mypy-protobuf versions pinned in pyproject's `dev` extra: the output
embeds their versions, so other versions produce different (but equivalent) files.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
PB_PACKAGE = Path("rds_csi/entrypoints/csi/_pb")
PROTO = SRC / PB_PACKAGE / "csi.proto"
OUTPUTS = ("csi_pb2.py", "csi_pb2.pyi", "csi_pb2_grpc.py", "csi_pb2_grpc.pyi")


def _plugin(name: str) -> str:
    """Find a protoc plugin installed beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        sys.exit(f"{name} not found: install the dev extra (mypy-protobuf)")
    return found


def generate(out_root: Path) -> list[Path]:
    """Compile csi.proto into out_root/<package path>/ and return the four generated files."""
    well_known = resources.files("grpc_tools") / "_proto"
    out_root.mkdir(parents=True, exist_ok=True)
    out = str(out_root)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={SRC}",
            f"--proto_path={well_known}",
            f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
            f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--mypy_out=quiet:{out}",
            f"--mypy_grpc_out=quiet:{out}",
            str(PROTO),
        ],
        check=True,
    )
    return [out_root / PB_PACKAGE / name for name in OUTPUTS]


def _same(fresh: Path, committed: Path) -> bool:
    return committed.is_file() and filecmp.cmp(fresh, committed, shallow=False)


def main() -> int:
    parser = argparse.ArgumentParser(description="Regenerate the CSI Python stubs.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--out", type=Path, help="write under this directory instead of src/")
    group.add_argument("--check", action="store_true", help="compare with the committed stubs")
    args = parser.parse_args()

    if args.out is not None:
        generate(args.out)
        return 0
    if not args.check:
        generate(SRC)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        stale = [
            fresh.name
            for fresh in generate(Path(tmp))
            if not _same(fresh, SRC / PB_PACKAGE / fresh.name)
        ]
    if stale:
        print(f"stale generated stubs: {', '.join(stale)}; run scripts/gen_proto.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
