"""
The RDS over SSH: RouterOS CLI commands built safely, their output parsed defensively.

The adapter holds classes only; ``entrypoints/container.py`` (``RdsSsh``) wires them.
"""

from rds_csi.adapters.routeros_ssh.backend import RetryPolicy, RouterOsSshBackend
from rds_csi.adapters.routeros_ssh.connection import Counters, SshConnection
from rds_csi.adapters.routeros_ssh.settings import SshSettings


__all__ = [
    "Counters",
    "RetryPolicy",
    "RouterOsSshBackend",
    "SshConnection",
    "SshSettings",
]
