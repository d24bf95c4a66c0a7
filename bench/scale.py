"""
How the emulator's costs grow with the number of disks (issue 15).

For each pool size in ``--sizes`` (default 10, 1,000 and 10,000 disks): fill a fresh data
directory with that many disks (the disk table and sparse images written directly, as a
long-lived RDS would hold them), start the emulator in-process, then time the driver's own
command lines run through the emulator's console (no SSH, so the figure is the emulator's):
create (find, add, print), get (print by slot) and delete (find, remove). Last, ListVolumes of
the largest pool through the real SSH adapter over loopback.

Prints median milliseconds; asserts nothing.

    PYTHONPATH=src python bench/scale.py [--sizes 10,1000,10000] [--ops 20]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable

from rds_csi.adapters.routeros_ssh import SshSettings, commands
from rds_csi.domain import DiskPath, Nqn, Size, Volume, VolumeId
from rds_csi.domain.size import GIB, MIB, TIB
from rds_csi.emulator import Emulator, EmulatorConfig
from rds_csi.emulator.console import Console
from rds_csi.entrypoints.rds_wiring import open_ssh_backend


BASE = "/storage-pool/scale"
POOL = 100 * TIB
MARK = commands.new_marker()


def _volume(size: int = GIB) -> Volume:
    vid = VolumeId.from_name(f"scale-{uuid.uuid4()}")
    return Volume(vid, Size(size), DiskPath(BASE, vid), Nqn.for_volume(vid))


def _fill(data_dir: pathlib.Path, count: int) -> None:
    """``count`` exported disks of 1 MiB, in the table format the emulator has always read."""
    rows = []
    for i in range(count):
        volume = _volume(MIB)
        image = data_dir / volume.path.value.strip("/")
        image.parent.mkdir(parents=True, exist_ok=True)
        with image.open("wb") as f:
            f.truncate(MIB)
        rows.append(
            {
                "id": i + 2,
                "slot": str(volume.volume_id),
                "file_path": volume.path.value,
                "nvme_tcp_export": True,
                "nvme_tcp_server_port": 4420,
                "nvme_tcp_server_nqn": volume.nqn.value,
                "mount_filesystem": False,
            }
        )
    (data_dir / "disks.json").write_text(
        json.dumps({"version": 1, "next_id": count + 2, "disks": rows})
    )


def _median_ms(calls: list[Callable[[], object]]) -> float:
    samples = []
    for call in calls:
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _run(console: Console, line: str) -> None:
    out, ok = console.run(line)
    if not ok:
        raise SystemExit(f"{line!r} failed: {out}")


def _costs(root: pathlib.Path, count: int, ops: int) -> tuple[float, float, float, float]:
    data_dir = root / f"rds-{count}"
    _fill(data_dir, count)
    started = time.perf_counter()
    emulator = Emulator(EmulatorConfig(data_dir=data_dir, pool_size=Size(POOL)))
    load = (time.perf_counter() - started) * 1000
    console = Console(emulator.state, dialect=emulator.config.dialect)
    made = [_volume() for _ in range(ops)]
    create = _median_ms(
        [
            (lambda v=v: _run(console, commands.create_disk(v, MARK).render()))  # type: ignore[misc]
            for v in made
        ]
    )
    get = _median_ms(
        [
            (lambda v=v: _run(console, commands.print_disk(v.volume_id, MARK).render()))  # type: ignore[misc]
            for v in made
        ]
    )
    delete = _median_ms(
        [
            (
                lambda v=v: _run(  # type: ignore[misc]
                    console, commands.delete_disk(v.volume_id, [v.path], MARK).render()
                )
            )
            for v in made
        ]
    )
    return load, create, get, delete


def _list_over_ssh(root: pathlib.Path, count: int) -> tuple[float, int]:
    data_dir = root / f"rds-{count}"
    with Emulator(EmulatorConfig(data_dir=data_dir, pool_size=Size(POOL))) as emulator:
        client = emulator.provision_client(root / "client")
        backend = open_ssh_backend(
            SshSettings.for_emulator(
                host=client.host,
                port=client.port,
                user=client.user,
                key_file=client.key_file,
                known_hosts_file=client.known_hosts_file,
                base_path=BASE,
            )
        )
        try:
            backend.check_health()  # the connection is up, as in a running driver
            samples = []
            for _ in range(3):
                started = time.perf_counter()
                found = len(backend.list_volumes())
                samples.append((time.perf_counter() - started) * 1000)
        finally:
            backend.close()
    return statistics.median(samples), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--ops", type=int, default=20)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="rds-csi-scale-") as tmp:
        root = pathlib.Path(tmp)
        rows = {n: _costs(root, n, args.ops) for n in sizes}
        listed, found = _list_over_ssh(root, sizes[-1])
    print(f"emulator console, median ms of {args.ops} ops per pool size")
    print(f"{'disks':>7}{'load':>10}{'create':>10}{'get':>10}{'delete':>10}")
    for n, (load, create, get, delete) in rows.items():
        print(f"{n:>7}{load:>10.1f}{create:>10.2f}{get:>10.2f}{delete:>10.2f}")
    first, last = rows[sizes[0]], rows[sizes[-1]]
    print(
        f"ratio {sizes[-1]} / {sizes[0]} disks: create {last[1] / first[1]:.2f}x, "
        f"get {last[2] / first[2]:.2f}x (goal <= 1.2x)"
    )
    print(
        f"ListVolumes through the SSH adapter, {found} of {sizes[-1]} disks: "
        f"{listed:.0f} ms median of 3 (goal <= 1000)"
    )


if __name__ == "__main__":
    main()
