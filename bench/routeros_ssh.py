"""
Benchmark (not a test): the SSH adapter against the emulator with an emulated network RTT.

Measures CreateVolume and DeleteVolume latency (p50/p99), 50 concurrent creates (wall time),
and SSH handshakes and command round trips per operation; once with the adapter's persistent
connection and once connecting for every command (the baseline), and prints the ratio.

    PYTHONPATH=src python bench/routeros_ssh.py [--rtt 0.020] [--count 40] [--concurrent 50]

The RTT is applied by a delay line in front of the emulator's SSH server, so every protocol
round trip (key exchange, authentication, channel open, exec) pays it, as on a real network.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from rds_csi.adapters.routeros_ssh import RouterOsSshBackend, SshSettings
from rds_csi.domain import DiskPath, Nqn, Size, Volume, VolumeId
from rds_csi.domain.size import GIB, TIB
from rds_csi.emulator import Emulator, EmulatorConfig
from rds_csi.entrypoints.container import open_ssh_backend


BASE = "/storage-pool/bench"
T = TypeVar("T")


def _volume() -> Volume:
    vid = VolumeId.from_name(f"bench-{uuid.uuid4()}")
    return Volume(vid, Size(GIB), DiskPath(BASE, vid), Nqn.for_volume(vid))


def _bind(call: Callable[[T], object], arg: T) -> Callable[[], object]:
    return lambda: call(arg)


def _quantile(samples: Sequence[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def _timed(calls: Sequence[Callable[[], object]]) -> list[float]:
    out = []
    for call in calls:
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def _concurrently(calls: Sequence[Callable[[], object]]) -> float:
    barrier = threading.Barrier(len(calls) + 1)
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} concurrent calls failed: {errors[0]}")
    return wall


def measure(backend: RouterOsSshBackend, count: int, concurrent: int) -> dict[str, float]:
    counters = backend.counters
    made = [_volume() for _ in range(count)]
    before = counters.snapshot()
    creates = _timed([_bind(backend.create_volume, v) for v in made])
    mid = counters.snapshot()
    deletes = _timed([_bind(backend.delete_volume, v.volume_id) for v in made])
    after = counters.snapshot()
    burst = [_volume() for _ in range(concurrent)]
    wall = _concurrently([_bind(backend.create_volume, v) for v in burst])
    for v in burst:
        backend.delete_volume(v.volume_id)
    return {
        "create p50 (ms)": 1000 * _quantile(creates, 50),
        "create p99 (ms)": 1000 * _quantile(creates, 99),
        "delete p50 (ms)": 1000 * _quantile(deletes, 50),
        "delete p99 (ms)": 1000 * _quantile(deletes, 99),
        f"{concurrent} concurrent creates (s)": wall,
        "handshakes / create": (mid["handshakes"] - before["handshakes"]) / count,
        "round trips / create": (mid["round_trips"] - before["round_trips"]) / count,
        "handshakes / delete": (after["handshakes"] - mid["handshakes"]) / count,
        "round trips / delete": (after["round_trips"] - mid["round_trips"]) / count,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtt", type=float, default=0.020, help="network round trip, seconds")
    parser.add_argument("--count", type=int, default=40, help="sequential creates and deletes")
    parser.add_argument("--concurrent", type=int, default=50)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rds-bench-") as tmp:
        root = pathlib.Path(tmp)
        emulator = Emulator(EmulatorConfig(data_dir=root / "rds", pool_size=Size(10 * TIB)))
        emulator.latency.rtt = args.rtt
        with emulator:
            client = emulator.provision_client(root / "client")
            results = {}
            for name, persistent in (("persistent", True), ("per-command", False)):
                settings = SshSettings.for_emulator(
                    host=client.host,
                    port=client.port,
                    user=client.user,
                    key_file=client.key_file,
                    known_hosts_file=client.known_hosts_file,
                    base_path=BASE,
                    persistent=persistent,
                )
                backend = open_ssh_backend(settings)
                try:
                    if persistent:
                        backend.check_health()  # warm: the steady state of a running driver
                    results[name] = measure(backend, args.count, args.concurrent)
                finally:
                    backend.close()
            logins = emulator.stats.logins
    fast, slow = results["persistent"], results["per-command"]
    print(
        f"RouterOS SSH adapter against the emulator, RTT {args.rtt * 1000:g} ms, "
        f"{args.count} sequential ops, {args.concurrent} concurrent creates "
        f"({logins} SSH logins in all)"
    )
    print(f"{'':32}{'persistent':>12}{'per-command':>13}{'ratio':>8}")
    for key in fast:
        ratio = slow[key] / fast[key] if fast[key] else float("inf")
        print(f"{key:32}{fast[key]:12.2f}{slow[key]:13.2f}{ratio:7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
