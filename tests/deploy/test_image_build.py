"""
The image is built for real in CI: `tox -e image` runs scripts/build-image, which .ci/run calls
after `prepare` (skipping only when podman cannot build at all). Checked here without building:
the wiring, and that the smoke test covers every tool the node plugin runs.
"""

from __future__ import annotations

import configparser
import os
import re

from tests.deploy.test_dockerfile import base_images, instructions
from tests.deploy_support import ROOT


SCRIPT = ROOT / "scripts" / "build-image"
# The executables the node adapters run (adapters/nvme_cli, adapters/mount, adapters/loop).
NODE_TOOLS = (
    "nvme",
    "mkfs.ext4",
    "mkfs.ext3",
    "mkfs.xfs",
    "resize2fs",
    "xfs_growfs",
    "blkid",
    "findmnt",
    "mount",
    "umount",
    "losetup",
)


def _tox() -> configparser.ConfigParser:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    return tox


def test_the_image_env_builds_with_the_script_and_is_not_in_env_list() -> None:
    tox = _tox()
    env = tox["testenv:image"]
    assert env.get("skip_install") == "true"
    assert env["commands"].split() == ["{toxinidir}/scripts/build-image", "build"]
    assert "image" not in [e.strip() for e in tox["tox"]["env_list"].split(",")]
    assert os.access(SCRIPT, os.X_OK)


def test_ci_builds_the_image_and_skips_only_when_podman_cannot_build() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/build-image prepare" in ci
    assert "scripts/test -e image" in ci
    # The skip branch is taken on exit 2 alone; any other failure of prepare fails CI.
    assert re.search(r'if \[ "\$prep" -eq 2 \]; then\n\s+echo "image: SKIPPED', ci)
    text = SCRIPT.read_text()
    assert "exit 2" in text


def test_the_base_is_debian_minbase_of_the_dockerfiles_release() -> None:
    text = SCRIPT.read_text()
    suite = re.search(r"^SUITE=(\w+)$", text, re.MULTILINE)
    assert suite is not None
    assert base_images()[0].endswith(f"-{suite[1]}")
    assert "--variant=minbase" in text
    assert "--isolation chroot" in text
    assert ":/etc/ssl/certs/ca-certificates.crt:ro" in text


def test_the_dockerfile_takes_the_ca_bundle_for_pip() -> None:
    build_stage = [rest for word, rest in instructions() if word == "ARG"]
    assert any(arg.startswith("PIP_CERT") for arg in build_stage)


def test_the_smoke_test_runs_the_cli_and_every_node_tool() -> None:
    text = SCRIPT.read_text()
    for command in ("rds-csi --help", "rds-csi version", "rds-csi doctor --help"):
        assert command in text
    smoke = text[text.index("USER 0") :]
    for tool in NODE_TOOLS:
        assert re.search(rf"(?<![\w.-]){re.escape(tool)}(?![\w.-])", smoke), tool


def test_the_size_is_bounded() -> None:
    limit = re.search(r"MAX_MB=\$\{RDS_CSI_IMAGE_MAX_MB:-(\d+)\}", SCRIPT.read_text())
    assert limit is not None
    assert int(limit[1]) <= 350
