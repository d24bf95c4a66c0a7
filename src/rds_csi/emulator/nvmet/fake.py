"""
A fake nvmet configfs on an ordinary directory, for tests on machines without the target.

It answers the :class:`~rds_csi.emulator.nvmet.configfs.ConfigfsOps` calls the way the kernel's
configfs does (measured on Debian's 6.1 kernel, and checked by the contract suite that runs the
same tests against the real one inside the qemu guest): ``mkdir`` of a subsystem, namespace or
port creates its attribute files with the kernel's defaults; attributes cannot be created or
removed; a namespace cannot change its device while enabled; a port cannot change its address
while a subsystem is linked; a linked subsystem and a port with links cannot be removed.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Final

from rds_csi.emulator.nvmet.configfs import (
    DISCOVERY_NQN,
    MODEL_MAX,
    NSID_MAX,
    PORT_MAX,
    SERIAL_MAX,
    direct_io_works,
    is_printable_ascii,
)


__all__ = ["FakeConfigfs"]

_WRITE_ONLY: Final = frozenset({"revalidate_size"})
_TRTYPES: Final = frozenset({"tcp", "rdma", "fc", "loop"})
_ADRFAMS: Final = frozenset({"ipv4", "ipv6", "ib", "fc", "loop"})
_TRUE: Final = frozenset({"1", "y", "Y", "on", "true"})
_FALSE: Final = frozenset({"0", "n", "N", "off", "false"})


# Attributes the kernel refuses to change while the namespace is enabled, and how.
_FIXED_WHILE_ENABLED: Final = {
    "device_path": errno.EBUSY,
    "device_uuid": errno.EBUSY,
    "device_nguid": errno.EBUSY,
    "buffered_io": errno.EINVAL,
}


def _subsystem() -> tuple[tuple[str, ...], dict[str, str]]:
    return ("allowed_hosts", "namespaces"), {
        "attr_allow_any_host": "0",
        "attr_cntlid_max": "65519",
        "attr_cntlid_min": "1",
        "attr_model": "Linux",
        "attr_pi_enable": "0",
        "attr_qid_max": "128",
        "attr_serial": secrets.token_hex(10),
        "attr_version": "1.3",
    }


def _namespace() -> tuple[tuple[str, ...], dict[str, str]]:
    return (), {
        "ana_grpid": "1",
        "buffered_io": "0",
        "device_nguid": "00000000-0000-0000-0000-000000000000",
        "device_path": "(null)",
        "device_uuid": str(uuid.uuid4()),
        "enable": "0",
        "revalidate_size": "",
    }


def _port() -> tuple[tuple[str, ...], dict[str, str]]:
    return ("ana_groups/1", "referrals", "subsystems"), {
        "addr_adrfam": "",
        "addr_traddr": "",
        "addr_treq": "not specified",
        "addr_trsvcid": "",
        "addr_trtype": "",
        "param_inline_data_size": "-1",
        "param_pi_enable": "0",
    }


# What each kind of configfs group holds when made (the kernel's defaults), and its valid names.
_LAYOUT: Final[dict[str, Callable[[], tuple[tuple[str, ...], dict[str, str]]]]] = {
    "subsystem": _subsystem,
    "namespace": _namespace,
    "port": _port,
}
_NAME_OK: Final[dict[str, Callable[[str], bool]]] = {
    "subsystem": lambda name: name != DISCOVERY_NQN,
    "namespace": lambda name: name.isdigit() and 1 <= int(name) <= NSID_MAX,
    "port": lambda name: name.isdigit() and int(name) <= PORT_MAX,
}


def _kind(parts: tuple[str, ...]) -> str | None:
    match parts:
        case ("subsystems", _):
            return "subsystem"
        case ("subsystems", _, "namespaces", _):
            return "namespace"
        case ("ports", _):
            return "port"
    return None


def _err(code: int, path: Path) -> OSError:
    return OSError(code, os.strerror(code), str(path))


def _as_bool(value: str, path: Path) -> bool:
    text = value.strip()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _err(errno.EINVAL, path)


class FakeConfigfs:
    """
    :class:`ConfigfsOps` with the kernel's rules, over a real directory tree at ``root``.

    Attributes:
        root: The fake ``nvmet`` directory (``subsystems/``, ``ports/``, ``hosts/``).
        resize_events: ``(nqn, nsid)`` for every accepted ``revalidate_size`` write.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.resize_events: list[tuple[str, int]] = []
        for d in ("subsystems", "ports", "hosts"):
            (root / d).mkdir(parents=True, exist_ok=True)

    # ---- what a path is ----
    def _parts(self, path: Path) -> tuple[str, ...]:
        try:
            return Path(path).relative_to(self.root).parts
        except ValueError:
            raise _err(errno.EPERM, path) from None

    @staticmethod
    def _put(path: Path, value: str, mode: int = 0o644) -> None:
        path.write_text(value)
        path.chmod(mode)

    def _ns_enabled(self, ns: Path) -> bool:
        return (ns / "enable").read_text() == "1"

    def _port_linked(self, port: Path) -> bool:
        return any((port / "subsystems").iterdir())

    # ---- ConfigfsOps ----
    def mkdir(self, path: Path) -> None:
        parts = self._parts(path)
        if os.path.lexists(path):
            raise _err(errno.EEXIST, path)
        if not path.parent.is_dir():
            raise _err(errno.ENOENT, path)
        kind = _kind(parts)
        if kind is None:
            raise _err(errno.EPERM, path)  # configfs: only groups that make objects
        if not _NAME_OK[kind](parts[-1]):
            raise _err(errno.EINVAL, path)
        path.mkdir()
        dirs, attrs = _LAYOUT[kind]()
        for d in dirs:
            (path / d).mkdir(parents=True)
        for attr, value in attrs.items():
            self._put(path / attr, value, 0o200 if attr in _WRITE_ONLY else 0o644)

    def rmdir(self, path: Path) -> None:
        parts = self._parts(path)
        if not path.is_dir() or path.is_symlink():
            raise _err(errno.ENOENT if not os.path.lexists(path) else errno.ENOTDIR, path)
        match parts:
            case ("subsystems", name):
                linked = any(
                    (port / "subsystems" / name).is_symlink()
                    for port in (self.root / "ports").iterdir()
                )
                if linked or any((path / "namespaces").iterdir()):
                    raise _err(errno.EBUSY, path)
            case ("subsystems", _, "namespaces", _):
                pass
            case ("ports", _):
                if self._port_linked(path):
                    raise _err(errno.ENOTEMPTY, path)
            case _:
                raise _err(errno.EPERM, path)
        shutil.rmtree(path)

    def write(self, path: Path, value: str) -> None:
        parts = self._parts(path)
        if not os.path.lexists(path):
            raise _err(errno.ENOENT, path)
        if path.is_dir():
            raise _err(errno.EISDIR, path)
        text = value.rstrip("\n")
        match parts:
            case ("subsystems", nqn, "namespaces", nsid, attr):
                self._write_namespace(path, nqn, int(nsid), attr, text)
            case ("subsystems", _, attr):
                self._write_subsystem(path, attr, text)
            case ("ports", _, attr):
                self._write_port(path, attr, text)
            case _:
                raise _err(errno.EPERM, path)

    def _write_namespace(self, path: Path, nqn: str, nsid: int, attr: str, text: str) -> None:
        ns = path.parent
        enabled = self._ns_enabled(ns)
        if attr == "revalidate_size":
            if not _as_bool(text, path) or not enabled:
                raise _err(errno.EINVAL, path)  # "enable ns before revalidate"
            self.resize_events.append((nqn, nsid))
            return
        if attr == "enable":
            want = _as_bool(text, path)
            if want and not enabled:
                self._enable(ns)
            path.write_text("1" if want else "0")
            return
        if enabled and attr in _FIXED_WHILE_ENABLED:
            raise _err(_FIXED_WHILE_ENABLED[attr], path)
        if attr in {"device_uuid", "device_nguid"}:
            try:
                uuid.UUID(text)
            except ValueError:
                raise _err(errno.EINVAL, path) from None
        if attr == "buffered_io":
            text = "1" if _as_bool(text, path) else "0"
        path.write_text(text)

    def _enable(self, ns: Path) -> None:
        device = ns / "device_path"
        target = Path(device.read_text())
        try:
            mode = target.stat().st_mode
        except OSError:
            raise _err(errno.ENOENT, ns / "enable") from None
        if stat.S_ISBLK(mode):
            return
        if not stat.S_ISREG(mode):
            raise _err(errno.EINVAL, ns / "enable")
        # nvmet opens files with O_DIRECT unless buffered_io is set; tmpfs before 6.6 refuses.
        if (ns / "buffered_io").read_text() != "1" and not direct_io_works(target):
            raise _err(errno.EINVAL, ns / "enable")

    def _write_subsystem(self, path: Path, attr: str, text: str) -> None:
        limits = {"attr_model": MODEL_MAX, "attr_serial": SERIAL_MAX}
        if attr in limits and (
            not text or len(text) > limits[attr] or not is_printable_ascii(text)
        ):
            raise _err(errno.EINVAL, path)
        if attr == "attr_allow_any_host":
            text = "1" if _as_bool(text, path) else "0"
        path.write_text(text)

    def _write_port(self, path: Path, attr: str, text: str) -> None:
        if attr.startswith("addr_") and self._port_linked(path.parent):
            raise _err(errno.EACCES, path)  # "Cannot modify address while enabled"
        if (attr == "addr_trtype" and text not in _TRTYPES) or (
            attr == "addr_adrfam" and text not in _ADRFAMS
        ):
            raise _err(errno.EINVAL, path)
        path.write_text(text)

    def read(self, path: Path) -> str:
        self._parts(path)
        if path.name in _WRITE_ONLY:
            raise _err(errno.EACCES, path)
        return path.read_text() + "\n"

    def symlink(self, target: Path, link: Path) -> None:
        match self._parts(link), self._parts(target):
            case ("ports", port_id, "subsystems", _), ("subsystems", nqn):
                port = self.root / "ports" / port_id
                if os.path.lexists(link):
                    raise _err(errno.EEXIST, link)
                if not target.is_dir():
                    raise _err(errno.ENOENT, link)
                linked = {p.resolve() for p in (port / "subsystems").iterdir()}
                if target.resolve() in linked:
                    raise _err(errno.EEXIST, link)
                if (port / "addr_trtype").read_text() not in _TRTYPES:
                    raise _err(errno.EINVAL, link)  # the port cannot be enabled yet
                link.symlink_to(self.root / "subsystems" / nqn)
            case _:
                raise _err(errno.EPERM, link)

    def unlink(self, link: Path) -> None:
        match self._parts(link):
            case ("ports", _, "subsystems", _) if link.is_symlink():
                link.unlink()
            case _:
                raise _err(errno.EPERM if os.path.lexists(link) else errno.ENOENT, link)

    def listdir(self, path: Path) -> list[str]:
        return sorted(p.name for p in path.iterdir())

    def exists(self, path: Path) -> bool:
        return os.path.lexists(path)
