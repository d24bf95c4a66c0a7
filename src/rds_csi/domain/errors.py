"""
The domain's errors: one tree, shaped around the conditions the CSI spec names.

Every message is written for an operator reading a PVC event or a log line: it says which
object, what was wrong, and where it helps, what to do. The gRPC layer maps each class (by
walking the MRO, so subclasses never fall through) to one status code.

Our exception hierarchy:

* DomainError
  x InvalidArgument ............ a request value is missing, malformed or unsupported
    + UnsupportedCapability .... a capability this driver cannot serve
  x NotFound ................... the named object does not exist (or is not ours)
    + VolumeNotFound
    + SnapshotNotFound
  x AlreadyExists .............. the name is taken by something incompatible
    + VolumeIncompatible
  x OutOfRange ................. a capacity range the driver cannot satisfy
  x CapacityExhausted .......... the storage pool has no room
  x Conflict ................... the object's current state forbids the operation
  x Aborted .................... try again later, or restart from the beginning
    + OperationInProgress ...... another operation holds the same volume
    + InvalidPageToken ......... a pagination token we did not issue
  x BackendUnavailable ......... the RDS cannot be reached or refused our login
  x BackendError ............... the RDS answered with an error we do not expect
    + MalformedOutput .......... the RDS answered something we cannot parse
"""

from __future__ import annotations

from rds_csi.domain.text import quoted


__all__ = [
    "Aborted",
    "AlreadyExists",
    "BackendError",
    "BackendUnavailable",
    "CapacityExhausted",
    "Conflict",
    "DomainError",
    "InvalidArgument",
    "InvalidPageToken",
    "MalformedOutput",
    "NotFound",
    "OperationInProgress",
    "OutOfRange",
    "SnapshotNotFound",
    "UnsupportedCapability",
    "VolumeIncompatible",
    "VolumeNotFound",
]


_RAW_SHOWN = 400


class DomainError(Exception):
    """
    Base of every error the driver raises on purpose.

    ``str(err)`` is the operator-facing message; it never contains secrets.
    """


class InvalidArgument(DomainError):
    """
    A request value is missing, malformed or unsupported.

    Attributes:
        field: The request field at fault (``capacity_range.limit_bytes``), or ``""``.
        problem: What is wrong with it.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


class UnsupportedCapability(InvalidArgument):
    """The driver cannot serve this access mode / access type combination."""


class NotFound(DomainError):
    """The named object does not exist, or is not one of this driver's."""


class VolumeNotFound(NotFound):
    """No volume of ours has this ID."""

    def __init__(self, volume_id: str, detail: str = "") -> None:
        self.volume_id = volume_id
        msg = f"volume {quoted(volume_id)} not found"
        super().__init__(f"{msg}: {detail}" if detail else msg)


class SnapshotNotFound(NotFound):
    """No snapshot of ours has this ID."""

    def __init__(self, snapshot_id: str) -> None:
        self.snapshot_id = snapshot_id
        super().__init__(f"snapshot {quoted(snapshot_id)} not found")


class AlreadyExists(DomainError):
    """The name is taken by an object that does not match the request."""


class VolumeIncompatible(AlreadyExists):
    """A volume with this name exists, with different size or parameters."""


class OutOfRange(DomainError):
    """A requested capacity the driver cannot provide (below minimum, above maximum)."""


class CapacityExhausted(DomainError):
    """The storage pool has not enough free space for the request."""


class Conflict(DomainError):
    """The object's current state forbids the operation (in use, wrong mode, staged elsewhere)."""


class Aborted(DomainError):
    """The caller should retry later, or restart from scratch."""


class OperationInProgress(Aborted):
    """Another operation on the same volume is still running."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"an operation on {quoted(key)} is already in progress; retry later")


class InvalidPageToken(Aborted):
    """A pagination token this driver did not issue, or one that no longer applies."""

    def __init__(self, token: str) -> None:
        self.token = token
        super().__init__(
            f"starting_token {quoted(token, 64)} is not valid; restart the listing with an empty "
            "token"
        )


class BackendUnavailable(DomainError):
    """The RDS cannot be reached, timed out, or refused our credentials."""


class BackendError(DomainError):
    """
    The RDS answered with an error we do not translate into anything more specific.

    Attributes:
        backend_message: The RDS's own words, for the operator.
    """

    def __init__(self, message: str, backend_message: str = "") -> None:
        self.backend_message = backend_message
        super().__init__(f"{message}: {backend_message}" if backend_message else message)


class MalformedOutput(BackendError):
    """
    The RDS answered something we cannot parse; we refuse to guess.

    Attributes:
        raw: The text we could not parse, attached for the bug report.
    """

    def __init__(self, message: str, raw: str) -> None:
        self.raw = raw
        shown = raw if len(raw) <= _RAW_SHOWN else raw[:_RAW_SHOWN] + "..."
        super().__init__(message, f"unparseable output {shown!r}")
