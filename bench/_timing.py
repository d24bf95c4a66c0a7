"""Timing helpers the control-plane benches share: sequential samples, a concurrent burst."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from rds_csi.domain import DiskPath, Nqn, Size, Volume, VolumeId
from rds_csi.domain.size import GIB


T = TypeVar("T")


def volume(base: str) -> Volume:
    """A new 1 GiB volume under ``base`` with a unique name."""
    vid = VolumeId.from_name(f"bench-{uuid.uuid4()}")
    return Volume(vid, Size(GIB), DiskPath(base, vid), Nqn.for_volume(vid))


def bind(call: Callable[[T], object], arg: T) -> Callable[[], object]:
    return lambda: call(arg)


def quantile(samples: Sequence[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def timed(calls: Sequence[Callable[[], object]]) -> list[float]:
    """Each call's wall time, one after the other."""
    out = []
    for call in calls:
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def concurrently(calls: Sequence[Callable[[], object]]) -> float:
    """The wall time of every call started at once, each on its own thread."""
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
