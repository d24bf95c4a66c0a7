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
import sys
import tempfile
from collections.abc import Sequence

from _timing import bind, concurrently, quantile, timed, volume

from rds_csi.adapters.routeros_ssh import RouterOsSshBackend, SshSettings
from rds_csi.domain import Size
from rds_csi.domain.size import TIB
from rds_csi.emulator import Emulator, EmulatorConfig
from rds_csi.entrypoints.container import open_ssh_backend


BASE = "/storage-pool/bench"


def measure(backend: RouterOsSshBackend, count: int, concurrent: int) -> dict[str, float]:
    counters = backend.counters
    made = [volume(BASE) for _ in range(count)]
    before = counters.snapshot()
    creates = timed([bind(backend.create_volume, v) for v in made])
    mid = counters.snapshot()
    deletes = timed([bind(backend.delete_volume, v.volume_id) for v in made])
    after = counters.snapshot()
    burst = [volume(BASE) for _ in range(concurrent)]
    wall = concurrently([bind(backend.create_volume, v) for v in burst])
    for v in burst:
        backend.delete_volume(v.volume_id)
    return {
        "create p50 (ms)": 1000 * quantile(creates, 50),
        "create p99 (ms)": 1000 * quantile(creates, 99),
        "delete p50 (ms)": 1000 * quantile(deletes, 50),
        "delete p99 (ms)": 1000 * quantile(deletes, 99),
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
