"""
The serve settings: one frozen, typed ``Settings``, its role sections, and their defaults.

Each option has one name (``rds_port``): the YAML key, the flag ``--rds-port`` and the variable
``RDS_CSI_RDS_PORT``. A section field's option name is the section's prefix plus the field's
name (``rds`` + ``port``). ``config.py`` reads the sources (flag > environment > YAML > default)
and structures them into ``Settings`` with the one converter defined here; every value is
checked by that converter's hook for the field's type, so a bad value fails at start, named.
"""

from __future__ import annotations

import enum
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Final, NewType

import attrs

from rds_csi.application.topology import Topology
from rds_csi.domain import Size
from rds_csi.domain.identity import DEFAULT_BASE_PATH, DEFAULT_NQN_PREFIX
from rds_csi.domain.model import DEFAULT_NVME_PORT
from rds_csi.domain.parameters import DEFAULT_SSH_PORT
from rds_csi.domain.size import GIB
from rds_csi.entrypoints.csi.identity import DEFAULT_DRIVER_NAME
from rds_csi.entrypoints.endpoint import Endpoint, parse_endpoint
from rds_csi.entrypoints.logs import LOG_FORMATS, LOG_LEVELS


__all__ = [
    "AUTO",
    "CHOICES",
    "DEFAULT_ENDPOINT",
    "ENV_PREFIX",
    "ControllerSettings",
    "EmulatorSettings",
    "MetricsSettings",
    "Mode",
    "NodeSettings",
    "RdsSettings",
    "RestUrl",
    "Settings",
]

ENV_PREFIX: Final = "RDS_CSI_"
# The README's trial path, writable without root; the manifests pass their own --endpoint.
DEFAULT_ENDPOINT: Final = "unix:///tmp/rds-csi/csi.sock"
AUTO: Final = "auto"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


class Mode(enum.Enum):
    """The subcommand: which CSI services this process serves."""

    CONTROLLER = "controller"
    NODE = "node"
    ALL = "all"


# Field types whose hook checks the value; the hook is the one place each rule is written.
Port = NewType("Port", int)
Count = NewType("Count", int)
Positive = NewType("Positive", int)  # a count of at least 1
Seconds = NewType("Seconds", float)
Interval = NewType("Interval", float)  # seconds, more than 0
Host = NewType("Host", str)  # an IP or DNS name; empty: unset
AbsolutePath = NewType("AbsolutePath", str)  # empty: unset
BasePath = NewType("BasePath", str)
BasePaths = NewType("BasePaths", str)  # comma-separated base paths; empty: none
NqnPrefix = NewType("NqnPrefix", str)
DriverName = NewType("DriverName", str)
NodeId = NewType("NodeId", str)
HostPort = NewType("HostPort", str)  # host:port; empty: off
RestUrl = NewType("RestUrl", str)  # https://host[:port]; empty: https://<rds address>
LogLevel = NewType("LogLevel", str)
LogFormat = NewType("LogFormat", str)
DataPlane = NewType("DataPlane", str)
BackendKind = NewType("BackendKind", str)
InitiatorKind = NewType("InitiatorKind", str)
SnapshotMethod = NewType("SnapshotMethod", str)
KubernetesKind = NewType("KubernetesKind", str)
KUBERNETES_KINDS: Final = (AUTO, "api", "fake")


def _backends() -> Sequence[str]:
    from rds_csi.entrypoints.container import backend_kinds  # noqa: PLC0415 - no cycle at import

    return backend_kinds()


def _initiators() -> Sequence[str]:
    from rds_csi.entrypoints.container import initiator_kinds  # noqa: PLC0415 - no cycle at import

    return initiator_kinds()


CHOICES: Final[Mapping[object, Callable[[], Sequence[str]]]] = {
    LogLevel: lambda: LOG_LEVELS,
    LogFormat: lambda: LOG_FORMATS,
    DataPlane: lambda: ("json", "nvmet", "auto"),
    BackendKind: _backends,
    InitiatorKind: _initiators,
    SnapshotMethod: lambda: ("file-copy", "copy-from"),
    KubernetesKind: lambda: KUBERNETES_KINDS,
}


def _help(text: str, *also_env: str) -> dict[str, object]:
    return {"help": text, "also_env": also_env}


METRICS_PORT: Final = 9809


@attrs.frozen
class MetricsSettings:
    address: HostPort = attrs.field(
        default=HostPort(AUTO),
        metadata=_help(
            "host:port of the Prometheus /metrics endpoint; empty disables it; auto: "
            f"127.0.0.1:{METRICS_PORT} for `all` (a trial on a workstation), :{METRICS_PORT} "
            "(every interface) otherwise"
        ),
    )

    def resolved(self, mode: Mode) -> str:
        """The address to bind: ``auto`` keeps a single-node trial's endpoint on loopback."""
        if self.address != AUTO:
            return self.address
        return f"127.0.0.1:{METRICS_PORT}" if mode is Mode.ALL else f":{METRICS_PORT}"


@attrs.frozen
class RdsSettings:
    """How the controller reaches a real RDS: over SSH (``--backend ssh``) or REST (``rest``)."""

    address: Host = attrs.field(
        default=Host("127.0.0.1"),
        metadata=_help("RDS control-plane address (SSH; default rdsAddress)"),
    )
    port: Port = attrs.field(default=Port(DEFAULT_SSH_PORT), metadata=_help("RDS SSH port"))
    user: str = attrs.field(default="admin", metadata=_help("RDS user (SSH and REST)"))
    ssh_key: AbsolutePath = attrs.field(
        default=AbsolutePath(""), metadata=_help("path of the SSH private key for the RDS")
    )
    known_hosts: AbsolutePath = attrs.field(
        default=AbsolutePath(""),
        metadata=_help("path of the known_hosts file that pins the RDS host key"),
    )
    insecure_ignore_host_key: bool = attrs.field(
        default=False, metadata=_help("skip host key verification (testing only)")
    )
    max_channels: Positive = attrs.field(
        default=Positive(8),
        metadata=_help(
            "SSH commands in flight at once on the one connection to the RDS; keep it well "
            "below what the RDS serves (one report saw ~19 hang): docs/testing-real-rds.md"
        ),
    )
    call_timeout: Interval = attrs.field(
        default=Interval(12.0),
        metadata=_help(
            "seconds one RDS operation may take, retries included, when the caller's gRPC "
            "deadline is later or absent (also with backend emulator); docs/deadlines.md"
        ),
    )
    rest_url: RestUrl = attrs.field(
        default=RestUrl(""),
        metadata=_help(
            "backend rest: https://host[:port] of the RDS web server (www-ssl); "
            "empty: https://<rds_address>"
        ),
    )
    rest_password_file: AbsolutePath = attrs.field(
        default=AbsolutePath(""),
        metadata=_help("backend rest: path of the file holding the RDS user's password"),
    )
    ca_file: AbsolutePath = attrs.field(
        default=AbsolutePath(""),
        metadata=_help(
            "backend rest: PEM file of the CA (or self-signed certificate) the RDS web server "
            "presents; empty: the system trust store"
        ),
    )
    insecure_skip_verify: bool = attrs.field(
        default=False,
        metadata=_help("backend rest: do not verify the RDS certificate (testing only)"),
    )


@attrs.frozen
class EmulatorSettings:
    """The embedded RouterOS emulator (``--backend emulator``)."""

    data_dir: str = attrs.field(
        default="",
        metadata=_help(
            "backend emulator: where its disk table and images live; empty: a temporary directory"
        ),
    )
    pool_size: Size = attrs.field(
        factory=lambda: Size(100 * GIB),
        metadata=_help("backend emulator: the size of its storage pool"),
    )
    data_plane: DataPlane = attrs.field(
        default=DataPlane("json"),
        metadata=_help(
            "backend emulator: how its exports reach nodes: json (an exports file, for the loop "
            "initiator), nvmet (also the kernel NVMe/TCP target; root), auto (nvmet where the "
            "kernel has it)"
        ),
    )
    data_address: Host = attrs.field(
        default=Host(""),
        metadata=_help(
            "backend emulator: the IP its kernel NVMe/TCP target listens on; empty: "
            "nvme_address, else rds_address"
        ),
    )
    copy_throughput: Count = attrs.field(
        default=Count(0),
        metadata=_help(
            "backend emulator: bytes per second of its /file copy and copy-from (snapshots, "
            "restores, clones); 0: as fast as the host, by reflink where it can"
        ),
    )


@attrs.frozen
class ControllerSettings:
    """The controller's defaults for StorageClass parameters, and the in-memory RDS."""

    volume_path: BasePath = attrs.field(
        default=BasePath(DEFAULT_BASE_PATH), metadata=_help("default base directory of disk files")
    )
    other_volume_paths: BasePaths = attrs.field(
        default=BasePaths(""),
        metadata=_help(
            "comma-separated volumePaths of other StorageClasses: a delete whose disk entry is "
            "already gone looks for the image under each, the default and every one seen"
        ),
    )
    nqn_prefix: NqnPrefix = attrs.field(
        default=NqnPrefix(DEFAULT_NQN_PREFIX),
        metadata=_help("default NQN prefix of exported disks"),
    )
    nvme_address: Host = attrs.field(
        default=Host(""),
        metadata=_help("default data-plane (NVMe/TCP) address; empty: rds_address"),
    )
    nvme_port: Port = attrs.field(
        default=Port(DEFAULT_NVME_PORT), metadata=_help("default NVMe/TCP port")
    )
    fake_rds_latency: Seconds = attrs.field(
        default=Seconds(0.0),
        metadata=_help(
            "seconds every call to the in-memory RDS sleeps (backend fake; demos and tests)"
        ),
    )
    kubernetes: KubernetesKind = attrs.field(
        default=KubernetesKind(AUTO),
        metadata=_help(
            "the cluster the controller reads VolumeAttachments from and tells Events: api "
            "(the Kubernetes API), fake (in memory: the node ID is the one node); auto: fake "
            "for `all` outside a cluster without KUBECONFIG, api otherwise"
        ),
    )
    kubeconfig: AbsolutePath = attrs.field(
        default=AbsolutePath(""),
        metadata=_help(
            "kubeconfig file for kubernetes api; empty: $KUBECONFIG, else the in-cluster "
            "service account"
        ),
    )
    namespace: str = attrs.field(
        default="",
        metadata=_help(
            "the controller's namespace (Events about cluster-scoped objects go there); "
            "empty: default",
            "POD_NAMESPACE",
        ),
    )
    kubernetes_state_file: AbsolutePath = attrs.field(
        default=AbsolutePath(""),
        metadata=_help(
            "kubernetes fake: keep the in-memory cluster in this JSON file (tests play the "
            "attacher through it)"
        ),
    )
    attachment_resync: Seconds = attrs.field(
        default=Seconds(300.0),
        metadata=_help("seconds between full rebuilds of attachments from VolumeAttachments"),
    )
    stale_attachment_interval: Seconds = attrs.field(
        default=Seconds(60.0),
        metadata=_help(
            "seconds between checks for attachments on deleted or long NotReady nodes "
            "(reported, never detached); 0 disables"
        ),
    )
    stale_node_grace: Seconds = attrs.field(
        default=Seconds(300.0),
        metadata=_help("seconds a node may be NotReady before its attachments are reported stale"),
    )
    orphan_interval: Seconds = attrs.field(
        default=Seconds(600.0),
        metadata=_help(
            "seconds between checks for orphan disks (ours, with no PersistentVolume); 0 disables"
        ),
    )
    orphan_grace: Seconds = attrs.field(
        default=Seconds(900.0),
        metadata=_help(
            "seconds a disk must be seen without a PersistentVolume before it is an orphan "
            "(a CreateVolume makes the disk before its PV exists)"
        ),
    )
    orphan_delete: bool = attrs.field(
        default=False,
        metadata=_help("delete orphan disks the reconciler finds (default: only report them)"),
    )
    breaker_failures: Positive = attrs.field(
        default=Positive(5),
        metadata=_help(
            "consecutive failures to reach the RDS that open the circuit breaker (calls then "
            "fail fast with UNAVAILABLE)"
        ),
    )
    breaker_reset_timeout: Interval = attrs.field(
        default=Interval(30.0),
        metadata=_help("seconds the open circuit waits before one call may try the RDS again"),
    )
    health_interval: Interval = attrs.field(
        default=Interval(10.0),
        metadata=_help("seconds between the background RDS health checks Probe answers from"),
    )
    snapshot_method: SnapshotMethod = attrs.field(
        default=SnapshotMethod("file-copy"),
        metadata=_help(
            "how a snapshot, restore or clone copies a disk image on the RDS: file-copy "
            "(/file copy, then /disk add on the copy) or copy-from (/disk add copy-from=, as "
            "the Go driver does); neither is verified on hardware (docs/snapshots.md)"
        ),
    )
    capacity_interval: Interval = attrs.field(
        default=Interval(60.0),
        metadata=_help(
            "seconds between the background refreshes of the pool capacity metrics (scrapes "
            "never ask the RDS)"
        ),
    )


@attrs.frozen
class NodeSettings:
    node_id: NodeId = attrs.field(
        factory=lambda: NodeId(socket.gethostname()),  # at resolution, never at import
        metadata=_help("this node's ID (default: the hostname)", "NODE_ID"),
    )
    max_volumes_per_node: Count = attrs.field(
        default=Count(0),
        metadata=_help("attach limit reported to Kubernetes; 0 lets it decide"),
    )
    nvme_binary: str = attrs.field(
        default="nvme", metadata=_help("the nvme-cli executable (initiator nvme)")
    )
    sysfs_root: AbsolutePath = attrs.field(
        default=AbsolutePath("/sys"),
        metadata=_help("where sysfs is mounted (initiator nvme reads NVMe state there)"),
    )
    kubelet_dir: AbsolutePath = attrs.field(
        default=AbsolutePath("/var/lib/kubelet"),
        metadata=_help(
            "kubelet's directory: every staging and target path must resolve (symlinks "
            "included) strictly below it"
        ),
    )
    loop_exports_file: AbsolutePath = attrs.field(
        default=AbsolutePath(""),
        metadata=_help(
            "the emulator's <data-dir>/nvme-exports.json (initiator loop; default with the "
            "embedded emulator: its own)"
        ),
    )
    loop_records_dir: AbsolutePath = attrs.field(
        default=AbsolutePath(""),
        metadata=_help(
            "initiator loop: this node's own record of the loop devices it attached; it then "
            "uses and detaches only those (several node processes on one host, each its own "
            "device on a shared image); empty: shared, beside the exports file"
        ),
    )


@attrs.frozen
class Settings:
    """Everything ``rds-csi controller|node|all`` is configured with, checked."""

    endpoint: Endpoint = attrs.field(
        factory=lambda: parse_endpoint(DEFAULT_ENDPOINT),
        metadata=_help(
            "where to serve CSI: unix:///path/csi.sock (or tcp://host:port for debugging)",
            "CSI_ENDPOINT",
        ),
    )
    driver_name: DriverName = attrs.field(
        default=DriverName(DEFAULT_DRIVER_NAME),
        metadata=_help("the CSI driver name (the Go driver's default)"),
    )
    log_level: LogLevel = attrs.field(default=LogLevel("info"), metadata=_help("log level"))
    log_format: LogFormat = attrs.field(
        default=LogFormat("text"), metadata=_help("log line format")
    )
    shutdown_grace: Seconds = attrs.field(
        default=Seconds(10.0), metadata=_help("seconds in-flight calls get on SIGTERM")
    )
    identity_workers: Positive = attrs.field(
        default=Positive(4),
        metadata=_help(
            "gRPC workers kept for Identity calls (Probe) alone, so they never queue behind "
            "controller or node work"
        ),
    )
    backend: BackendKind = attrs.field(
        default=BackendKind(AUTO),
        metadata=_help(
            "the storage backend: ssh or rest (a real RDS over SSH or HTTPS), emulator or "
            "emulator-rest (embedded, over SSH or HTTPS), fake (in memory); auto: emulator for "
            "`all`, ssh otherwise"
        ),
    )
    initiator: InitiatorKind = attrs.field(
        default=InitiatorKind(AUTO),
        metadata=_help(
            "the node's initiator: nvme (nvme-cli), loop (the emulator's images as loop "
            "devices), fake (in memory); auto: loop for `all` on an emulator, fake on backend "
            "fake, nvme otherwise"
        ),
    )
    topology: Topology = attrs.field(
        factory=Topology,
        metadata=_help(
            "a topology segment key=value (repeatable); enables VOLUME_ACCESSIBILITY_CONSTRAINTS"
        ),
    )
    metrics: MetricsSettings = attrs.field(factory=MetricsSettings, metadata={"prefix": "metrics_"})
    rds: RdsSettings = attrs.field(factory=RdsSettings, metadata={"prefix": "rds_"})
    emulator: EmulatorSettings = attrs.field(
        factory=EmulatorSettings, metadata={"prefix": "emulator_"}
    )
    controller: ControllerSettings = attrs.field(
        factory=ControllerSettings, metadata={"prefix": ""}
    )
    node: NodeSettings = attrs.field(factory=NodeSettings, metadata={"prefix": ""})
