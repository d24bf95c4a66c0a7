"""
What the kernel says about NVMe subsystems, read from sysfs (root configurable for tests).

Reads are best effort per entry: a controller being torn down can vanish between ``iterdir``
and ``read_text``, and that must not fail a scan of everything else.
"""

from __future__ import annotations

import pathlib

import attrs

from rds_csi.adapters.nvme_cli.parse import is_controller_name, namespace_order, parse_address


__all__ = ["Controller", "Subsystem", "scan_subsystems"]


@attrs.frozen
class Controller:
    """One path to a subsystem (``nvme3``): its state (live, connecting, ...) and where to."""

    name: str
    state: str
    transport: str
    address: dict[str, str] = attrs.field(factory=dict, eq=False)


@attrs.frozen
class Subsystem:
    """
    One ``nvme-subsysN``: its NQN, controllers, and block namespaces (``nvme0n1``).

    Attributes:
        namespaces: Block device names, lowest subsystem and head instance first.
    """

    name: str
    nqn: str
    controllers: tuple[Controller, ...]
    namespaces: tuple[str, ...]

    @property
    def fabrics(self) -> bool:
        """Reached over a fabric (tcp, rdma, fc, loop), as opposed to a local PCIe drive."""
        return any(c.transport not in {"", "pcie"} for c in self.controllers)


def _read(path: pathlib.Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def _namespaces(directory: pathlib.Path) -> list[str]:
    try:
        names = [p.name for p in directory.iterdir()]
    except OSError:
        return []
    return [n for n in names if namespace_order(n) is not None]


def _controller(path: pathlib.Path) -> Controller | None:
    state = _read(path / "state")
    if state is None:
        return None
    return Controller(
        name=path.name,
        state=state,
        transport=_read(path / "transport") or "",
        address=parse_address(_read(path / "address") or ""),
    )


def _subsystem(path: pathlib.Path) -> Subsystem | None:
    nqn = _read(path / "subsysnqn")
    if nqn is None:
        return None
    try:
        entries = sorted(path.iterdir())
    except OSError:
        return None
    controllers = [
        c for e in entries if is_controller_name(e.name) and (c := _controller(e)) is not None
    ]
    namespaces = _namespaces(path)
    if not namespaces:
        # Without native multipath (nvme_core.multipath=N) the block device hangs off the
        # controller instead of the subsystem.
        for c in controllers:
            namespaces += _namespaces(path / c.name)
    ordered = sorted(set(namespaces), key=lambda n: namespace_order(n) or (0, 0))
    return Subsystem(path.name, nqn, tuple(controllers), tuple(ordered))


def scan_subsystems(sysfs_root: pathlib.Path) -> list[Subsystem]:
    """Every subsystem under ``<root>/class/nvme-subsystem``; empty when NVMe is not loaded."""
    base = sysfs_root / "class" / "nvme-subsystem"
    try:
        entries = sorted(base.iterdir())
    except OSError:
        return []
    found = [_subsystem(e) for e in entries if e.name.startswith("nvme-subsys")]
    return [s for s in found if s is not None]
