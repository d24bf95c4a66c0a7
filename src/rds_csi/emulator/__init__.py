"""
The RDS emulator: a RouterOS SSH server with a pool of sparse-file disks, for tests and trials.

A product part, not a test hack: ``rds-csi emulator`` (or ``python -m rds_csi.emulator``)
starts one; ``Emulator(EmulatorConfig(...)).start()`` runs one in-process. It imports only the
domain: it answers as RouterOS does, independently of the adapter that talks to it.
"""

from rds_csi.emulator.dataplane import DataPlane, ExportedDisk, JsonExportsDataPlane
from rds_csi.emulator.dialect import DIALECTS, Dialect
from rds_csi.emulator.faults import FaultInjector, FaultKind, Latency
from rds_csi.emulator.server import (
    ClientFiles,
    Emulator,
    EmulatorConfig,
    EmulatorStats,
    EmulatorUser,
    RestClientFiles,
    public_key_line,
)


__all__ = [
    "DIALECTS",
    "ClientFiles",
    "DataPlane",
    "Dialect",
    "Emulator",
    "EmulatorConfig",
    "EmulatorStats",
    "EmulatorUser",
    "ExportedDisk",
    "FaultInjector",
    "FaultKind",
    "JsonExportsDataPlane",
    "Latency",
    "RestClientFiles",
    "public_key_line",
]
