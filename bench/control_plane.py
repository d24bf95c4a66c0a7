"""
Benchmark (not a test): the two control planes, SSH and REST, against the emulator.

For each injected network RTT (default 0 and 20 ms) and each plane: create, delete and list
latency (p50/p99 over ``--count`` sequential operations on a warm connection), round trips and
handshakes per operation, and the wall time of ``--concurrent`` creates at once.

    PYTHONPATH=src python bench/control_plane.py [--rtt 0 --rtt 0.020] [--count 40] \\
        [--concurrent 32] [--listed 50]

The RTT is applied by the emulator's delay line in front of both servers (every TCP byte pays
half of it each way), so SSH channel opens and TLS handshakes cost what they would on a network.
``list`` runs with ``--listed`` volumes on the RDS.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Protocol

from _timing import bind, concurrently, quantile, timed, volume

from rds_csi.domain import Size, Volume, VolumeId
from rds_csi.domain.size import TIB
from rds_csi.emulator import Emulator, EmulatorConfig
from rds_csi.entrypoints.container import open_ssh_backend
from rds_csi.entrypoints.rds_wiring import emulator_ssh_settings
from rds_csi.entrypoints.rest_wiring import emulator_rest_settings, open_rest_backend


BASE = "/storage-pool/bench"


class _Counted(Protocol):
    def snapshot(self) -> dict[str, int]: ...


class _Backend(Protocol):
    @property
    def counters(self) -> _Counted: ...

    def create_volume(self, volume: Volume) -> Volume: ...

    def delete_volume(self, volume_id: VolumeId) -> None: ...

    def list_volumes(self) -> Sequence[Volume]: ...

    def check_health(self) -> None: ...

    def close(self) -> None: ...


def _per_op(before: dict[str, int], after: dict[str, int], key: str, count: int) -> float:
    return (after[key] - before[key]) / count


def measure(backend: _Backend, count: int, concurrent: int, listed: int) -> dict[str, float]:
    counters = backend.counters
    made = [volume(BASE) for _ in range(count)]
    c0 = counters.snapshot()
    creates = timed([bind(backend.create_volume, v) for v in made])
    c1 = counters.snapshot()
    deletes = timed([bind(backend.delete_volume, v.volume_id) for v in made])
    c2 = counters.snapshot()
    kept = [volume(BASE) for _ in range(listed)]
    for v in kept:
        backend.create_volume(v)
    c3 = counters.snapshot()
    lists = timed([backend.list_volumes for _ in range(count)])
    c4 = counters.snapshot()
    for v in kept:
        backend.delete_volume(v.volume_id)
    burst = [volume(BASE) for _ in range(concurrent)]
    c5 = counters.snapshot()
    wall = concurrently([bind(backend.create_volume, v) for v in burst])
    c6 = counters.snapshot()
    for v in burst:
        backend.delete_volume(v.volume_id)
    return {
        "create p50 (ms)": 1000 * quantile(creates, 50),
        "create p99 (ms)": 1000 * quantile(creates, 99),
        "delete p50 (ms)": 1000 * quantile(deletes, 50),
        "delete p99 (ms)": 1000 * quantile(deletes, 99),
        f"list p50 (ms, {listed} vols)": 1000 * quantile(lists, 50),
        f"list p99 (ms, {listed} vols)": 1000 * quantile(lists, 99),
        "round trips / create": _per_op(c0, c1, "round_trips", count),
        "round trips / delete": _per_op(c1, c2, "round_trips", count),
        "round trips / list": _per_op(c3, c4, "round_trips", count),
        "handshakes / create": _per_op(c0, c1, "handshakes", count),
        f"{concurrent} concurrent creates (s)": wall,
        f"handshakes in {concurrent} creates": float(c6["handshakes"] - c5["handshakes"]),
    }


def _planes(emulator: Emulator) -> dict[str, Callable[[], _Backend]]:
    ssh = emulator_ssh_settings(emulator, BASE)
    rest = emulator_rest_settings(emulator, BASE)
    return {
        "SSH": lambda: open_ssh_backend(ssh),
        "REST": lambda: open_rest_backend(rest),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rtt", type=float, action="append", help="network round trip, seconds (repeatable)"
    )
    parser.add_argument("--count", type=int, default=40, help="sequential operations of each kind")
    parser.add_argument("--concurrent", type=int, default=32)
    parser.add_argument("--listed", type=int, default=50, help="volumes on the RDS during list")
    args = parser.parse_args(argv)
    rtts = args.rtt or [0.0, 0.020]
    results: dict[str, dict[str, float]] = {}
    for rtt in rtts:
        with tempfile.TemporaryDirectory(prefix="rds-bench-") as tmp:
            root = pathlib.Path(tmp)
            emulator = Emulator(
                EmulatorConfig(
                    data_dir=root / "rds",
                    pool_size=Size(100 * TIB),
                    rest_listen=("127.0.0.1", 0),
                )
            )
            emulator.latency.rtt = rtt
            with emulator:
                for plane, opener in _planes(emulator).items():
                    backend = opener()
                    try:
                        backend.check_health()  # warm: the steady state of a running driver
                        results[f"{plane} {rtt * 1000:g}ms"] = measure(
                            backend, args.count, args.concurrent, args.listed
                        )
                    finally:
                        backend.close()
    columns = list(results)
    print(
        f"Control planes against the emulator: {args.count} sequential ops of each kind, "
        f"{args.concurrent} concurrent creates, warm connections"
    )
    print(f"| {'':30} | " + " | ".join(f"{c:>11}" for c in columns) + " |")
    print(f"|{'-' * 32}|" + "|".join("-" * 13 for _ in columns) + "|")
    for key in results[columns[0]]:
        cells = " | ".join(f"{results[c][key]:11.2f}" for c in columns)
        print(f"| {key:30} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
