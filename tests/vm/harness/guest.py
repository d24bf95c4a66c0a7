"""Boot the test guest under qemu (TCG), run one command in it, and bring the result back."""

from __future__ import annotations

import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.vm.harness.host import HostTools, HostToolsUnavailable, ensure_host_tools
from tests.vm.harness.initramfs import build_initramfs
from tests.vm.harness.kernel import Kernel, KernelUnavailable, default_cache, fetch_kernel
from tests.vm.harness.report import JunitReport, read_junit
from tests.vm.harness.shares import interpreter_paths, parse_mount_points, plan_shares


# The kernel NVMe/TCP target and initiator, and the block/filesystem modules the node tests use.
# Loaded in the guest with the host's modprobe from the kernel package's full module tree.
NVME_MODULES = ("configfs", "nvmet", "nvmet-tcp", "nvme-fabrics", "nvme-tcp", "loop", "xfs")

REPO = Path(__file__).resolve().parents[3]

# bookworm's qemu-system-common ships the C virtiofsd here.
VIRTIOFSD = Path("/usr/lib/qemu/virtiofsd")

# Paths end up in qemu options (comma-separated) and on the kernel command line (space-separated).
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+-]*$")
_MARK = re.compile(r"^@@rdsvm (?P<what>.*) uptime=(?P<uptime>[0-9.]+)\s*$", re.MULTILINE)
_PANIC = re.compile(r"Kernel panic|BUG: |Oops: |watchdog: BUG|blocked for more than", re.MULTILINE)
_SOCKET_WAIT = 10.0
STATUS_FILE = ".rdsvm-exit-status"
_CONSOLE_TAIL = 150

# Mount a host directory ("/" for the root filesystem; a non-recursive bind skips /proc, /sys and
# any other mount below it) read-only in a private mount namespace, and serve that to the guest.
# The guest mounts it read-only as well; the two together mean a guest can never write to it.
_READONLY_SHARE = (
    'mount --bind "$4" "$1" && mount -o remount,bind,ro "$1" && '
    'exec "$2" --socket-path="$3" -o source="$1" -o cache=always -o sandbox=namespace'
)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it if the harness dies (SIGTERM, pytest killed...)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class GuestUnavailable(Exception):
    """The guest cannot be built or booted on this host (the message says why)."""


@dataclass(frozen=True)
class GuestImage:
    """Everything a boot needs, prepared on the host (and cached)."""

    tools: HostTools
    kernel: Kernel
    initramfs: Path
    virtiofsd: Path
    prep_seconds: float


@dataclass(frozen=True)
class GuestConfig:
    memory_mb: int = 1024
    cpus: int = 2
    cpu_model: str = "max"
    timeout: float = 420.0
    modules: tuple[str, ...] = NVME_MODULES


@dataclass(frozen=True)
class GuestRun:
    """
    The outcome of one boot.

    Attributes:
        exit_status: The command's exit status, as the guest wrote it after the command ended;
            None when the guest never got that far (hang, panic, stage-1 failure).
        output: The command's stdout and stderr, interleaved.
        console: The whole serial console (kernel messages, stage-1 markers, the output).
        job_dir: Shared with the guest read-write at the same path; the command may leave
            files here (e.g. a JUnit report) for the host to read.
        marks: Stage-1 markers and the guest uptime at each (``init``, ``ready``, ``job-exit``).
    """

    argv: tuple[str, ...]
    exit_status: int | None
    output: str
    console: str
    job_dir: Path
    console_path: Path
    wall_seconds: float
    timed_out: bool
    qemu_returncode: int | None
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def failure_report(self) -> str:
        """Why this run is not a pass, with the end of the console attached."""
        if self.timed_out:
            why = f"the guest did not finish within its time bound ({self.wall_seconds:.0f} s)"
        elif self.exit_status is None:
            panic = _PANIC.search(self.console)
            why = "the guest stopped without reporting an exit status" + (
                f" (console shows {panic.group(0)!r})" if panic else ""
            )
        else:
            why = f"the command exited {self.exit_status}"
        tail = "\n".join(self.console.splitlines()[-_CONSOLE_TAIL:])
        return (
            f"{why}: {shlex.join(self.argv)}\n"
            f"qemu exit status: {self.qemu_returncode}; full console: {self.console_path}\n"
            f"---- last {_CONSOLE_TAIL} console lines ----\n{tail}"
        )


def prepare(cache: Path | None = None, *, install: bool = True) -> GuestImage:
    """
    Host tools, kernel and initramfs: quick when cached, a few seconds plus downloads when not.

    Raises:
        HostToolsUnavailable: qemu (or another tool) is missing and could not be installed.
        GuestUnavailable: the kernel or initramfs could not be made.
    """
    started = time.monotonic()
    cache = cache or default_cache()
    if os.geteuid() != 0:
        raise HostToolsUnavailable("the VM harness needs root (virtiofsd, a read-only bind of /)")
    tools = ensure_host_tools(install=install)
    if not VIRTIOFSD.exists():
        raise HostToolsUnavailable(f"{VIRTIOFSD} missing (qemu-system-common from bookworm has it)")
    try:
        kernel = fetch_kernel(cache)
        initramfs = build_initramfs(kernel, tools.busybox, cache)
    except (KernelUnavailable, OSError, subprocess.SubprocessError) as exc:
        raise GuestUnavailable(f"preparing the guest failed: {exc}") from exc
    return GuestImage(tools, kernel, initramfs, VIRTIOFSD, time.monotonic() - started)


def _check_path(path: Path, what: str) -> str:
    text = str(path)
    if not _SAFE_PATH.match(text):
        raise GuestUnavailable(f"{what} {text!r} must match {_SAFE_PATH.pattern} (qemu/cmdline)")
    return text


def job_script(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
    """The shell script the guest runs in its chroot: a clean environment, then exec argv."""
    assignments = [shlex.quote(f"{k}={v}") for k, v in sorted(env.items())]
    return (
        f"cd {shlex.quote(str(cwd))} || exit 125\n"
        f"exec env -i {' '.join(assignments)} {shlex.join(argv)} < /dev/null\n"
    )


def guest_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The guest command's base environment; ``extra`` adds or overrides."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "RDS_CSI_VM_GUEST": "1",
    }
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class _Share:
    tag: str
    source: Path  # the host directory ("/" for the root)
    readonly: bool = True


def _share_daemon(image: GuestImage, share: _Share, sockets: Path) -> list[str]:
    socket = sockets / f"{share.tag}.sock"
    if not share.readonly:
        return [
            str(image.virtiofsd),
            f"--socket-path={socket}",
            "-o", f"source={share.source}",
            "-o", "cache=none",
            "-o", "sandbox=namespace",
        ]  # fmt: skip
    mnt = sockets / share.tag
    mnt.mkdir()
    return [
        "unshare", "--mount", "--propagation", "private", "--",
        "/bin/sh", "-c", _READONLY_SHARE, "sh",
        str(mnt), str(image.virtiofsd), str(socket), str(share.source),
    ]  # fmt: skip


@contextmanager
def _virtiofsd(
    image: GuestImage, sockets: Path, logs: Path, shares: Sequence[_Share]
) -> Iterator[list[Path]]:
    """One virtiofsd per share; yields their sockets, in the order of ``shares``."""
    daemons: list[subprocess.Popen[bytes]] = []
    paths = [sockets / f"{share.tag}.sock" for share in shares]
    log_files = [logs / f"virtiofsd-{share.tag}.log" for share in shares]
    try:
        for share, log_path in zip(shares, log_files, strict=True):
            with log_path.open("wb") as log:
                daemons.append(
                    subprocess.Popen(
                        _share_daemon(image, share, sockets),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        preexec_fn=_die_with_parent,  # noqa: PLW1509 - single-threaded harness
                    )
                )
        deadline = time.monotonic() + _SOCKET_WAIT
        while not all(p.exists() for p in paths):
            dead = [d for d in daemons if d.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise GuestUnavailable(
                    f"virtiofsd did not start (see {logs}/virtiofsd-*.log): "
                    + "".join(f.read_text(errors="replace")[-1000:] for f in log_files)
                )
            time.sleep(0.02)
        yield paths
    finally:
        for d in daemons:
            if d.poll() is None:
                d.terminate()
        for d in daemons:
            try:
                d.wait(timeout=10)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait()


def _qemu_argv(  # noqa: PLR0917 - one private caller
    image: GuestImage,
    config: GuestConfig,
    shares: Sequence[_Share],
    sockets: list[Path],
    console: Path,
    job_dir: Path,
) -> list[str]:
    mem = f"{config.memory_mb}M"
    devices = []
    for share, socket in zip(shares, sockets, strict=True):
        devices += [
            "-chardev", f"socket,id=fs{share.tag},path={_check_path(socket, 'socket')}",
            "-device", f"vhost-user-fs-pci,chardev=fs{share.tag},tag={share.tag}",
        ]  # fmt: skip
    return [
        str(image.tools.qemu),
        "-accel", "tcg",
        "-cpu", config.cpu_model,
        "-machine", "pc,memory-backend=mem",
        "-object", f"memory-backend-memfd,id=mem,size={mem},share=on",
        "-m", mem,
        "-smp", str(config.cpus),
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-serial", f"file:{_check_path(console, 'console log')}",
        "-kernel", _check_path(image.kernel.vmlinuz, "kernel"),
        "-initrd", _check_path(image.initramfs, "initramfs"),
        "-append", f"console=ttyS0 panic=-1 quiet rdsvm.job={_check_path(job_dir, 'job dir')}",
        *devices,
    ]  # fmt: skip


def guest_shares(
    image: GuestImage, argv: Sequence[str], cwd: Path, env: Mapping[str, str], extra: Sequence[Path]
) -> list[Path]:
    """
    Host directories the guest command needs that the root share does not show it: the
    checkout and ``cwd``, the interpreters (this one, and ``argv[0]``'s when it is a path),
    ``PYTHONPATH``, the kernel's module tree, and ``extra``. See ``shares.py``.
    """
    wanted = [REPO, cwd, image.kernel.modules, *interpreter_paths(argv[0] if argv else None)]
    wanted += [Path(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    wanted += extra
    mount_points = parse_mount_points(Path("/proc/self/mountinfo").read_text())
    return plan_shares(wanted, mount_points)


def run_in_guest(
    image: GuestImage,
    argv: Sequence[str],
    *,
    run_dir: Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    config: GuestConfig | None = None,
    share: Sequence[Path] = (),
) -> GuestRun:
    """
    Boot a fresh guest, run ``argv`` in ``cwd`` as root, power off, report.

    The guest sees the host's root filesystem; the checkout, ``cwd``, the interpreters and
    ``share`` are shared besides when they live elsewhere (another mount, or under ``/tmp``,
    which the guest mounts afresh), so a clone anywhere runs as it does here.

    ``run_dir`` (empty or absent) receives ``console.log``, the virtiofsd logs and ``job/``, the
    directory shared with the guest. Never raises for what happens inside the guest: a hang, a
    panic or a failing command all come back as a :class:`GuestRun` that is not ``ok``.

    Raises:
        GuestUnavailable: the host could not start the guest at all (virtiofsd, qemu).
    """
    config = config or GuestConfig()
    run_dir.mkdir(parents=True, exist_ok=True)
    job_dir = run_dir / "job"
    job_dir.mkdir()
    console = run_dir / "console.log"
    command_env = guest_env({"RDS_CSI_VM_JOB_DIR": str(job_dir), **(env or {})})
    extra = [
        _Share(f"x{i}", Path(_check_path(p, "shared directory")))
        for i, p in enumerate(guest_shares(image, argv, cwd, command_env, share))
    ]
    shares = [_Share("hostroot", Path("/")), _Share("results", job_dir, readonly=False), *extra]
    listed = " ".join(f"{s.tag}={s.source}" for s in extra)
    (job_dir / "stage1.conf").write_text(
        f"RDSVM_MODULES_DIR={shlex.quote(_check_path(image.kernel.modules, 'module tree'))}\n"
        f"RDSVM_LOAD={shlex.quote(' '.join(config.modules))}\n"
        f"RDSVM_SHARES={shlex.quote(listed)}\n"
    )
    (job_dir / "job.sh").write_text(job_script(argv, cwd, command_env))
    sockets = Path(tempfile.mkdtemp(prefix="rdsvm-"))  # AF_UNIX paths must stay short
    started = time.monotonic()
    timed_out = False
    try:
        with _virtiofsd(image, sockets, run_dir, shares) as socks:
            qemu_log = run_dir / "qemu.log"
            with qemu_log.open("wb") as log:
                proc = subprocess.Popen(
                    _qemu_argv(image, config, shares, socks, console, job_dir),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509 - single-threaded harness
                )
                try:
                    proc.wait(timeout=config.timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                finally:  # also on KeyboardInterrupt or pytest-timeout: never leave qemu behind
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
    except OSError as exc:
        raise GuestUnavailable(f"could not start the guest: {exc}") from exc
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    wall = time.monotonic() - started
    text = console.read_text(errors="replace") if console.exists() else ""
    qemu_out = (run_dir / "qemu.log").read_text(errors="replace")
    if qemu_out.strip():
        text += f"\n---- qemu's own output ----\n{qemu_out}"
    # The status counts only when stage 1's file and its console marker agree: a command that
    # printed or wrote a fake one and then hung or crashed the kernel cannot pass for a success.
    status_file = job_dir / STATUS_FILE
    said = status_file.read_text().strip() if status_file.exists() else ""
    marked = [m["what"] for m in _MARK.finditer(text) if m["what"].startswith("job-exit ")]
    status = (
        int(said) if said.isdigit() and marked and marked[-1] == f"job-exit status={said}" else None
    )
    output_file = job_dir / "output.log"
    output = output_file.read_text(errors="replace") if output_file.exists() else ""
    marks = {m["what"].split()[0]: float(m["uptime"]) for m in _MARK.finditer(text)}
    return GuestRun(
        argv=tuple(argv),
        exit_status=None if timed_out else status,
        output=output,
        console=text,
        job_dir=job_dir,
        console_path=console,
        wall_seconds=wall,
        timed_out=timed_out,
        qemu_returncode=proc.returncode if not timed_out else None,
        marks=marks,
    )


def run_pytest_in_guest(
    image: GuestImage,
    paths: Sequence[str],
    *,
    run_dir: Path,
    args: Sequence[str] = (),
    config: GuestConfig | None = None,
) -> tuple[GuestRun, JunitReport | None]:
    """
    Run pytest on ``paths`` (relative to the checkout) in a fresh guest with this interpreter.

    The guest sees the same interpreter, site-packages and checkout, so ``sys.executable`` works
    there as it does here; ``PYTHONPATH`` is passed on when set. The JUnit report comes back
    through the shared job directory (None when the guest never wrote it).
    """
    junit = run_dir / "job" / "junit.xml"
    argv = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v",
        f"--junitxml={junit}", *args, *paths,
    ]  # fmt: skip
    # Bytecode goes to the guest's tmpfs overlay: later processes in the same boot (the driver,
    # the emulator) reuse what pytest compiled, and the host checkout stays untouched.
    env = {}
    if os.environ.get("PYTHONPATH"):
        # The guest starts in the checkout, not in our cwd: make the entries absolute.
        entries = os.environ["PYTHONPATH"].split(os.pathsep)
        env["PYTHONPATH"] = os.pathsep.join(str(Path(e).resolve()) for e in entries if e)
    run = run_in_guest(image, argv, run_dir=run_dir, cwd=REPO, env=env, config=config)
    return run, read_junit(junit)
