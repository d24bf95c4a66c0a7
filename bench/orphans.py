"""
Orphan figures: one reconciler pass over N disks, half of them without a PersistentVolume,
on the in-memory RDS with the cluster in memory and with the official client listing PVs over
loopback HTTP (the API server's JSON decoded as in a cluster). The RDS's own listing is not in
these figures: over SSH it is one ``/disk print detail`` (see ``bench/routeros_ssh.py``).

    PYTHONPATH=src:. python bench/orphans.py [--disks 5000]
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import tempfile
import time

from tests.support import kube_apiserver as k

from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.adapters.kubernetes import ApiKubernetes, FakeKubernetes, api_client
from rds_csi.application.kubernetes import Kubernetes, PersistentVolumeInfo
from rds_csi.application.orphans import FindOrphans, OrphanReconciler, Sightings
from rds_csi.domain import DiskPath, Nqn, Size, Volume, VolumeId
from rds_csi.domain.identity import DEFAULT_NQN_PREFIX
from rds_csi.domain.size import GIB, TIB


DRIVER = "rds.csi.srvlab.io"


class _Clock:
    now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _rds(disks: int) -> tuple[InMemoryRds, list[str]]:
    rds = InMemoryRds(pool_size=Size(100 * TIB))
    ids = []
    for i in range(disks):
        vid = VolumeId.from_name(f"d{i}")
        path = DiskPath.parse(f"/storage-pool/metal-csi/{vid}.img")
        rds.create_volume(Volume(vid, Size(GIB), path, Nqn.for_volume(vid)))
        ids.append(str(vid))
    return rds, ids


def _pass(rds: InMemoryRds, cluster: Kubernetes) -> tuple[float, int]:
    clock = _Clock()
    find = FindOrphans(nqn_prefix=DEFAULT_NQN_PREFIX, backend=rds, kubernetes=cluster)
    reconciler = OrphanReconciler(find, Sightings(clock, 0.0), interval=60)
    started = time.perf_counter()
    found = reconciler.check()
    return time.perf_counter() - started, len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--disks", type=int, default=5000)
    args = parser.parse_args()
    logging.getLogger("rds_csi").setLevel(logging.ERROR)  # one warning per orphan otherwise
    rds, ids = _rds(args.disks)
    owned = ids[: len(ids) // 2]

    memory = FakeKubernetes()
    for i, vid in enumerate(owned):
        memory.put_persistent_volume(PersistentVolumeInfo(f"pv{i}", vid))
    took, found = _pass(rds, memory)
    print(f"orphan pass over {args.disks} disks, cluster in memory: {took:.3f} s ({found} found)")

    running = k.serve_api()
    for i, vid in enumerate(owned):
        running.api.put("persistentvolumes", k.persistent_volume(f"pv{i}", DRIVER, vid))
    with tempfile.TemporaryDirectory() as tmp:
        config = k.write_kubeconfig(pathlib.Path(tmp) / "kubeconfig", running.url)
        port = ApiKubernetes(api_client(str(config)), DRIVER)
        took, found = _pass(rds, port)
        port.close()
    running.close()
    print(
        f"orphan pass over {args.disks} disks, official client over loopback HTTP: "
        f"{took:.3f} s ({found} found)"
    )


if __name__ == "__main__":
    main()
