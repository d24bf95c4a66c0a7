"""The VM harness's host-side pieces that need no guest (so they run in every tier)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.vm.harness import GuestRun, job_script, read_junit
from tests.vm.harness.initramfs import CpioWriter
from tests.vm.harness.shares import mount_point_of, parse_mount_points, plan_shares


def _read_newc(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """name -> (mode, data, (rdevmajor, rdevminor)), parsed independently of the writer."""
    entries: dict[str, tuple[int, bytes, tuple[int, int]]] = {}
    pos = 0
    while True:
        assert data[pos : pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rmaj, rmin, namesize = fields[1], fields[6], fields[9], fields[10], fields[11]
        name = data[pos + 110 : pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos : pos + size]
        pos += size
        pos += -pos % 4
        if name == "TRAILER!!!":
            assert pos == len(data)
            return entries
        entries[name] = (mode, body, (rmaj, rmin))


def _archive() -> bytes:
    cpio = CpioWriter()
    cpio.directory("bin")
    cpio.file("bin/tool", b"#!/bin/sh\necho hi\n", 0o755)
    cpio.symlink("bin/alias", "tool")
    cpio.char_device("console", 5, 1)
    cpio.file("odd", b"x" * 5)  # forces padding after the data
    return cpio.finish()


class TestCpioWriter:
    def test_entries_round_trip_with_types_modes_and_padding(self) -> None:
        entries = _read_newc(_archive())
        assert entries["bin"][0] == stat.S_IFDIR | 0o755
        assert entries["bin/tool"] == (stat.S_IFREG | 0o755, b"#!/bin/sh\necho hi\n", (0, 0))
        assert entries["bin/alias"] == (stat.S_IFLNK | 0o777, b"tool", (0, 0))
        assert entries["console"] == (stat.S_IFCHR | 0o600, b"", (5, 1))
        assert entries["odd"][1] == b"xxxxx"

    def test_the_same_inputs_give_the_same_bytes(self) -> None:
        assert _archive() == _archive()

    def test_busybox_cpio_unpacks_it(self, tmp_path: Path) -> None:
        busybox = shutil.which("busybox")
        if busybox is None:
            pytest.skip("no busybox here (the VM harness installs busybox-static)")
        archive = tmp_path / "a.cpio"
        archive.write_bytes(_archive())
        out = tmp_path / "out"
        out.mkdir()
        with archive.open("rb") as f:
            subprocess.run(
                [busybox, "cpio", "-i", "-d"], stdin=f, cwd=out, check=True, timeout=30,
                capture_output=True,
            )  # fmt: skip
        assert (out / "bin" / "tool").read_bytes() == b"#!/bin/sh\necho hi\n"
        assert (out / "bin" / "alias").readlink() == Path("tool")


class TestJobScript:
    def test_argv_env_and_cwd_survive_the_shell_exactly(self, tmp_path: Path) -> None:
        tricky = ["it's", 'say "hi"', "$(touch pwned)", "a b\nc", "*", ""]
        env = {"PATH": os.environ["PATH"], "ODD": "x'y $HOME `z`", "EMPTY": ""}
        show = (
            "import os, sys, json; print(json.dumps([sys.argv[1:], os.getcwd(), "
            "os.environ['ODD'], os.environ['EMPTY'], sorted(os.environ)]))"
        )
        argv = [sys.executable, "-c", show, *tricky]
        script = tmp_path / "job.sh"
        script.write_text(job_script(argv, tmp_path, env))
        done = subprocess.run(
            ["/bin/sh", str(script)], capture_output=True, text=True, timeout=30, check=True,
            cwd="/",
        )  # fmt: skip
        args, cwd, odd, empty, names = json.loads(done.stdout)
        assert (args, cwd, odd, empty) == (tricky, str(tmp_path), env["ODD"], "")
        assert {"PATH", "ODD", "EMPTY"} <= set(names)
        assert "HOME" not in names  # the environment is exactly what was given
        assert not (tmp_path / "pwned").exists()

    def test_a_missing_cwd_fails_instead_of_running_elsewhere(self, tmp_path: Path) -> None:
        script = tmp_path / "job.sh"
        script.write_text(job_script(["/bin/true"], tmp_path / "absent", {}))
        done = subprocess.run(
            ["/bin/sh", str(script)], capture_output=True, timeout=30, check=False
        )
        assert done.returncode == 125


def _run(**changes: object) -> GuestRun:
    base: dict[str, object] = {
        "argv": ("python", "-m", "pytest"),
        "exit_status": 0,
        "output": "",
        "console": "@@rdsvm init uptime=1.0\n",
        "job_dir": Path("/tmp/job"),
        "console_path": Path("/tmp/console.log"),
        "wall_seconds": 12.0,
        "timed_out": False,
        "qemu_returncode": 0,
    }
    base.update(changes)
    return GuestRun(**base)  # type: ignore[arg-type]


class TestFailureReport:
    def test_only_a_reported_zero_is_ok(self) -> None:
        assert _run().ok
        assert not _run(exit_status=1).ok
        assert not _run(exit_status=None).ok

    def test_a_timeout_names_the_bound_and_attaches_the_console_tail(self) -> None:
        lines = "\n".join(f"line {i}" for i in range(400))
        report = _run(
            exit_status=None, timed_out=True, console=lines, wall_seconds=420.0
        ).failure_report()
        assert "did not finish within its time bound (420 s)" in report
        assert "line 399" in report
        assert "line 100\n" not in report  # only the tail
        assert "/tmp/console.log" in report

    def test_a_panic_is_named(self) -> None:
        console = "[ 9.1] Kernel panic - not syncing: sysrq triggered crash\n"
        report = _run(exit_status=None, console=console).failure_report()
        assert "stopped without reporting an exit status" in report
        assert "'Kernel panic'" in report


def test_read_junit_reads_what_pytest_writes(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n"
        "def test_ok(): pass\n"
        "def test_bad(): assert 1 == 2, 'boom'\n"
        "def test_skip(): pytest.skip('not here')\n"
    )
    junit = tmp_path / "junit.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_sample.py")],
        capture_output=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    report = read_junit(junit)
    assert report is not None
    outcomes = {c.name.split("::")[-1]: c.outcome for c in report.cases}
    assert outcomes == {"test_ok": "passed", "test_bad": "failed", "test_skip": "skipped"}
    assert "boom" in report.by_outcome("failed")[0].message
    assert report.summary() == "1 passed, 1 failed, 1 skipped"
    assert read_junit(tmp_path / "absent.xml") is None


class TestShares:
    """Which host directories the guest gets besides the root filesystem."""

    def test_mount_points_are_read_with_their_escapes(self) -> None:
        text = (
            "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
            "40 22 0:35 / /tmp rw,nosuid shared:2 - tmpfs tmpfs rw\n"
            "41 22 0:36 / /srv/my\\040clone rw - xfs /dev/vdb rw\n"
        )
        points = parse_mount_points(text)
        assert points == ["/", "/tmp", "/srv/my clone"]
        assert mount_point_of("/srv/my clone/.tox", points) == "/srv/my clone"
        assert mount_point_of("/srv/my", points) == "/"
        assert mount_point_of("/tmpfoo", points) == "/"

    def test_only_what_the_root_share_does_not_show_is_shared(self, tmp_path: Path) -> None:
        plain, hidden, data = tmp_path / "plain", tmp_path / "hidden", tmp_path / "data"
        clone = hidden / "clone"
        venv = clone / ".tox" / "e2e-nvme"
        nested = clone / "mnt"
        other_venv = data / "venv"
        for d in (plain, venv, nested, other_venv):
            d.mkdir(parents=True)
        mounts = ["/", str(data), str(nested)]
        shares = plan_shares(
            [plain, venv, clone, other_venv, nested, tmp_path / "absent", Path("/")],
            mounts,
            hidden=(str(hidden),),
        )
        # The clone under a hidden directory holds its venv (same mount); a mount inside it
        # is not in a non-recursive bind, so it is shared on its own; so is another mount.
        assert shares == [data / "venv", clone, nested]

    def test_a_path_through_a_symlink_is_shared_where_it_really_is(self, tmp_path: Path) -> None:
        real = tmp_path / "hidden" / "prefix"
        real.mkdir(parents=True)
        link = tmp_path / "link"
        link.symlink_to(real)
        assert plan_shares([link], ["/"], hidden=(str(tmp_path / "hidden"),)) == [real]
