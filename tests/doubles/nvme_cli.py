"""
A fake NVMe/TCP world for the nvme-cli adapter: a recording ``nvme`` executable and the sysfs
and /dev trees it maintains, in one temp directory.

``install_fake_nvme(tmp_path)`` returns a ``FakeNvme``; point ``NvmeCliInitiator`` at it with
``fake.initiator()`` (or its ``binary``/``sysfs``/``dev``/``config_dir``), export NQNs with
``fake.export``, and read back what the adapter ran with ``fake.calls()``. The executable's
behaviour (outputs, exit codes, sysfs layout) is documented in ``fake_nvme_script.py``.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import attrs

from rds_csi.adapters.nvme_cli import NvmeCliInitiator
from rds_csi.application.ports import Clock
from tests.doubles import fake_nvme_script as script


__all__ = ["FakeNvme", "StepClock", "install_fake_nvme"]

_SCRIPT = pathlib.Path(__file__).with_name("fake_nvme_script.py")


@attrs.define
class FakeNvme:
    root: pathlib.Path

    @property
    def bin_dir(self) -> pathlib.Path:
        return self.root / "bin"

    @property
    def binary(self) -> pathlib.Path:
        return self.bin_dir / "nvme"

    @property
    def sysfs(self) -> pathlib.Path:
        return self.root / "sys"

    @property
    def dev(self) -> pathlib.Path:
        return self.root / "dev"

    @property
    def config_dir(self) -> pathlib.Path:
        return self.root / "etc" / "nvme"

    # --- the world ---------------------------------------------------------------------------

    def world(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.bin_dir / "nvme-world.json").read_text())
        return data

    def update(self, **changes: Any) -> None:
        world = self.world()
        world.update(changes)
        path = self.bin_dir / "nvme-world.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(world, indent=1))
        tmp.replace(path)

    @property
    def target_dir(self) -> pathlib.Path:
        """Where the simulated target keeps its namespaces' data (sparse images)."""
        return self.root / "target"

    def export(self, nqn: str, size: int, address: str = "127.0.0.1", port: int = 4420) -> None:
        """Make the target at ``address:port`` export ``nqn`` with a namespace of ``size``."""
        image = self.target_dir / (nqn.replace(":", "_") + ".img")
        image.parent.mkdir(parents=True, exist_ok=True)
        with image.open("ab") as handle:
            handle.truncate(size)
        targets = self.world()["targets"]
        targets.setdefault(f"{address}:{port}", {})[nqn] = {"size": size, "image": str(image)}
        self.update(targets=targets)

    def resize(
        self,
        nqn: str,
        size: int,
        address: str = "127.0.0.1",
        port: int = 4420,
        *,
        announce: bool = False,
    ) -> None:
        """
        Grow the namespace on the target. A connected node sees it after ``ns-rescan``; with
        ``announce`` at once, as from Linux's target, whose namespace-changed event makes the
        host revalidate the size by itself.
        """
        self.export(nqn, size, address, port)
        if announce:
            tree = script.Tree(self.world())
            subsys = tree.subsystem_for(nqn)
            heads = [p for p in (subsys.iterdir() if subsys else []) if script.is_head(p.name)]
            for head in heads:
                script.write(head / "size", str(size // 512))

    def lose_connection(self, nqn: str, *, held: bool = True) -> None:
        """
        The target stayed away past ctrl-loss-tmo: the kernel removes the controllers and the
        namespace's devices. With ``held`` (a mount still holds the old device) the subsystem
        stays in sysfs, empty, and the next connect reuses it under a new head name
        (``nvme0n2``) until ``release``.
        """
        world = self.world()
        tree = script.Tree(world)
        subsys = tree.subsystem_for(nqn)
        assert subsys is not None, f"{nqn} is not connected"
        if held:
            instances = [
                int(p.name.rpartition("n")[2]) for p in subsys.iterdir() if script.is_head(p.name)
            ]
            world.setdefault("held", {}).setdefault(subsys.name, []).extend(instances)
            self.update(held=world["held"])
        script.drop_controllers(self.world(), tree, subsys)

    def release(self, nqn: str) -> None:
        """The last holder of a lost connection's device let go (unmounted)."""
        world = self.world()
        tree = script.Tree(world)
        subsys = tree.subsystem_for(nqn)
        if subsys is None:
            return
        held = world.get("held", {})
        held.pop(subsys.name, None)
        self.update(held=held)
        if not tree.controllers_of(subsys):
            script.drop_controllers(self.world(), tree, subsys)

    def unexport(self, nqn: str, address: str = "127.0.0.1", port: int = 4420) -> None:
        targets = self.world()["targets"]
        targets.get(f"{address}:{port}", {}).pop(nqn, None)
        self.update(targets=targets)

    def namespace_appears(self, nqn: str) -> None:
        """Create the block namespace of a connected ``nqn`` now, as a late udev/scan would."""
        world = self.world()
        tree = script.Tree(world)
        subsys = tree.subsystem_for(nqn)
        assert subsys is not None, f"{nqn} is not connected"
        ctrl = tree.virt_ctrl / tree.controllers_of(subsys)[0]
        address = script.Tree._read(ctrl / "address")
        fields = dict(p.split("=", 1) for p in address.split(","))
        export = world["targets"][f"{fields['traddr']}:{fields['trsvcid']}"][nqn]
        script.make_namespace(
            tree,
            subsys,
            ctrl,
            export,
            multipath=world["multipath"],
            instance=script.head_instance(world, subsys),
        )

    def set_host_identity(self, hostnqn: str | None, hostid: str | None) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        for name, value in (("hostnqn", hostnqn), ("hostid", hostid)):
            path = self.config_dir / name
            if value is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(value + "\n")

    # --- what happened -----------------------------------------------------------------------

    def calls(self, command: str | None = None) -> list[list[str]]:
        log = self.bin_dir / "nvme-calls.jsonl"
        if not log.exists():
            return []
        calls = [json.loads(line) for line in log.read_text().splitlines() if line]
        return [c for c in calls if command is None or (c and c[0] == command)]

    def controllers(self, nqn: str) -> list[pathlib.Path]:
        """The sysfs directories of every controller connected to ``nqn``."""
        return [
            ctrl.resolve()
            for ctrl in sorted((self.sysfs / "class" / "nvme").glob("nvme*"))
            if (ctrl / "subsysnqn").read_text().strip() == nqn
        ]

    def initiator(self, clock: Clock | None = None, **overrides: Any) -> NvmeCliInitiator:
        settings: dict[str, Any] = {
            "binary": str(self.binary),
            "sysfs_root": self.sysfs,
            "dev_root": self.dev,
            "config_dir": self.config_dir,
            "command_timeout": 10.0,
            "retry_delay": 5.0,
            "device_timeout": 2.0,
            "poll_interval": 0.05,
            "clock": clock or StepClock(),
        }
        settings.update(overrides)
        return NvmeCliInitiator(**settings)


def install_fake_nvme(root: pathlib.Path, **world: Any) -> FakeNvme:
    """Lay out ``root/{bin,sys,dev,etc/nvme}`` and the executable; ``world`` overrides defaults."""
    fake = FakeNvme(root)
    for directory in (fake.bin_dir, fake.sysfs, fake.dev, fake.config_dir):
        directory.mkdir(parents=True, exist_ok=True)
    fake.binary.write_text(f"#!{sys.executable}\n" + _SCRIPT.read_text())
    fake.binary.chmod(0o755)
    defaults: dict[str, Any] = {
        "sysfs": str(fake.sysfs),
        "dev": str(fake.dev),
        "targets": {},
        "unreachable": [],
        "json_exit_status": 0,
        "fail_connects": 0,
        "hang_connects": 0,
        "namespace_appears": True,
        "multipath": True,
        "discovery": True,
        "held": {},
    }
    defaults.update(world)
    (fake.bin_dir / "nvme-world.json").write_text(json.dumps(defaults, indent=1))
    return fake


@attrs.define
class StepClock(Clock):
    """
    A clock that never waits: ``sleep`` moves time on and records the nap, and may run a hook
    (to make a device appear "later", as udev would).
    """

    now: float = 1000.0
    sleeps: list[float] = attrs.field(factory=list)
    on_sleep: list[Any] = attrs.field(factory=list)

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        for hook in list(self.on_sleep):
            hook()
