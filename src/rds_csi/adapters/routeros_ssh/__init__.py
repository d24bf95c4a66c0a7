"""
The RDS over SSH: RouterOS CLI commands built safely, their output parsed defensively.

``open_ssh_backend(SshSettings(...))`` is the one way to build it.
"""

from rds_csi.adapters.routeros_ssh.backend import RetryPolicy, RouterOsSshBackend
from rds_csi.adapters.routeros_ssh.connection import Counters, SshConnection
from rds_csi.adapters.routeros_ssh.settings import SshSettings, open_ssh_backend


__all__ = [
    "Counters",
    "RetryPolicy",
    "RouterOsSshBackend",
    "SshConnection",
    "SshSettings",
    "open_ssh_backend",
]
