"""
A stand-in for the ``nvme`` executable (nvme-cli 2.x) that drives a fake sysfs tree.

Installed by ``tests/doubles/nvme_cli.py`` as ``<dir>/nvme`` with a shebang for this
interpreter; it reads the world it simulates from ``nvme-world.json`` beside itself, records
every argv in ``nvme-calls.jsonl``, and builds or removes what the kernel would show in sysfs
and /dev. Stdlib only: it runs outside the test process.

What it reproduces, because the adapter must cope with it:

* ``connect -o json`` prints ``{"device":"nvmeN"}`` and exits with ``json_exit_status``
  (1 models the nvme-cli versions that exit 1 on success);
* a second connect to the same target prints ``already connected`` and exits 1;
* an NQN the target does not export: ``Failed to write to /dev/nvme-fabrics: Input/output
  error`` + ``could not add new controller: failed to write to nvme-fabrics device``, exit 1;
* an unreachable address: ``Failed to write to /dev/nvme-fabrics: Connection refused`` +
  ``could not add new controller: connection refused`` (``discover``: ``failed to add
  controller, error connection refused``), exit 1;
* ``discover -o json`` lists the discovery subsystem itself first (subtype ``current discovery
  subsystem``), then one record per exported NQN;
* ``disconnect -n`` prints ``NQN:<nqn> disconnected <k> controller(s)`` and exits 0, k = 0 too;
* ``ns-rescan`` brings the namespace's sysfs ``size`` up to the target's; of a controller that
  is gone: ``/dev/nvmeN: No such file or directory`` and the usage, exit 1;
* sysfs as Linux lays it out: class links into ``devices/virtual``, ``nvme-subsysM/nvmeMnH``
  (native multipath) or ``nvmeN/nvmeNn1`` (without), hidden ``nvmeMcNnH``, ``ngMnH``,
  ``ctrl_loss_tmo`` shown as ``off`` for -1. ``H`` is the namespace head's instance in its
  subsystem, not the NSID: 1 for the first, and the next free one while a lost connection's
  head is still held open (``FakeNvme.lose_connection``), as Linux names them.

Measured against Linux 6.1's target and initiator with nvme-cli 2.3 in the e2e_nvme guest.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import re
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any


HERE = pathlib.Path(__file__).resolve().parent
WORLD = HERE / "nvme-world.json"
CALLS = HERE / "nvme-calls.jsonl"
LOCK = HERE / "nvme-world.lock"

REFUSED = (
    "Failed to write to /dev/nvme-fabrics: Connection refused\n"
    "could not add new controller: connection refused\n"
)
DISCOVERY_REFUSED = (
    "Failed to write to /dev/nvme-fabrics: Connection refused\n"
    "failed to add controller, error connection refused\n"
)
DISCOVERY_NQN = "nqn.2014-08.org.nvmexpress.discovery"
NOT_EXPORTED = (
    "Failed to write to /dev/nvme-fabrics: Input/output error\n"
    "could not add new controller: failed to write to nvme-fabrics device\n"
)

OPTIONS = {
    "-t": "transport",
    "--transport": "transport",
    "-a": "traddr",
    "--traddr": "traddr",
    "-s": "trsvcid",
    "--trsvcid": "trsvcid",
    "-n": "nqn",
    "--nqn": "nqn",
    "-q": "hostnqn",
    "--hostnqn": "hostnqn",
    "-I": "hostid",
    "--hostid": "hostid",
    "-l": "ctrl_loss_tmo",
    "--ctrl-loss-tmo": "ctrl_loss_tmo",
    "-c": "reconnect_delay",
    "--reconnect-delay": "reconnect_delay",
    "-k": "keep_alive_tmo",
    "--keep-alive-tmo": "keep_alive_tmo",
    "-o": "output_format",
    "--output-format": "output_format",
}
FLAGS = {"-v": "verbose", "--verbose": "verbose"}


class Usage(Exception):
    pass


def parse(args: list[str]) -> tuple[dict[str, str], list[str]]:
    opts: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if arg in FLAGS:
            opts[FLAGS[arg]] = "1"
        elif name in OPTIONS and eq:
            opts[OPTIONS[name]] = value
        elif arg in OPTIONS:
            if i + 1 >= len(args):
                raise Usage(f"option '{arg}' requires an argument")
            opts[OPTIONS[arg]] = args[i + 1]
            i += 1
        elif arg.startswith("-") and arg != "-":
            raise Usage(f"unrecognized option '{arg}'")
        else:
            positional.append(arg)
        i += 1
    return opts, positional


@contextlib.contextmanager
def locked() -> Iterator[None]:
    with LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(WORLD.read_text())
    return data


def save(world: dict[str, Any]) -> None:
    tmp = WORLD.with_suffix(".tmp")
    tmp.write_text(json.dumps(world, indent=1))
    tmp.replace(WORLD)


class Tree:
    """The fake kernel's view: sysfs and /dev under the world's roots."""

    def __init__(self, world: dict[str, Any]) -> None:
        self.sys = pathlib.Path(world["sysfs"])
        self.dev = pathlib.Path(world["dev"])
        self.class_subsys = self.sys / "class" / "nvme-subsystem"
        self.class_ctrl = self.sys / "class" / "nvme"
        self.virt_subsys = self.sys / "devices" / "virtual" / "nvme-subsystem"
        self.virt_ctrl = self.sys / "devices" / "virtual" / "nvme-fabrics" / "ctl"
        for d in (self.class_subsys, self.class_ctrl, self.virt_subsys, self.virt_ctrl, self.dev):
            d.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _read(path: pathlib.Path) -> str:
        try:
            return path.read_text().strip()
        except OSError:
            return ""

    def subsystems(self) -> list[pathlib.Path]:
        return sorted(p for p in self.virt_subsys.iterdir() if p.is_dir())

    def subsystem_for(self, nqn: str) -> pathlib.Path | None:
        for s in self.subsystems():
            if self._read(s / "subsysnqn") == nqn:
                return s
        return None

    def controllers_of(self, subsys: pathlib.Path) -> list[str]:
        return sorted(
            p.name
            for p in subsys.iterdir()
            if p.is_symlink() and p.name.startswith("nvme") and p.name[4:].isdigit()
        )

    def free_instance(self, directory: pathlib.Path, prefix: str) -> int:
        used = {
            int(p.name[len(prefix) :])
            for p in directory.iterdir()
            if p.name.startswith(prefix) and p.name[len(prefix) :].isdigit()
        }
        n = 0
        while n in used:
            n += 1
        return n

    def matching_controller(self, nqn: str, traddr: str, trsvcid: str) -> str | None:
        subsys = self.subsystem_for(nqn)
        if subsys is None:
            return None
        for name in self.controllers_of(subsys):
            address = self._read(self.virt_ctrl / name / "address")
            if f"traddr={traddr}," in address + "," and f"trsvcid={trsvcid}," in address + ",":
                return name
        return None


def is_head(name: str) -> bool:
    """A block namespace (nvme0n1), not a hidden path (nvme0c0n1) or a char device (ng0n1)."""
    return re.fullmatch(r"nvme[0-9]+n[0-9]+", name) is not None


def write(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def make_block(path: pathlib.Path, image: str) -> None:
    # The device node is a link to the target's image: data outlives a disconnect, as on a
    # real target, and reads and writes through it land in the image.
    path.unlink(missing_ok=True)
    path.symlink_to(image)


def refusal(world: dict[str, Any], tree: Tree, opts: dict[str, str]) -> str | None:
    """What a connect prints on stderr when it fails, or None when it goes through."""
    nqn, traddr, trsvcid = opts["nqn"], opts["traddr"], opts.get("trsvcid", "4420")
    if world.get("hang_connects", 0) > 0:
        world["hang_connects"] -= 1
        save(world)
        time.sleep(3600)
    if world.get("fail_connects", 0) > 0:
        world["fail_connects"] -= 1
        save(world)
        return REFUSED
    if traddr in world.get("unreachable", []):
        return REFUSED
    if tree.matching_controller(nqn, traddr, trsvcid) is not None:
        return "already connected\n"
    if nqn not in world.get("targets", {}).get(f"{traddr}:{trsvcid}", {}):
        return NOT_EXPORTED
    return None


def make_subsystem(tree: Tree, nqn: str) -> pathlib.Path:
    subsys = tree.subsystem_for(nqn)
    if subsys is not None:
        return subsys
    m = tree.free_instance(tree.virt_subsys, "nvme-subsys")
    subsys = tree.virt_subsys / f"nvme-subsys{m}"
    subsys.mkdir()
    write(subsys / "subsysnqn", nqn)
    write(subsys / "subsystype", "nvm")
    write(subsys / "model", "RDS".ljust(40))
    write(subsys / "serial", "MT0123456789".ljust(20))
    write(subsys / "firmware_rev", "7.16")
    write(subsys / "iopolicy", "numa")
    (tree.class_subsys / subsys.name).symlink_to(
        pathlib.Path("../../devices/virtual/nvme-subsystem") / subsys.name
    )
    return subsys


def make_controller(tree: Tree, subsys: pathlib.Path, opts: dict[str, str]) -> pathlib.Path:
    n = tree.free_instance(tree.virt_ctrl, "nvme")
    ctrl = tree.virt_ctrl / f"nvme{n}"
    ctrl.mkdir()
    loss = int(opts.get("ctrl_loss_tmo", "600"))
    address = f"traddr={opts['traddr']},trsvcid={opts.get('trsvcid', '4420')},src_addr=127.0.0.1"
    attributes = {
        "state": "live",
        "transport": "tcp",
        "address": address,
        "subsysnqn": opts["nqn"],
        "ctrl_loss_tmo": "off" if loss < 0 else str(loss),
        "reconnect_delay": opts.get("reconnect_delay", "10"),
        "kato": opts.get("keep_alive_tmo", "5"),
        "hostnqn": opts.get("hostnqn", f"nqn.2014-08.org.nvmexpress:uuid:{uuid.uuid4()}"),
        "hostid": opts.get("hostid", str(uuid.uuid4())),
        "cntlid": str(n + 1),
        "dev": f"247:{n}",
    }
    for name, value in attributes.items():
        write(ctrl / name, value)
    (tree.class_ctrl / ctrl.name).symlink_to(
        pathlib.Path("../../devices/virtual/nvme-fabrics/ctl") / ctrl.name
    )
    (subsys / ctrl.name).symlink_to(pathlib.Path("../../nvme-fabrics/ctl") / ctrl.name)
    (tree.dev / ctrl.name).touch()
    return ctrl


def head_instance(world: dict[str, Any], subsys: pathlib.Path) -> int:
    """The lowest head instance free in ``subsys`` (Linux's per-subsystem ida)."""
    taken = set(world.get("held", {}).get(subsys.name, []))
    for entry in subsys.iterdir():
        match = re.fullmatch(r"nvme[0-9]+n([0-9]+)", entry.name)
        if match:
            taken.add(int(match.group(1)))
    h = 1
    while h in taken:
        h += 1
    return h


def make_namespace(
    tree: Tree,
    subsys: pathlib.Path,
    ctrl: pathlib.Path,
    export: dict[str, Any],
    *,
    multipath: bool,
    instance: int = 1,
) -> None:
    m = int(subsys.name.removeprefix("nvme-subsys"))
    n = int(ctrl.name.removeprefix("nvme"))
    sectors = str(int(export["size"]) // 512)
    if multipath:
        h = instance
        head, generic = subsys / f"nvme{m}n{h}", subsys / f"ng{m}n{h}"
        write(ctrl / f"nvme{m}c{n}n{h}" / "size", sectors)  # the hidden per-path node
    else:
        head, generic = ctrl / f"nvme{n}n1", ctrl / f"ng{n}n1"
    write(head / "size", sectors)
    write(head / "nsid", "1")
    write(generic / "dev", f"240:{m if multipath else n}")
    make_block(tree.dev / head.name, export["image"])
    (tree.dev / generic.name).touch()


def connect(world: dict[str, Any], args: list[str]) -> int:
    opts, _ = parse(args)
    if opts.get("transport") != "tcp" or "traddr" not in opts or "nqn" not in opts:
        sys.stderr.write("required argument [--nqn | -n] / [--traddr | -a] not specified\n")
        return 1
    tree = Tree(world)
    refused = refusal(world, tree, opts)
    if refused is not None:
        sys.stderr.write(refused)
        return 1
    exported = world["targets"][f"{opts['traddr']}:{opts.get('trsvcid', '4420')}"]
    subsys = make_subsystem(tree, opts["nqn"])
    ctrl = make_controller(tree, subsys, opts)
    if world.get("namespace_appears", True):
        export = exported[opts["nqn"]]
        make_namespace(
            tree,
            subsys,
            ctrl,
            export,
            multipath=world.get("multipath", True),
            instance=head_instance(world, subsys),
        )
    if opts.get("output_format") == "json":
        sys.stdout.write(json.dumps({"device": ctrl.name}, indent=2).replace('": ', '":') + "\n")
        return int(world.get("json_exit_status", 0))
    return 0


def _remove_tree(path: pathlib.Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    if path.is_dir():
        for child in path.iterdir():
            _remove_tree(child)
        path.rmdir()


def drop_controllers(world: dict[str, Any], tree: Tree, subsys: pathlib.Path) -> int:
    """
    Remove every controller of ``subsys`` and its namespaces (sysfs and /dev), as a disconnect
    or the end of ctrl-loss-tmo does. The subsystem itself goes too, unless a namespace head of
    it is still held open (``world["held"]``): Linux keeps it, empty, and reuses it on the next
    connect. Returns how many controllers went.
    """
    count = 0
    for name in tree.controllers_of(subsys):
        ctrl = tree.virt_ctrl / name
        for entry in ctrl.iterdir():
            if entry.is_dir() and (is_head(entry.name) or entry.name.startswith("ng")):
                (tree.dev / entry.name).unlink(missing_ok=True)
        (tree.dev / name).unlink(missing_ok=True)
        _remove_tree(ctrl)
        (tree.class_ctrl / name).unlink(missing_ok=True)
        (subsys / name).unlink()
        count += 1
    for entry in list(subsys.iterdir()):
        if entry.is_dir() and (is_head(entry.name) or entry.name.startswith("ng")):
            (tree.dev / entry.name).unlink(missing_ok=True)
            _remove_tree(entry)
    if not world.get("held", {}).get(subsys.name):
        (tree.class_subsys / subsys.name).unlink(missing_ok=True)
        _remove_tree(subsys)
    return count


def disconnect(world: dict[str, Any], args: list[str]) -> int:
    opts, _ = parse(args)
    if "nqn" not in opts:
        sys.stderr.write("required argument [--nqn | -n] not specified\n")
        return 1
    nqn = opts["nqn"]
    tree = Tree(world)
    count = 0
    seen: set[str] = set()
    subsys = tree.subsystem_for(nqn)
    while subsys is not None and subsys.name not in seen:
        seen.add(subsys.name)
        count += drop_controllers(world, tree, subsys)
        subsys = tree.subsystem_for(nqn)
    sys.stdout.write(f"NQN:{nqn} disconnected {count} controller(s)\n")
    return 0


def ns_rescan(world: dict[str, Any], args: list[str]) -> int:
    _, positional = parse(args)
    if not positional:
        sys.stderr.write("ns-rescan: no device given\n")
        return 1
    device = pathlib.Path(positional[0])
    tree = Tree(world)
    ctrl = tree.virt_ctrl / device.name
    if device.parent != tree.dev or not device.exists() or not ctrl.is_dir():
        sys.stderr.write(
            f"{device}: No such file or directory\n"
            "Usage: nvme ns-rescan <device> [OPTIONS]\n\nRescans the NVMe namespaces\n\n"
        )
        return 1
    nqn = Tree._read(ctrl / "subsysnqn")
    address = dict(
        part.split("=", 1) for part in Tree._read(ctrl / "address").split(",") if "=" in part
    )
    exported = world.get("targets", {}).get(f"{address['traddr']}:{address['trsvcid']}", {})
    if nqn not in exported:
        return 0  # the namespace went away on the target; the real kernel would drop it
    size = int(exported[nqn]["size"])
    subsys = tree.subsystem_for(nqn)
    heads = [p for p in (subsys.iterdir() if subsys else []) if is_head(p.name)]
    heads += [p for p in ctrl.iterdir() if is_head(p.name)]
    for head in heads:
        write(head / "size", str(size // 512))
    return 0


def discover(world: dict[str, Any], args: list[str]) -> int:
    opts, _ = parse(args)
    traddr, trsvcid = opts.get("traddr", ""), opts.get("trsvcid", "4420")
    if traddr in world.get("unreachable", []):
        sys.stderr.write(DISCOVERY_REFUSED)
        return 1
    if not world.get("discovery", True):
        sys.stderr.write(NOT_EXPORTED)
        return 1
    exported = world.get("targets", {}).get(f"{traddr}:{trsvcid}", {})
    records = [
        {
            "trtype": "tcp",
            "adrfam": "ipv4",
            "subtype": subtype,
            "treq": "not specified, sq flow control disable supported",
            "portid": 1,
            "trsvcid": trsvcid,
            "subnqn": nqn,
            "traddr": traddr,
            "eflags": "none",
            "sectype": "none",
        }
        for subtype, nqn in [
            ("current discovery subsystem", DISCOVERY_NQN),
            *(("nvme subsystem", nqn) for nqn in sorted(exported)),
        ]
    ]
    sys.stdout.write(json.dumps({"genctr": len(records), "records": records}, indent=2) + "\n")
    return 0


COMMANDS = {
    "connect": connect,
    "disconnect": disconnect,
    "ns-rescan": ns_rescan,
    "discover": discover,
}


def main(argv: list[str]) -> int:
    with CALLS.open("a") as log:
        log.write(json.dumps(argv) + "\n")
    if not argv or argv[0] not in COMMANDS:
        sys.stderr.write(f"nvme: unknown command {argv[:1]}\n")
        return 1
    with locked():
        world = load()
        try:
            return COMMANDS[argv[0]](world, argv[1:])
        except Usage as exc:
            sys.stderr.write(f"{argv[0]}: {exc}\n")
            return 1


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv[1:]))
