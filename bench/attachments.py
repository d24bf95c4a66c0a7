"""
Attachment figures: how long a rebuild from N VolumeAttachments takes, and a publish/unpublish
pair on the in-memory RDS and cluster (the controller's own cost, no network).

The rebuild is what a controller does at start and on every resync, before it answers a
publish; the loopback figure adds the official client's list over HTTP and JSON decoding.

    PYTHONPATH=src:. python bench/attachments.py [--volumes 5000] [--pairs 2000]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import tempfile
import time

from tests.support import kube_apiserver as k

from rds_csi.adapters.clock import SystemClock
from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.adapters.kubernetes import ApiKubernetes, FakeKubernetes, api_client
from rds_csi.application.attachment import AttachmentState, PublishVolume, UnpublishVolume
from rds_csi.application.attachment_sync import AttachmentSync
from rds_csi.application.kubernetes import PersistentVolumeInfo, VolumeAttachmentInfo
from rds_csi.application.locks import KeyedLocks
from rds_csi.application.provisioning import CreateVolume
from rds_csi.domain import CapacityRange, Size, VolumeCapability, VolumeId, VolumeParameters
from rds_csi.domain.size import GIB, TIB


DRIVER = "rds.csi.srvlab.io"


def _rebuild_fake(volumes: int) -> float:
    cluster = FakeKubernetes()
    for i in range(volumes):
        vid = str(VolumeId.from_name(f"v{i}"))
        cluster.put_persistent_volume(PersistentVolumeInfo(f"pv{i}", vid, ("ReadWriteOnce",)))
        cluster.put_volume_attachment(
            VolumeAttachmentInfo(f"va{i}", f"pv{i}", f"n{i % 50}", attached=True)
        )
    sync = AttachmentSync(cluster, AttachmentState(SystemClock()), default_timeout=300)
    started = time.perf_counter()
    sync.rebuild()
    return time.perf_counter() - started


def _rebuild_loopback(volumes: int) -> float:
    running = k.serve_api()
    for i in range(volumes):
        vid = str(VolumeId.from_name(f"v{i}"))
        running.api.put("persistentvolumes", k.persistent_volume(f"pv{i}", DRIVER, vid))
        running.api.put(
            "volumeattachments",
            k.volume_attachment(f"va{i}", DRIVER, f"pv{i}", f"n{i % 50}", attached=True),
        )
    with tempfile.TemporaryDirectory() as tmp:
        config = k.write_kubeconfig(pathlib.Path(tmp) / "kubeconfig", running.url)
        port = ApiKubernetes(api_client(str(config)), DRIVER)
        sync = AttachmentSync(port, AttachmentState(SystemClock()), default_timeout=300)
        started = time.perf_counter()
        sync.rebuild()
        took = time.perf_counter() - started
        port.close()
    running.close()
    return took


def _publish_pairs(pairs: int) -> list[float]:
    rds = InMemoryRds(pool_size=Size(100 * TIB))
    clock = SystemClock()
    locks = KeyedLocks()
    defaults = VolumeParameters(rds_address="10.0.0.1")
    cap = VolumeCapability.mount()
    created = CreateVolume(rds, locks, defaults)("bench", CapacityRange(required=GIB), [cap], {})
    vid = str(created.volume.volume_id)
    state = AttachmentState(clock)
    cluster = FakeKubernetes(["a"])
    publish = PublishVolume(rds, state, locks, clock, defaults=defaults, kubernetes=cluster)
    unpublish = UnpublishVolume(state, locks, clock, kubernetes=cluster)
    times = []
    for _ in range(pairs):
        started = time.perf_counter()
        publish(vid, "a", cap, {})
        unpublish(vid, "a")
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--volumes", type=int, default=5000)
    parser.add_argument("--pairs", type=int, default=2000)
    args = parser.parse_args()
    memory = _rebuild_fake(args.volumes)
    print(f"rebuild from {args.volumes} VolumeAttachments, in memory: {memory:.3f} s")
    print(
        f"rebuild from {args.volumes} VolumeAttachments, official client over loopback HTTP: "
        f"{_rebuild_loopback(args.volumes):.3f} s"
    )
    times = sorted(_publish_pairs(args.pairs))
    print(
        f"publish+unpublish pair ({args.pairs}x): median {statistics.median(times) * 1e6:.0f} us, "
        f"p99 {times[int(len(times) * 0.99) - 1] * 1e6:.0f} us"
    )


if __name__ == "__main__":
    main()
