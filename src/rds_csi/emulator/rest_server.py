"""
The emulated RDS's web server (``www-ssl``): the REST API over HTTPS, beside the SSH console.

Standard library only (``http.server`` with a thread per connection, ``ssl``): an emulator
needs correctness, not throughput. HTTP/1.1 with keep-alive, as RouterOS's. The certificate is
self-signed (ECDSA P-256, made with ``cryptography`` on first start and kept in the data
directory); its SHA-256 fingerprint is printed at start, and the PEM doubles as the CA file a
client trusts. Basic auth with the emulator's users (a password is needed; keys are SSH only).

The same fault plan and latency as the SSH console apply: each request takes the first
planned fault whose ``match`` fits its description, which carries the equivalent console words
(``PUT /rest/disk :: /disk add``), so ``fail_next(match="/disk add")`` fails a REST create as it
fails an SSH one. ``drop`` closes the connection (before or after running), ``hang`` answers
nothing until released, ``truncate`` sends half the body (with a matching length),
``garble`` replaces a stretch of it; network RTT goes through the same delay line.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hmac
import ipaddress
import json
import logging
import pathlib
import random
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rds_csi.emulator.faults import FaultKind, garble, truncate
from rds_csi.emulator.netdelay import delay_line
from rds_csi.emulator.rest_api import Answer, RestApi, error_body


if TYPE_CHECKING:
    from rds_csi.emulator.server import Emulator


__all__ = ["RestServer", "certificate_fingerprint", "load_or_create_certificate"]

log = logging.getLogger("rds_csi.emulator.rest")

CERT_FILE: Final = "www-ssl.pem"
KEY_FILE: Final = "www-ssl.key"
_POLL: Final = 0.05
_MAX_BODY: Final = 1 << 20


def load_or_create_certificate(
    directory: pathlib.Path, host: str
) -> tuple[pathlib.Path, pathlib.Path]:
    """The web server's certificate and key files; made (valid for ``host``) if missing."""
    cert_file, key_file = directory / CERT_FILE, directory / KEY_FILE
    if cert_file.exists() and key_file.exists():
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        if _names_host(cert, host):
            return cert_file, key_file
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rds-csi emulator")])
    alt: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for text in {host, "127.0.0.1", "::1"}:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(text)))
        except ValueError:
            alt.append(x509.DNSName(text))
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_file.touch(mode=0o600)
    key_file.chmod(0o600)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


def _names_host(cert: x509.Certificate, host: str) -> bool:
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        return ipaddress.ip_address(host) in alt.get_values_for_type(x509.IPAddress)
    except ValueError:
        return host in alt.get_values_for_type(x509.DNSName)


def certificate_fingerprint(cert_file: pathlib.Path) -> str:
    """``SHA256:AB:CD:…`` of the certificate (what an operator compares with the RDS's)."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return "SHA256:" + cert.fingerprint(hashes.SHA256()).hex(":").upper()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: RestServer

    def get_request(self) -> tuple[socket.socket, object]:
        sock, peer = self.socket.accept()
        self.owner.emulator.stats.bump("connections")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        latency = self.owner.emulator.latency
        if latency.rtt > 0 or latency.rtt_jitter > 0:
            sock = delay_line(sock, latency.one_way)
        # the TLS handshake runs at the first read, in the connection's own thread
        tls = self.owner.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self.owner.track(tls)
        return tls, peer

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        self.owner.untrack(request)
        super().shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:  # noqa: ARG002
        log.debug("REST connection from %s ended with an error", client_address)


class RestServer:
    """The HTTPS listener; ``Emulator`` starts and stops it with its SSH server."""

    def __init__(self, emulator: Emulator, listen: tuple[str, int]) -> None:
        self.emulator = emulator
        self.api = RestApi(emulator.state)
        directory = emulator.config.data_dir
        self.cert_file, key_file = load_or_create_certificate(directory, listen[0])
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(self.cert_file, key_file)
        self._listen = listen
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._rng = random.Random(0x7E57)  # noqa: S311 - junk for garbling, not secrets
        self.stopping = threading.Event()
        self.address = listen

    @property
    def fingerprint(self) -> str:
        return certificate_fingerprint(self.cert_file)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"

    def start(self) -> tuple[str, int]:
        class Bound(_Server):
            address_family = socket.AF_INET6 if ":" in self._listen[0] else socket.AF_INET

        server = Bound(self._listen, _Handler)
        server.owner = self
        self._server = server
        host = self._listen[0]
        self.address = (host, server.server_address[1])
        self.stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": _POLL}, name="emulator-rest"
        )
        self._thread.daemon = True
        self._thread.start()
        log.info("RDS emulator REST API on %s (certificate %s)", self.url, self.fingerprint)
        return self.address

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.disconnect_all()

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)

    def disconnect_all(self) -> int:
        """Close every open connection from the server's side (an idle timeout, a reboot)."""
        with self._lock:
            socks, self._open = list(self._open), set()
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return len(socks)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rds-csi-emulator"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_POST(self) -> None:
        self._serve("POST")

    # --- one request ----------------------------------------------------------------------

    def _serve(self, method: str) -> None:
        owner = self.server.owner
        emulator = owner.emulator
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self._send(Answer(413, error_body(413, "body too large")))
            return
        body = self.rfile.read(length) if length else b""
        emulator.stats.bump("commands")
        emulator.stats.bump("channels_open")
        try:
            if not self._authorized():
                self._send(Answer(401, error_body(401)))
                return
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            fault = emulator.faults.take(RestApi.describe(method, url.path, query))
            kind = fault.kind if fault is not None else None
            delay = emulator.latency.command_delay()
            if delay > 0 and owner.stopping.wait(delay):
                return
            if kind is FaultKind.HANG:
                self._hang()
                return
            if kind is FaultKind.DROP_BEFORE:
                self._drop()
                return
            if fault is not None and kind is FaultKind.FAIL:
                answer = Answer(400, error_body(400, fault.message))
            else:
                answer = owner.api.handle(method, url.path, query, body)
            if kind is FaultKind.DROP_AFTER:
                self._drop()
                return
            text = "" if answer.doc is None else json.dumps(answer.doc, separators=(",", ":"))
            if kind is FaultKind.TRUNCATE:
                text = truncate(text)
            elif kind is FaultKind.GARBLE:
                text = garble(text, owner._rng)  # noqa: SLF001 - one owner, one generator
            self._send(answer, text)
        finally:
            emulator.stats.bump("channels_open", -1)

    def _authorized(self) -> bool:
        """Basic auth, under the same per-address login limit as SSH (``logins.py``)."""
        emulator = self.server.owner.emulator
        address = str(self.client_address[0])
        if not emulator.logins.allowed(address):
            emulator.stats.bump("locked_out_logins")
            return False
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        ok = False
        if scheme.lower() == "basic" and not emulator.faults.logins_refused:
            try:
                name, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                name, password = "", ""
            user = emulator.user(name)
            ok = (
                user is not None
                and user.password is not None
                and hmac.compare_digest(user.password.encode(), password.encode())
            )
            if not ok:
                emulator.logins.failed(address)  # a wrong password counts; a refusal fault not
        if ok:
            emulator.logins.succeeded(address)
        emulator.stats.bump("logins" if ok else "failed_logins")
        return ok

    def _send(self, answer: Answer, text: str | None = None) -> None:
        if text is None:
            text = "" if answer.doc is None else json.dumps(answer.doc, separators=(",", ":"))
        data = text.encode("utf-8", "replace")
        self.send_response(answer.status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _hang(self) -> None:
        owner = self.server.owner
        released = owner.emulator.faults.hang_released
        while not (owner.stopping.is_set() or released.is_set()):
            time.sleep(_POLL)
        self._drop()

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
