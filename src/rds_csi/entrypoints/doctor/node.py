"""
The node's checks: can this host connect NVMe/TCP volumes, format, grow and mount them where
kubelet sees them? Every path is a field of ``NodeHost`` so that the checks read a prepared
tree in tests and the real one otherwise.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
from collections.abc import Callable, Sequence
from typing import Final

import attrs

from rds_csi.adapters.process import run_tool
from rds_csi.application.node.confinement import DEFAULT_KUBELET_DIR
from rds_csi.domain import DomainError
from rds_csi.domain.capability import DEFAULT_FS_TYPE
from rds_csi.entrypoints.doctor.report import Check, Findings, Status, fail, ok, warn
from rds_csi.entrypoints.settings import Settings


__all__ = ["NodeHost", "check_node"]

MODULES: Final = ("nvme_tcp", "nvme_fabrics")
# What the node's Filesystem and Mounter run, per filesystem type.
COMMON_TOOLS: Final = ("blkid", "mount", "umount")
FS_TOOLS: Final = {
    "ext4": ("mkfs.ext4", "resize2fs"),
    "xfs": ("mkfs.xfs", "xfs_growfs"),
    "ext3": ("mkfs.ext3", "resize2fs"),
}
TCP_TIMEOUT: Final = 5.0


@attrs.frozen
class NodeHost:
    """Where this host keeps what the checks read; the defaults are the real places."""

    proc_modules: pathlib.Path = pathlib.Path("/proc/modules")
    lib_modules: pathlib.Path = attrs.field(
        factory=lambda: pathlib.Path("/lib/modules") / os.uname().release
    )
    etc_nvme: pathlib.Path = pathlib.Path("/etc/nvme")
    mountinfo: pathlib.Path = pathlib.Path("/proc/self/mountinfo")
    kubelet_dir: pathlib.Path = pathlib.Path(DEFAULT_KUBELET_DIR)
    which: Callable[[str], str | None] = shutil.which


def _read(path: pathlib.Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _module_name(path: str) -> str:
    """``kernel/drivers/nvme/host/nvme-tcp.ko.zst`` -> ``nvme_tcp``."""
    return path.rsplit("/", 1)[-1].split(".ko", 1)[0].replace("-", "_")


def kernel_modules(host: NodeHost) -> Check:
    loaded = {line.split()[0] for line in (_read(host.proc_modules) or "").splitlines() if line}
    builtin = {
        _module_name(line) for line in (_read(host.lib_modules / "modules.builtin") or "").split()
    }
    installed = {
        _module_name(line.split(":", 1)[0])
        for line in (_read(host.lib_modules / "modules.dep") or "").splitlines()
    }
    ready = [m for m in MODULES if m in loaded or m in builtin]
    loadable = [m for m in MODULES if m not in ready and m in installed]
    absent = [m for m in MODULES if m not in ready and m not in installed]
    if absent and not host.lib_modules.is_dir():
        return fail(
            "kernel modules",
            f"{', '.join(absent)} not loaded, and {host.lib_modules} is not here to load them from",
            "on the host: modprobe nvme_tcp (and echo nvme_tcp > "
            "/etc/modules-load.d/nvme-tcp.conf), or mount the host's /lib/modules",
        )
    if absent:
        return fail(
            "kernel modules",
            f"{', '.join(absent)} not in this kernel ({host.lib_modules.name}): no NVMe/TCP",
            "install the kernel's extra modules (Ubuntu: linux-modules-extra-$(uname -r)) "
            "or use a kernel with CONFIG_NVME_TCP",
        )
    if loadable:
        return warn(
            "kernel modules",
            f"{', '.join(loadable)} installed but not loaded",
            "modprobe nvme_tcp, and load it at boot: echo nvme_tcp > "
            "/etc/modules-load.d/nvme-tcp.conf (the driver's first connect may load it too)",
        )
    return ok("kernel modules", f"{', '.join(MODULES)} loaded or built in")


def host_nqn(host: NodeHost) -> Check:
    path = host.etc_nvme / "hostnqn"
    text = (_read(path) or "").strip()
    fix = f"nvme gen-hostnqn > {path} (once per node: it is the node's NVMe identity)"
    if not text:
        return fail("host nqn", f"{path} is missing or empty", fix)
    if not text.startswith("nqn."):
        return fail("host nqn", f"{path} holds {text[:60]!r}, not an NQN", fix)
    return ok("host nqn", f"{path}: {text}")


def host_id(host: NodeHost) -> Check:
    path = host.etc_nvme / "hostid"
    text = (_read(path) or "").strip()
    if not text:
        return warn(
            "host id",
            f"{path} is missing or empty",
            f"uuidgen > {path} (else nvme-cli derives one, which may change)",
        )
    return ok("host id", f"{path}: {text}")


def nvme_cli(binary: str) -> Check:
    fix = "install nvme-cli (apt install nvme-cli) or point --nvme-binary at it"
    try:
        done = run_tool([binary, "version"], timeout=10.0)
    except DomainError as exc:
        return fail("nvme-cli", str(exc), fix)
    if not done.ok:
        return fail("nvme-cli", f"{binary} version: {done.detail()}", fix)
    return ok("nvme-cli", done.stdout.strip().splitlines()[0] if done.stdout.strip() else binary)


def filesystem_tools(host: NodeHost) -> Check:
    missing_common = [t for t in COMMON_TOOLS if host.which(t) is None]
    missing = {fs: [t for t in tools if host.which(t) is None] for fs, tools in FS_TOOLS.items()}
    lacking = {fs: tools for fs, tools in missing.items() if tools}
    usable = sorted(fs for fs in FS_TOOLS if fs not in lacking)
    named = "; ".join(f"{fs}: {', '.join(tools)}" for fs, tools in sorted(lacking.items()))
    fix = "install e2fsprogs (ext4, ext3) and xfsprogs (xfs), util-linux (blkid, mount)"
    if missing_common or DEFAULT_FS_TYPE in lacking:
        what = ", ".join(missing_common) + ("; " if missing_common and named else "") + named
        return fail("filesystem tools", f"missing {what}", fix)
    if lacking:
        return warn(
            "filesystem tools",
            f"volumes of {', '.join(usable)} work; missing {named}",
            fix + " for StorageClasses with those fsTypes",
        )
    return ok("filesystem tools", f"{', '.join(usable)}: every tool on PATH")


def _mount_of(mountinfo: str, path: pathlib.Path) -> tuple[str, list[str]] | None:
    """The mount holding ``path`` (the longest mount point above it) and its optional fields."""
    best: tuple[str, list[str]] | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 7 or "-" not in fields:  # noqa: PLR2004 - mountinfo's fixed fields
            continue
        point = fields[4].replace("\\040", " ")
        inside = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) > len(best[0])):
            best = (point, fields[6 : fields.index("-")])
    return best


def kubelet_dir(host: NodeHost) -> Check:
    path = host.kubelet_dir
    if not path.is_dir():
        return fail(
            "kubelet dir",
            f"{path} does not exist",
            "set --kubelet-dir to kubelet's --root-dir; in the node plugin's pod mount the "
            "host's kubelet directory there",
        )
    mount = _mount_of(_read(host.mountinfo) or "", path.resolve())
    if mount is None:
        return warn("kubelet dir", f"{path}: its mount is not in {host.mountinfo}", "")
    point, optional = mount
    if not any(tag.startswith("shared:") for tag in optional):
        return warn(
            "kubelet dir",
            f"{path} is on {point}, which is not a shared mount: mounts made here may not "
            "reach kubelet and pods",
            "give the node plugin's kubelet-dir volume mountPropagation: Bidirectional (the "
            "manifests do) and keep the host's mount shared (mount --make-rshared /)",
        )
    return ok("kubelet dir", f"{path} on {point}, shared (mount propagation works)")


def data_address(address: str, port: int) -> Check:
    if not address:
        return Check(
            "data address",
            Status.SKIP,
            "give --nvme-address (the StorageClass's nvmeAddress) to check it",
        )
    try:
        with socket.create_connection((address, port), timeout=TCP_TIMEOUT):
            pass
    except OSError as exc:
        return fail(
            "data address",
            f"cannot connect to {address}:{port}: {exc}",
            f"check the data network's route and the RDS firewall for TCP {port} from this "
            "node (docs/routeros.md section 5)",
        )
    return ok("data address", f"{address}:{port} accepts connections")


def check_node(settings: Settings, findings: Findings, host: NodeHost | None = None) -> None:
    """Every node check, in order, into ``findings``."""
    host = host or NodeHost()
    findings.add(ok("configuration", f"node {settings.node.node_id}"))
    checks: Sequence[Callable[[], Check]] = (
        lambda: kernel_modules(host),
        lambda: host_nqn(host),
        lambda: host_id(host),
        lambda: nvme_cli(settings.node.nvme_binary),
        lambda: filesystem_tools(host),
        lambda: kubelet_dir(host),
        lambda: data_address(settings.controller.nvme_address, settings.controller.nvme_port),
    )
    for check in checks:
        findings.add(check())
