"""The NVMe/TCP initiator on nvme-cli, with sysfs as the source of truth (``initiator: nvme``)."""

from rds_csi.adapters.nvme_cli.initiator import HostIdentity, NvmeCliInitiator, connect_argv


__all__ = ["HostIdentity", "NvmeCliInitiator", "connect_argv"]
