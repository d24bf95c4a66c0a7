"""
The RDS over RouterOS's REST API (HTTPS, JSON): a second control plane beside SSH.

The adapter holds classes only; ``entrypoints/rest_wiring.py`` (``RdsRest``) wires them.
"""

from rds_csi.adapters.routeros_rest.backend import RetryPolicy, RouterOsRestBackend
from rds_csi.adapters.routeros_rest.errors import LoginRefused, RestUnavailable, TlsRefused
from rds_csi.adapters.routeros_rest.http import Counters, RestClient
from rds_csi.adapters.routeros_rest.settings import RestSettings, read_password_file


__all__ = [
    "Counters",
    "LoginRefused",
    "RestClient",
    "RestSettings",
    "RestUnavailable",
    "RetryPolicy",
    "RouterOsRestBackend",
    "TlsRefused",
    "read_password_file",
]
