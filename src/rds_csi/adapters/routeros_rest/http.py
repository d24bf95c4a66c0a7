"""
``RestClient``: one pooled HTTPS client to RouterOS's ``/rest`` API (httpx).

- Keep-alive and pooling: one ``httpx.Client`` for the process, at most ``max_connections``
  connections, idle ones kept ``keepalive_expiry`` seconds (RouterOS closes idle ones too; the
  pool notices and opens another without a failed request).
- Timeouts per phase (connect, read, write, waiting for a pooled connection).
- TLS verified by default, against ``ca_file`` or the system store; ``insecure_skip_verify``
  turns verification off and says so in the log at every start.
- Credentials: HTTP Basic from the settings (read from a file); never logged.
- Paths are built only from ``RestPath`` (fixed menus and checked ``.id``s); query values and
  bodies are checked by the caller (``volumes.py``) and encoded here as JSON.

Every transport failure becomes a ``RestUnavailable`` (``errors.py``) saying whether a retry
is safe; an error status becomes a ``RestRefusal`` with RouterOS's words; a body that is not
JSON becomes ``MalformedOutput`` with the raw text. Retrying is the backend's business.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Final

import attrs
import httpx

from rds_csi.adapters.routeros_rest.errors import (
    HTTP_UNAUTHORIZED,
    LoginRefused,
    RestRefusal,
    RestUnavailable,
    TlsRefused,
)
from rds_csi.adapters.routeros_rest.settings import RestSettings
from rds_csi.application.ports import Metrics
from rds_csi.domain import DomainError, InvalidArgument, MalformedOutput


__all__ = ["Counters", "Reply", "RestClient", "RestPath"]

log = logging.getLogger(__name__)

_ITEM_ID: Final = re.compile(r"\*[0-9A-Fa-f]{1,16}")
_MENUS: Final = frozenset({"disk", "file", "file/copy", "system/resource"})
_QUERY_VALUE: Final = re.compile(r"[A-Za-z0-9._:/@+-]{1,255}")
_QUERY_KEYS: Final = frozenset({"slot", "name", "mount-point", ".proplist"})
_RAW_LIMIT: Final = 64 * 1024


@attrs.frozen
class RestPath:
    """A ``/rest`` path: a fixed menu, optionally one item by ``.id``."""

    menu: str = attrs.field()
    item: str | None = None

    @menu.validator
    def _check_menu(self, _attr: attrs.Attribute[str], value: str) -> None:
        if value not in _MENUS:
            raise ValueError(f"not a menu this adapter uses: {value!r}")  # a bug here

    def __attrs_post_init__(self) -> None:
        if self.item is not None and _ITEM_ID.fullmatch(self.item) is None:
            raise InvalidArgument(".id", f"{self.item[:32]!r} is not a RouterOS item id")

    def render(self) -> str:
        return f"/{self.menu}" + (f"/{self.item}" if self.item is not None else "")


def check_query(query: Mapping[str, str]) -> dict[str, str]:
    """Query parameters: known keys, values of safe characters only."""
    for key, value in query.items():
        if key not in _QUERY_KEYS:
            raise ValueError(f"not a query key this adapter uses: {key!r}")  # a bug here
        if _QUERY_VALUE.fullmatch(value) is None:
            raise InvalidArgument(key, f"{value[:64]!r} cannot be sent to RouterOS")
    return dict(query)


@attrs.frozen
class Reply:
    """A decoded answer (``None`` for an empty body) and its text, for error reports."""

    doc: object
    raw: str


@attrs.define
class Counters:
    """What the client did: connections opened (TCP+TLS handshakes) and requests answered."""

    handshakes: int = 0
    round_trips: int = 0
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def bump(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"handshakes": self.handshakes, "round_trips": self.round_trips}


def tls_context(settings: RestSettings) -> ssl.SSLContext | bool:
    """What httpx verifies the RDS's certificate with (built at start: a bad CA file fails it)."""
    if settings.insecure_skip_verify:
        log.warning(
            "RDS REST certificate verification is OFF (--rds-insecure-skip-verify): anyone on "
            "the path can read the RDS password and forge answers"
        )
        return False
    try:
        if settings.ca_file is not None:
            return ssl.create_default_context(cafile=str(settings.ca_file))
        return ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument("rds ca file", f"{settings.ca_file}: {exc}") from None


class RestClient:
    """
    Requests to one RDS. Thread-safe: httpx's pool serves many callers at once. ``close()``
    drops the pool; the next request opens a new one.

    Args:
        settings: Where, who, how long.
        metrics: Told about every request (``backend_command``).
        transport: For tests only (an ``httpx.MockTransport``); default real HTTPS.
    """

    def __init__(
        self,
        settings: RestSettings,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.counters = Counters()
        self._metrics = metrics
        self._clock = clock
        self._transport = transport
        self._verify = tls_context(settings)
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        # Requests wait for a connection here, never in httpcore's pool: under contention
        # (more threads than connections) its sync pool was seen to hand one connection to
        # two requests (EBADF, mixed TLS records; httpcore 1.0.9, reproduced in-process).
        self._slots = threading.BoundedSemaphore(settings.max_connections)

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                s = self.settings
                self._client = httpx.Client(
                    base_url=s.base_url,
                    auth=httpx.BasicAuth(s.user, s.password),
                    verify=self._verify,
                    timeout=httpx.Timeout(
                        connect=s.connect_timeout,
                        read=s.read_timeout,
                        write=s.write_timeout,
                        pool=s.pool_timeout,
                    ),
                    limits=httpx.Limits(
                        max_connections=s.max_connections,
                        max_keepalive_connections=s.max_connections,
                        keepalive_expiry=s.keepalive_expiry,
                    ),
                    headers={"Accept": "application/json"},
                    follow_redirects=False,
                    trust_env=False,  # no proxy or netrc from the environment: only what we set
                    transport=self._transport,
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _trace(self, event: str, _info: Mapping[str, object]) -> None:
        if event == "connection.connect_tcp.complete":
            self.counters.bump("handshakes")

    def request(
        self,
        operation: str,
        method: str,
        path: RestPath,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, str] | None = None,
    ) -> Reply:
        """
        One request; its decoded JSON answer.

        Raises:
            RestUnavailable: the transport failed (``retryable`` says if repeating is safe);
                ``LoginRefused`` on 401, ``TlsRefused`` when the certificate did not verify.
            RestRefusal: RouterOS answered an error status.
            MalformedOutput: the answer is not JSON.
        """
        start = self._clock()
        outcome = "ok"
        try:
            return self._send(method, path, query, body)
        except RestRefusal:
            outcome = "refused"
            raise
        except MalformedOutput:
            outcome = "malformed"
            raise
        except RestUnavailable:
            outcome = "unavailable"
            raise
        except DomainError:
            outcome = "error"
            raise
        finally:
            if self._metrics is not None:
                self._metrics.backend_command(operation, self._clock() - start, outcome)

    def _send(
        self,
        method: str,
        path: RestPath,
        query: Mapping[str, str] | None,
        body: Mapping[str, str] | None,
    ) -> Reply:
        where = f"{method} {path.render()}"
        content = None if body is None else json.dumps(dict(body)).encode()
        headers = {"Content-Type": "application/json"} if content is not None else None
        params = check_query(query) if query else None
        if not self._slots.acquire(timeout=self.settings.pool_timeout):
            raise RestUnavailable(f"no connection to the RDS came free for {where} (pool timeout)")
        try:
            response = self._http().request(
                method,
                path.render(),
                params=params,
                content=content,
                headers=headers,
                extensions={"trace": self._trace},
            )
        except httpx.TimeoutException as exc:
            phase = type(exc).__name__.removesuffix("Timeout").lower() or "request"
            raise RestUnavailable(
                f"the RDS did not finish {where} in time ({phase} timeout)"
            ) from None
        except httpx.ConnectError as exc:
            if _is_tls_failure(exc):
                raise TlsRefused(
                    f"TLS with the RDS at {self.settings.url} failed: {exc}; give its CA with "
                    "--rds-ca-file"
                ) from None
            raise RestUnavailable(
                f"cannot connect to the RDS at {self.settings.url}: {exc}"
            ) from None
        except httpx.TransportError as exc:  # dropped, reset, protocol junk
            raise RestUnavailable(
                f"the connection to the RDS failed during {where}: {exc}"
            ) from None
        finally:
            self._slots.release()
        self.counters.bump("round_trips")
        raw = response.content[:_RAW_LIMIT].decode("utf-8", "replace")
        if response.status_code == HTTP_UNAUTHORIZED:
            raise LoginRefused(
                f"the RDS refused the REST login of user {self.settings.user!r} (HTTP 401); "
                "check the user, its password file and its rest-api policy"
            )
        if response.status_code >= 400:  # noqa: PLR2004
            raise _refusal(response.status_code, response.reason_phrase, raw)
        if not response.content.strip():
            return Reply(None, raw)
        try:
            return Reply(json.loads(response.content), raw)
        except (ValueError, UnicodeDecodeError):
            raise MalformedOutput(
                f"the RDS answered {where} with something not JSON", raw
            ) from None


def _refusal(status: int, reason: str, raw: str) -> RestRefusal:
    """RouterOS's error body ``{"error":N,"message":…,"detail":…}``, or what came instead."""
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        message = doc.get("message")
        detail = doc.get("detail")
        return RestRefusal(
            status,
            message if isinstance(message, str) else reason,
            detail if isinstance(detail, str) else "",
            raw,
        )
    return RestRefusal(status, reason, raw.strip()[:200], raw)


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc) or "SSL" in str(exc)
