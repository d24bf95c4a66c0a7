"""
What goes wrong talking REST to RouterOS, and the one table that turns it into domain errors.

Two families: the transport failed (``RestUnavailable``: refused, dropped, timed out, TLS
refused; ``retryable`` says whether repeating is safe and useful), or RouterOS answered with an
error body (``RestRefusal``: its status and ``{"error":N,"message":…,"detail":…}``). Only the
first is ever retried. ``refusal_to_domain`` reads RouterOS's words as the SSH adapter does:
"not enough space" -> ``CapacityExhausted``, anything else -> ``BackendError`` carrying them.
"""

from __future__ import annotations

import re
from typing import Final

from rds_csi.domain import BackendError, BackendUnavailable, CapacityExhausted, DomainError


__all__ = [
    "LoginRefused",
    "RestRefusal",
    "RestUnavailable",
    "TlsRefused",
    "is_duplicate",
    "refusal_to_domain",
]

_NO_SPACE: Final = re.compile(
    r"not enough (disk )?space|no space left|insufficient (disk )?space|disk (is )?full",
    re.IGNORECASE,
)
_DUPLICATE: Final = re.compile(r"already have (such|an?) (entry|item|disk)", re.IGNORECASE)
_NOT_ALLOWED: Final = re.compile(r"not allowed|not enough permissions", re.IGNORECASE)
HTTP_UNAUTHORIZED: Final = 401
HTTP_NOT_FOUND: Final = 404


class RestUnavailable(BackendUnavailable):
    """The RDS could not be reached or did not answer; ``retryable`` if repeating is safe."""

    retryable: bool = True


class LoginRefused(RestUnavailable):
    """HTTP 401: the user or password is wrong; repeating will not help."""

    retryable = False


class TlsRefused(RestUnavailable):
    """The RDS's certificate did not verify (or TLS failed); never retried."""

    retryable = False


class RestRefusal(Exception):
    """
    RouterOS answered with an error status and body.

    Attributes:
        status: The HTTP status (400, 404, 406, 500 ...).
        message: The body's ``message`` (``Bad Request``).
        detail: The body's ``detail``: RouterOS's own words (``failure: already have such
            entry``), empty when it gave none.
        raw: The body as received (for error reports).
    """

    def __init__(self, status: int, message: str, detail: str, raw: str) -> None:
        super().__init__(f"HTTP {status} {message}: {detail}" if detail else f"{status} {message}")
        self.status = status
        self.message = message
        self.detail = detail
        self.raw = raw

    @property
    def text(self) -> str:
        """RouterOS's words: the detail, else the message."""
        return self.detail or self.message

    @property
    def not_found(self) -> bool:
        return self.status == HTTP_NOT_FOUND


def is_duplicate(refusal: RestRefusal) -> bool:
    """A concurrent create won the race for this slot (or NQN)."""
    return _DUPLICATE.search(refusal.text) is not None


def refusal_to_domain(refusal: RestRefusal, action: str) -> DomainError:
    """RouterOS's error body -> the domain error it means (the one translation table)."""
    text = refusal.text
    if _NO_SPACE.search(text):
        return CapacityExhausted(f"not enough space on the RDS to {action}: {text}")
    if _NOT_ALLOWED.search(text):
        return BackendError(
            f"the RDS refused to {action}: the REST user lacks a policy (it needs "
            "read,write,test,api,rest-api)",
            text,
        )
    return BackendError(f"the RDS refused to {action} (HTTP {refusal.status})", text)
