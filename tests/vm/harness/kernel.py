"""The guest kernel: Debian's cloud kernel package, downloaded and unpacked (never installed)."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


# The cloud flavour builds in what a VM needs (virtio, nvme-core, ext4) and ships nvmet-tcp and
# nvme-tcp as modules, in a .deb a third the size of the generic one.
META_PACKAGE = "linux-image-cloud-amd64"
_PACKAGE_RE = re.compile(r"^linux-image-[0-9][0-9a-z.+-]*-cloud-amd64$")
_TIMEOUT = 300
_READY = ".ready"


class KernelUnavailable(Exception):
    """The guest kernel could not be fetched or unpacked."""


@dataclass(frozen=True)
class Kernel:
    """An unpacked kernel package: ``root`` holds ``boot/`` and ``lib/modules/<release>/``."""

    package: str
    root: Path
    release: str

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.release}"

    @property
    def modules(self) -> Path:
        return self.root / "lib" / "modules" / self.release

    @property
    def config(self) -> Path:
        return self.root / "boot" / f"config-{self.release}"


def default_cache() -> Path:
    """``$RDS_CSI_VM_CACHE``, else ``~/.cache/rds-csi-vm`` (shared with ``.ci/run``)."""
    env = os.environ.get("RDS_CSI_VM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "rds-csi-vm"


@contextmanager
def cache_lock(cache: Path) -> Iterator[None]:
    """Serialise preparation between concurrent test runs sharing one cache."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelUnavailable(f"{argv[0]} failed: {exc}") from exc
    if done.returncode != 0:
        raise KernelUnavailable(
            f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done.stdout


def resolve_package(meta: str = META_PACKAGE) -> str:
    """The versioned package ``meta`` depends on, e.g. linux-image-6.1.0-56-cloud-amd64."""
    out = _run(["apt-cache", "depends", "--important", meta])
    for line in out.splitlines():
        name = line.strip().removeprefix("Depends:").strip()
        if _PACKAGE_RE.match(name):
            return name
    raise KernelUnavailable(f"apt-cache found no kernel image behind {meta}: {out.strip()!r}")


def _unpacked(cache: Path) -> list[Path]:
    return sorted(
        (p.parent for p in (cache / "kernels").glob(f"*/{_READY}")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )


def _load(tree: Path) -> Kernel:
    releases = [p.name for p in (tree / "lib" / "modules").iterdir() if p.is_dir()]
    if len(releases) != 1:
        raise KernelUnavailable(f"{tree}: expected one lib/modules/<release>, found {releases}")
    kernel = Kernel(tree.name, tree, releases[0])
    if not kernel.vmlinuz.is_file():
        raise KernelUnavailable(f"{tree}: no {kernel.vmlinuz.name}")
    return kernel


def fetch_kernel(cache: Path, package: str | None = None) -> Kernel:
    """
    The guest kernel, from the cache when it is there (no apt call at all), else downloaded.

    ``package`` (or ``$RDS_CSI_VM_KERNEL_PACKAGE``) pins an image package; without it the newest
    unpacked kernel in the cache is used, or the one ``linux-image-cloud-amd64`` points at.

    Raises:
        KernelUnavailable: apt could not resolve or download the package, or it did not unpack
            into a kernel and modules.
    """
    package = package or os.environ.get("RDS_CSI_VM_KERNEL_PACKAGE") or None
    if package is not None and not _PACKAGE_RE.match(package):
        raise KernelUnavailable(
            f"kernel package {package!r} is not a linux-image-*-cloud-amd64 name"
        )
    with cache_lock(cache):
        ready = _unpacked(cache)
        if package is None and ready:
            return _load(ready[0])
        if package is not None and (cache / "kernels" / package / _READY).exists():
            return _load(cache / "kernels" / package)
        package = package or resolve_package()
        (cache / "kernels").mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache / "kernels", prefix=".fetch-") as tmp:
            work = Path(tmp)
            _run(["apt-get", "download", "-q", package], cwd=work)
            debs = list(work.glob("*.deb"))
            if len(debs) != 1:
                raise KernelUnavailable(f"apt-get download {package} left {debs}")
            tree = work / "tree"
            _run(["dpkg-deb", "-x", str(debs[0]), str(tree)])
            # Dependency lists for the whole module tree: the initramfs picks its closure.
            release = _load(tree).release
            _run(["depmod", "-b", str(tree), release])
            (tree / _READY).write_text(debs[0].name + "\n")
            final = cache / "kernels" / package
            if final.exists():
                shutil.rmtree(final)
            tree.rename(final)
        return _load(final)
