"""The guest's initramfs: busybox, the few modules needed to reach the host's root, and /init."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
from collections.abc import Iterable
from pathlib import Path

from tests.vm.harness.kernel import Kernel, cache_lock


# In dependency order: what stage 1 needs to mount the host's root (virtio-fs) and put a tmpfs
# overlay on it. Everything else (nvmet, nvme-tcp, loop, xfs...) is loaded later with the host's
# modprobe from the full module tree, so the initramfs rarely changes.
STAGE1_MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "fuse",
    "virtiofs",
    "overlay",
)
INIT_SCRIPT = Path(__file__).with_name("init.sh")

_NEWC_MAGIC = b"070701"


class CpioWriter:
    """A minimal ``newc`` archive writer: the format the kernel unpacks into its initial rootfs."""

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self._ino = 0

    def _entry(
        self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
    ) -> None:
        self._ino += 1
        encoded = name.encode() + b"\0"
        fields = (
            self._ino,
            mode,
            0,  # uid
            0,  # gid
            2 if stat.S_ISDIR(mode) else 1,
            0,  # mtime: fixed, so the same inputs give the same bytes
            len(data),
            0,
            0,
            rdev[0],
            rdev[1],
            len(encoded),
            0,  # check
        )
        self._out.write(_NEWC_MAGIC + b"".join(b"%08x" % f for f in fields))
        self._out.write(encoded)
        self._pad()
        self._out.write(data)
        self._pad()

    def _pad(self) -> None:
        self._out.write(b"\0" * (-self._out.tell() % 4))

    def directory(self, name: str, perm: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | perm)

    def file(self, name: str, data: bytes, perm: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | perm, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, perm: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self._out.getvalue()


def module_paths(kernel: Kernel, names: Iterable[str]) -> list[Path]:
    """The .ko files for ``names`` (module names, ``-`` or ``_``), via the kernel's modules.dep."""
    by_name = {}
    for line in (kernel.modules / "modules.dep").read_text().splitlines():
        rel = line.split(":", 1)[0]
        by_name[Path(rel).name.removesuffix(".ko").replace("-", "_")] = kernel.modules / rel
    paths = []
    for name in names:
        key = name.replace("-", "_")
        if key not in by_name:
            raise FileNotFoundError(f"module {name} is not in {kernel.modules}/modules.dep")
        paths.append(by_name[key])
    return paths


def _busybox_applets(busybox: Path) -> list[str]:
    out = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return sorted(set(out.split()))


def build_initramfs(kernel: Kernel, busybox: Path, cache: Path) -> Path:
    """
    An uncompressed newc initramfs for ``kernel``, cached by the hash of everything in it.

    Uncompressed because TCG makes the kernel's gunzip cost more than reading a few MB more.
    """
    init = INIT_SCRIPT.read_bytes()
    modules = module_paths(kernel, STAGE1_MODULES)
    bb = busybox.read_bytes()
    digest = hashlib.sha256()
    for part in (init, bb, kernel.release.encode(), *(m.read_bytes() for m in modules)):
        digest.update(hashlib.sha256(part).digest())
    target = cache / "initramfs" / f"{kernel.release}-{digest.hexdigest()[:16]}.cpio"
    with cache_lock(cache):
        if target.exists():
            return target
        cpio = CpioWriter()
        for d in ("bin", "dev", "proc", "sys", "tmp", "lower", "rw", "newroot", "lib", "etc"):
            cpio.directory(d)
        # The kernel opens /dev/console for PID 1 before /init can mount devtmpfs.
        cpio.char_device("dev/console", 5, 1)
        cpio.file("bin/busybox", bb, 0o755)
        for applet in _busybox_applets(busybox):
            if applet != "busybox":
                cpio.symlink(f"bin/{applet}", "busybox")
        cpio.directory("lib/modules")
        for m in modules:
            cpio.file(f"lib/modules/{m.name}", m.read_bytes())
        cpio.file("etc/stage1-modules", "".join(f"{m.name}\n" for m in modules).encode())
        cpio.file("init", init, 0o755)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(cpio.finish())
        tmp.rename(target)
        for stale in target.parent.glob(f"{kernel.release}-*.cpio"):
            if stale != target:  # a boot that has it open keeps reading it
                stale.unlink()
        return target
