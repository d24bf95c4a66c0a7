"""The in-memory RDS: a first-class StorageBackend for tests, demos and the contract suite."""

from rds_csi.adapters.fake_rds.backend import FaultPlan, InMemoryRds
from rds_csi.adapters.fake_rds.snapshots import InMemorySnapshots


__all__ = ["FaultPlan", "InMemoryRds", "InMemorySnapshots"]
