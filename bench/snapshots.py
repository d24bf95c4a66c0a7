"""
Benchmark (not a test): snapshots, restores and clones through the SSH adapter (or, with
``--plane rest``, the REST adapter) against the emulator, whose copies are real (reflink
where the data directory's filesystem has them, else a sparse copy of the data extents).

For each copy method: a 1 GiB volume with 512 MiB of random data written, then the time and
round trips of CreateSnapshot's copy, a restore into a new 1 GiB volume, a clone, and the
deletes; over SSH the command lines each operation sends are printed once. Round trips are
exec lines over SSH, HTTP requests over REST.

    PYTHONPATH=src python bench/snapshots.py [--data-dir DIR] [--written-mib 512] [--plane rest]

``--data-dir`` picks the filesystem (a btrfs or xfs directory reflinks; tmpfs and ext4 copy).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from rds_csi.adapters.routeros_rest import RouterOsRestBackend
from rds_csi.adapters.routeros_rest.snapshots import RouterOsRestSnapshots
from rds_csi.adapters.routeros_ssh import RouterOsSshBackend, SshSettings, commands
from rds_csi.adapters.routeros_ssh.snapshots import RouterOsSnapshots
from rds_csi.domain import DiskPath, Nqn, Size, SnapshotId, Volume, VolumeId
from rds_csi.domain.size import GIB, MIB
from rds_csi.emulator import Emulator, EmulatorConfig
from rds_csi.emulator.copying import copy_image
from rds_csi.entrypoints.container import open_ssh_backend
from rds_csi.entrypoints.rest_wiring import emulator_rest_settings, open_rest_backend


BASE = "/storage-pool/bench"
T = TypeVar("T")
Backend = RouterOsSshBackend | RouterOsRestBackend


def _volume(size: int = GIB) -> Volume:
    vid = VolumeId.from_name(f"bench-{uuid.uuid4()}")
    return Volume(vid, Size(size), DiskPath(BASE, vid), Nqn.for_volume(vid))


def _measure(backend: Backend, call: Callable[[], T]) -> tuple[T, float, int]:
    before = backend.counters.snapshot()["round_trips"]
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    return result, seconds, backend.counters.snapshot()["round_trips"] - before


def _copy_mode(directory: pathlib.Path) -> str:
    src, dst = directory / "probe-src", directory / "probe-dst"
    src.write_bytes(b"x" * 4096)
    try:
        return copy_image(src, dst)
    finally:
        src.unlink()
        dst.unlink(missing_ok=True)


def _write_data(emulator: Emulator, volume: Volume, mib: int) -> None:
    disk = emulator.state.by_slot(volume.volume_id.value)
    assert disk is not None
    chunk = os.urandom(MIB)
    with emulator.state.disk_image(disk).open("r+b") as f:
        for i in range(mib):
            f.seek(i * 2 * MIB if mib <= GIB // (2 * MIB) else i * MIB)  # spread: holes between
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())


def _scripts(method: str) -> None:
    source = _volume()
    sid = SnapshotId.for_name("nightly", source.volume_id)
    restored = _volume()
    marker = "rds-csi-end-0123456789abcdef"
    print(f"\n  command lines ({method}):")
    lines = {
        "CreateSnapshot (1 exec)": commands.create_snapshot(sid, source, method, marker),
        "DeleteSnapshot (1 exec)": commands.delete_snapshot(sid, marker),
        "ListSnapshots (1 exec)": commands.list_snapshots(marker),
        "restore, after a print of the snapshot (1 exec)": commands.populate_disk(
            restored, sid.value, f"{BASE}/{sid}.img", method, marker
        ),
    }
    for name, script in lines.items():
        print(f"    {name}:\n      {script.render()}")


def _bench_method(
    backend: Backend, emulator: Emulator, method: str, written_mib: int
) -> list[tuple[str, float, int]]:
    snaps: RouterOsSnapshots | RouterOsRestSnapshots
    if isinstance(backend, RouterOsRestBackend):
        snaps = RouterOsRestSnapshots(backend, method=method)
    else:
        snaps = RouterOsSnapshots(backend, method=method)
    source = backend.create_volume(_volume())
    _write_data(emulator, source, written_mib)
    sid = SnapshotId.for_name(f"bench-{method}", source.volume_id)
    rows = []
    snap, t, rt = _measure(backend, lambda: snaps.create_snapshot(sid, source))
    rows.append((f"snapshot (copy 1 GiB, {written_mib} MiB data)", t, rt))
    _, t, rt = _measure(backend, lambda: snaps.get_snapshot(sid))
    rows.append(("get snapshot", t, rt))
    _, t, rt = _measure(backend, snaps.list_snapshots)
    rows.append(("list snapshots", t, rt))
    wanted = _volume()
    restored, t, rt = _measure(backend, lambda: snaps.restore_snapshot(sid, wanted))
    rows.append(("restore into a new 1 GiB volume", t, rt))
    copy = _volume()
    clone, t, rt = _measure(backend, lambda: snaps.clone_volume(source.volume_id, copy))
    rows.append(("clone the volume", t, rt))
    _, t, rt = _measure(backend, lambda: snaps.delete_snapshot(sid))
    rows.append(("delete snapshot", t, rt))
    for v in (source, restored, clone):
        backend.delete_volume(v.volume_id)
    assert snap.size == Size(GIB)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=pathlib.Path, default=None)
    parser.add_argument("--written-mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3, help="runs per method (medians shown)")
    parser.add_argument("--plane", choices=("ssh", "rest"), default="ssh")
    args = parser.parse_args()
    root = pathlib.Path(tempfile.mkdtemp(prefix="bench-snap-", dir=args.data_dir))
    print(f"emulator data in {root} ({_copy_mode(root)} copies on this filesystem)")
    rest = args.plane == "rest"
    emulator = Emulator(
        EmulatorConfig(
            data_dir=root / "rds",
            pool_size=Size(64 * GIB),
            rest_listen=("127.0.0.1", 0) if rest else None,
        )
    )
    emulator.start()
    backend: Backend
    if rest:
        backend = open_rest_backend(emulator_rest_settings(emulator, BASE, read_timeout=600.0))
    else:
        client = emulator.provision_client(root / "client")
        settings = SshSettings.for_emulator(
            host=client.host,
            port=client.port,
            user=client.user,
            key_file=client.key_file,
            known_hosts_file=client.known_hosts_file,
            base_path=BASE,
            command_timeout=600.0,
        )
        backend = open_ssh_backend(settings)
    try:
        backend.check_health()  # the handshake, outside the figures
        for method in commands.SNAPSHOT_METHODS:
            runs = [
                _bench_method(backend, emulator, method, args.written_mib)
                for _ in range(args.repeat)
            ]
            print(f"\n{method}: median of {args.repeat} (adapter calls; see docs for use cases)")
            for i, (name, _, trips) in enumerate(runs[0]):
                times = sorted(run[i][1] for run in runs)
                print(
                    f"  {name:40s} {statistics.median(times) * 1000:9.1f} ms "
                    f"(min {times[0] * 1000:.1f}, max {times[-1] * 1000:.1f})  "
                    f"{trips} round trip(s)"
                )
            if not rest:
                _scripts(method)
    finally:
        backend.close()
        emulator.close()


if __name__ == "__main__":
    main()
