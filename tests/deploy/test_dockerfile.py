"""
The Dockerfile, checked without Docker: what it installs exists, what it copies is in the build
context, and the image fits the roles the manifests give it.
"""

from __future__ import annotations

import pathlib
import re
import shlex
import shutil
import subprocess
import tomllib

import pytest

from tests.deploy_support import ROOT, driver_container, manifest_objects, one


DOCKERFILE = ROOT / "Dockerfile"
# What the node plugin runs: nvme, mkfs.ext4/resize2fs, mkfs.xfs/xfs_growfs, blkid/findmnt/lsblk,
# mount/umount.
NEEDED_PACKAGES = {"nvme-cli", "e2fsprogs", "xfsprogs", "util-linux", "mount"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        pending += raw.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        lines.append(pending)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    result = []
    for line in lines:
        word, _, rest = line.strip().partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def _args() -> dict[str, str]:
    return dict(
        rest.split("=", 1) for word, rest in instructions() if word == "ARG" and "=" in rest
    )


def base_images() -> list[str]:
    args = _args()
    images = []
    for word, rest in instructions():
        if word == "FROM":
            image = rest.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], image))
    return images


def apt_packages() -> list[str]:
    packages: list[str] = []
    for word, rest in instructions():
        if word == "RUN" and "apt-get install" in rest:
            for command in rest.split("&&"):
                tokens = shlex.split(command)
                if tokens[:2] == ["apt-get", "install"]:
                    packages += [t for t in tokens[2:] if not t.startswith("-")]
    return packages


def test_the_image_is_multi_stage_on_a_pinned_python_slim_base() -> None:
    images = base_images()
    assert len(images) >= 2
    for image in images:
        assert re.fullmatch(r"python:3\.1[1-9]-slim-[a-z]+", image), image
    assert len(set(images)) == 1, "build and runtime stages share one base"


def test_the_node_tools_are_installed_without_extras() -> None:
    packages = apt_packages()
    assert set(packages) >= NEEDED_PACKAGES
    install = next(
        rest for word, rest in instructions() if word == "RUN" and "apt-get install" in rest
    )
    assert "--no-install-recommends" in install
    assert "rm -rf /var/lib/apt/lists/*" in install


def _apt_known(packages: list[str]) -> set[str]:
    """Which of ``packages`` the machine's apt lists have (one apt-cache call)."""
    done = subprocess.run(
        ["apt-cache", "show", "--no-all-versions", *packages],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return set(re.findall(r"^Package: (\S+)$", done.stdout, re.MULTILINE)) & set(packages)


def test_every_apt_package_exists_in_the_base_images_release() -> None:
    if shutil.which("apt-cache") is None:
        pytest.skip("no apt-cache on this machine to look the packages up")
    codename = base_images()[0].rsplit("-", 1)[-1]
    os_release = pathlib.Path("/etc/os-release")
    text = os_release.read_text() if os_release.exists() else ""
    here = re.search(r"^VERSION_CODENAME=(\w+)", text, re.MULTILINE)
    if here is None or here[1] != codename:
        pytest.skip(f"this machine's apt lists are not Debian {codename}'s, the image's base")
    packages = apt_packages()
    known = _apt_known(["bash", *packages])
    if "bash" not in known:
        pytest.skip("apt has no package lists here (run apt-get update)")
    assert set(packages) - known == set()


def test_no_healthcheck_kubernetes_probes_instead() -> None:
    assert "HEALTHCHECK" not in {word for word, _ in instructions()}


def test_the_image_runs_the_package_script_as_the_controllers_user() -> None:
    final = instructions()
    user = [rest for word, rest in final if word == "USER"][-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "a numeric USER lets Kubernetes verify runAsNonRoot"
    assert int(uid) != 0
    pod = one(manifest_objects(), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid)
    assert pod["securityContext"]["runAsGroup"] == int(gid or uid)
    entrypoint = [rest for word, rest in final if word == "ENTRYPOINT"][-1]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == f'["{next(iter(scripts))}"]'
    assert f"useradd --system --uid {uid}" in " ".join(
        rest for word, rest in final if word == "RUN"
    )


def test_the_node_plugin_overrides_the_images_user_with_root() -> None:
    driver = driver_container(one(manifest_objects(), "DaemonSet"))
    assert driver["securityContext"]["runAsUser"] == 0


def _ignore_rules() -> list[tuple[bool, str]]:
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, line.lstrip("!").rstrip("/")))
    return rules


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: Go's filepath.Match, plus ``**`` across directories."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def in_build_context(path: str) -> bool:
    """Docker's rule: the last matching pattern decides; a match on a parent directory counts."""
    parts = pathlib.PurePosixPath(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negated, pattern in _ignore_rules():
        if any(_pattern(pattern).fullmatch(c) for c in candidates):
            included = negated
    return included


def copied_sources() -> list[str]:
    sources = []
    for word, rest in instructions():
        if word == "COPY" and "--from" not in rest:
            sources += rest.split()[:-1]
    return sources


def test_everything_copied_exists_and_is_in_the_build_context() -> None:
    sources = copied_sources()
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert in_build_context(source.rstrip("/")), f"{source} is excluded by .dockerignore"


def test_the_build_context_holds_what_the_wheel_build_reads() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = [
        "pyproject.toml",
        project["project"]["readme"],
        project["tool"]["hatch"]["version"]["path"],
        *project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"],
    ]
    copied = [s.rstrip("/") for s in copied_sources()]
    for path in needed:
        assert any(path == c or path.startswith(c + "/") for c in copied), path
        assert in_build_context(path), path


def test_the_dockerignore_keeps_caches_out() -> None:
    assert not in_build_context("src/rds_csi/__pycache__/x.cpython-311.pyc")
    assert not in_build_context("tests/unit/test_x.py")
    assert not in_build_context(".git/config")
    assert in_build_context("src/rds_csi/domain/model.py")
