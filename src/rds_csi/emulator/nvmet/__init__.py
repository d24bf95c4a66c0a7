"""The Linux kernel NVMe/TCP target (nvmet) through configfs, and a fake tree for tests."""

from rds_csi.emulator.nvmet.configfs import (
    DEFAULT_ROOT,
    ConfigfsOps,
    KernelConfigfs,
    NamespaceInfo,
    NvmetConfigfs,
    NvmetError,
    PortInfo,
    direct_io_works,
)
from rds_csi.emulator.nvmet.fake import FakeConfigfs


__all__ = [
    "DEFAULT_ROOT",
    "ConfigfsOps",
    "FakeConfigfs",
    "KernelConfigfs",
    "NamespaceInfo",
    "NvmetConfigfs",
    "NvmetError",
    "PortInfo",
    "direct_io_works",
]
