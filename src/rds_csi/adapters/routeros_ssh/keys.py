"""
The keys of an SSH login: our private key (read once, at start) and the RDS's host key check.

A key file problem is a configuration error (``InvalidArgument`` naming the file and the fix),
so a bad Secret stops the driver at start with exit code 2 instead of a traceback.
"""

from __future__ import annotations

import logging
import pathlib
import stat
from typing import Final

import attrs
import paramiko

from rds_csi.adapters.routeros_ssh.errors import HostKeyRejected
from rds_csi.domain import InvalidArgument


__all__ = ["HostKeyPolicy", "load_private_key"]

log = logging.getLogger(__name__)

_FIELD: Final = "rds_ssh_key"
# Group read is allowed: kubelet gives a Secret volume mounted with fsGroup mode 0440 so a
# non-root controller can read it; group write and anything for others are not.
_SECRET_BITS: Final = stat.S_IWGRP | stat.S_IXGRP | stat.S_IRWXO


def load_private_key(path: pathlib.Path, passphrase: str | None = None) -> paramiko.PKey:
    """
    Read the SSH private key, refusing one that others may access or the group may change
    (mount the Secret with ``defaultMode: 0400``; with ``fsGroup`` kubelet makes it 0440).
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InvalidArgument(_FIELD, f"{path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise InvalidArgument(_FIELD, f"{path} is not a file; give the private key file")
    if mode & _SECRET_BITS:
        raise InvalidArgument(
            _FIELD,
            f"{path} has mode {stat.S_IMODE(mode):04o}: others may access it or the group "
            "may change it; make it 0600, 0400 or 0440 (Secret volume defaultMode: 0400)",
        )
    try:
        secret = passphrase.encode() if passphrase else None
        return paramiko.PKey.from_path(path, secret)  # type: ignore[arg-type]  # stubs: str
    except PermissionError:
        raise InvalidArgument(
            _FIELD,
            f"{path} cannot be read by this process: make it readable by the driver's user "
            "(Secret volume defaultMode 0400 for root, or 0440 with the pod's fsGroup)",
        ) from None
    except TypeError:
        # cryptography's way of saying "encrypted, and no (usable) passphrase given"
        raise InvalidArgument(
            _FIELD,
            f"{path} is encrypted with a passphrase, which the driver cannot type in: "
            f"store it decrypted (ssh-keygen -p -N '' -f {path}) in the Secret",
        ) from None
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise InvalidArgument(
            _FIELD,
            f"{path} is not a usable private key ({exc}); give the private half of an "
            "Ed25519, ECDSA or RSA key in OpenSSH or PEM format, not the .pub file",
        ) from None


@attrs.frozen
class HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """
    How the RDS's host key is checked: against ``known_hosts``, or (opt-out) not at all.

    Create with ``HostKeyPolicy.from_file(path)`` or ``HostKeyPolicy.insecure()``. It is the
    fabric connection's paramiko host key policy; the connection's own host key store stays
    empty, so every key passes through ``missing_host_key`` and is decided here (unknown,
    changed and switched-off checks each with their own message).
    """

    known_hosts: paramiko.HostKeys | None
    source: str

    @classmethod
    def from_file(cls, path: pathlib.Path) -> HostKeyPolicy:
        keys = paramiko.HostKeys()
        try:
            keys.load(str(path))
        except OSError as exc:
            raise InvalidArgument("known_hosts file", f"{path}: {exc.strerror or exc}") from None
        return cls(keys, str(path))

    @classmethod
    def insecure(cls) -> HostKeyPolicy:
        return cls(None, "host key verification switched off")

    def missing_host_key(
        self,
        client: paramiko.SSHClient,  # noqa: ARG002 - paramiko's signature
        hostname: str,
        key: paramiko.PKey,
    ) -> None:
        """paramiko's hook; ``hostname`` is already ``[host]:port`` for a port other than 22."""
        self.check(hostname, key)

    def check(self, name: str, key: paramiko.PKey) -> None:
        if self.known_hosts is None:
            log.warning("not verifying the host key of %s (%s)", name, self.source)
            return
        known = self.known_hosts.lookup(name)
        if known is None:
            host, _, port = name.removeprefix("[").rpartition("]:")
            scan = f"ssh-keyscan -p {port} {host}" if port else f"ssh-keyscan {name}"
            raise HostKeyRejected(
                f"the RDS at {name} is not in {self.source}; add its key ({scan}) or, for a "
                "lab only, switch verification off"
            )
        if known.get(key.get_name()) != key:
            raise HostKeyRejected(
                f"the host key of the RDS at {name} ({key.get_name()}) does not match "
                f"{self.source}: refusing to connect (was the RDS replaced, or is someone "
                "in between?)"
            )
