"""
A small Kubernetes API server on loopback, for the official client's own code paths.

It serves the JSON of the few resources the driver's Kubernetes port reads and writes, in the
shapes of the API reference (storage.k8s.io/v1 VolumeAttachment and CSINode; v1 Node,
PersistentVolume, Event, Status), with resource versions, a line-delimited watch that ends
after ``timeoutSeconds`` or answers 410 Expired for a compacted version, and injected
failures. It is not an API server: no validation, no selectors, no auth. What it proves is
that the adapter's requests, the client's deserialization, its watch decoder and its error
path meet real HTTP and JSON.
"""

from __future__ import annotations

import json
import pathlib
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs


__all__ = ["FakeApiServer", "serve_api", "write_kubeconfig"]

Obj = dict[str, Any]
_STORAGE = "/apis/storage.k8s.io/v1/"
_CORE = "/api/v1/"
_NAMED = re.compile(r"^(?P<base>/apis?/[^?]*?)/(?P<kind>[a-z]+)(?:/(?P<name>[^/?]+))?$")
_EVENTS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/events$")
_LEASES = re.compile(
    r"^/apis/coordination.k8s.io/v1/namespaces/(?P<ns>[^/]+)/leases(?:/(?P<name>[^/]+))?$"
)


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def status(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@attrs.define
class FakeApiServer:
    """The objects served, by collection path (``volumeattachments``, ``nodes``, ...)."""

    objects: dict[str, dict[str, Obj]] = attrs.field(factory=dict)
    events: list[Obj] = attrs.field(factory=list)
    version: int = 100
    oldest: int = 100
    history: list[tuple[int, str, Obj]] = attrs.field(factory=list)
    fail_status: int = 0  # answer every request with this HTTP status while set
    requests: list[str] = attrs.field(factory=list)
    cond: threading.Condition = attrs.field(factory=threading.Condition)

    def put(self, kind: str, obj: Obj) -> Obj:
        with self.cond:
            self.version += 1
            meta = obj.setdefault("metadata", {})
            name = meta["name"]
            existing = self.objects.setdefault(kind, {}).get(name)
            meta["resourceVersion"] = str(self.version)
            meta.setdefault("uid", f"uid-{kind}-{name}")
            meta.setdefault("creationTimestamp", _stamp(time.time()))
            self.objects[kind][name] = obj
            self.history.append((self.version, "MODIFIED" if existing else "ADDED", obj))
            self.cond.notify_all()
            return obj

    def delete(self, kind: str, name: str) -> None:
        with self.cond:
            obj = self.objects.get(kind, {}).pop(name, None)
            if obj is not None:
                self.version += 1
                obj["metadata"]["resourceVersion"] = str(self.version)
                self.history.append((self.version, "DELETED", obj))
                self.cond.notify_all()

    def compact(self) -> None:
        with self.cond:
            self.history.clear()
            self.oldest = self.version + 1

    def list_of(self, kind: str) -> Obj:
        with self.cond:
            return {
                "kind": "List",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.version)},
                "items": list(self.objects.get(kind, {}).values()),
            }

    def watch(self, kind: str, since: int, timeout: float) -> Iterator[Obj]:
        if since < self.oldest - 1:
            yield {"type": "ERROR", "object": status(410, "Expired", "too old resource version")}
            return
        deadline = time.monotonic() + timeout
        while True:
            with self.cond:
                pending = [(rv, t, o) for rv, t, o in self.history if rv > since and o is not None]
                pending = [p for p in pending if kind in _kind_of(p[2])]
                if not pending:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    self.cond.wait(min(left, 0.2))
                    continue
            for rv, kind_name, obj in pending:
                since = rv
                yield {"type": kind_name, "object": obj}


def _kind_of(obj: Obj) -> str:
    return {"VolumeAttachment": "volumeattachments"}.get(str(obj.get("kind", "")), "")


def _handler(api: FakeApiServer) -> type[BaseHTTPRequestHandler]:  # noqa: C901 - the routes
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the watch stream ends when the connection closes

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def _send(self, code: int, body: Obj) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _failing(self) -> bool:
            api.requests.append(f"{self.command} {self.path}")
            if api.fail_status:
                self._send(api.fail_status, status(api.fail_status, "Injected", "injected"))
                return True
            return False

        def do_GET(self) -> None:
            if self._failing():
                return
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            found = _NAMED.match(url.path)
            if found is None:
                self._send(404, status(404, "NotFound", f"no route {url.path}"))
                return
            kind, name = found["kind"], found["name"]
            if name:
                obj = api.objects.get(kind, {}).get(name)
                if obj is None:
                    self._send(404, status(404, "NotFound", f'{kind} "{name}" not found'))
                else:
                    self._send(200, obj)
                return
            if query.get("watch") in {"true", "1"}:
                self._watch(kind, query)
                return
            self._send(200, api.list_of(kind))

        def _watch(self, kind: str, query: dict[str, str]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            since = int(query.get("resourceVersion") or api.version)
            timeout = float(query.get("timeoutSeconds") or 5)
            try:
                for event in api.watch(kind, since, timeout):
                    self.wfile.write(json.dumps(event).encode() + b"\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return

        def _body(self) -> Obj:
            length = int(self.headers.get("Content-Length") or 0)
            body: Obj = json.loads(self.rfile.read(length) or b"{}")
            return body

        def do_PUT(self) -> None:
            """Replace a Lease; a stale resourceVersion is 409 Conflict, as the API says."""
            if self._failing():
                return
            found = _LEASES.match(urllib.parse.urlsplit(self.path).path)
            body = self._body()
            if found is None or not found["name"]:
                self._send(404, status(404, "NotFound", "only leases are replaced here"))
                return
            with api.cond:
                current = api.objects.get("leases", {}).get(found["name"])
                if current is None:
                    self._send(404, status(404, "NotFound", "no such lease"))
                    return
                sent = body.get("metadata", {}).get("resourceVersion")
                if sent != current["metadata"]["resourceVersion"]:
                    self._send(409, status(409, "Conflict", "the object has been modified"))
                    return
                self._send(200, api.put("leases", body))

        def do_POST(self) -> None:
            if self._failing():
                return
            path = urllib.parse.urlsplit(self.path).path
            leases = _LEASES.match(path)
            if leases is not None:
                body = self._body()
                with api.cond:
                    if body["metadata"]["name"] in api.objects.get("leases", {}):
                        self._send(409, status(409, "AlreadyExists", "lease exists"))
                        return
                    self._send(201, api.put("leases", body))
                return
            found = _EVENTS.match(path)
            body = self._body()
            if found is None:
                self._send(404, status(404, "NotFound", "only events are created here"))
                return
            meta = body.setdefault("metadata", {})
            meta.setdefault("name", f"{meta.get('generateName', 'event.')}{len(api.events):05d}")
            meta["namespace"] = found["ns"]
            api.events.append(body)
            self._send(201, body)

    return Handler


@attrs.define
class RunningApiServer:
    api: FakeApiServer
    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve_api(api: FakeApiServer | None = None) -> RunningApiServer:
    api = api if api is not None else FakeApiServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return RunningApiServer(api, server, thread)


def write_kubeconfig(path: pathlib.Path, url: str) -> pathlib.Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "loopback", "cluster": {"server": url}}],
                "users": [{"name": "nobody", "user": {}}],
                "contexts": [
                    {"name": "loopback", "context": {"cluster": "loopback", "user": "nobody"}}
                ],
                "current-context": "loopback",
            }
        )
    )
    return path


# --- object shapes (the API reference's, trimmed to the fields the driver reads) -------------


def volume_attachment(
    name: str, attacher: str, pv: str, node: str, *, attached: bool, created: float = 0.0
) -> Obj:
    meta: Obj = {"name": name}
    if created:
        meta["creationTimestamp"] = _stamp(created)
    return {
        "kind": "VolumeAttachment",
        "apiVersion": "storage.k8s.io/v1",
        "metadata": meta,
        "spec": {"attacher": attacher, "nodeName": node, "source": {"persistentVolumeName": pv}},
        "status": {"attached": attached},
    }


def csi_node(name: str, drivers: dict[str, str], limits: dict[str, int] | None = None) -> Obj:
    entries = []
    for driver, node_id in drivers.items():
        entry: Obj = {"name": driver, "nodeID": node_id, "topologyKeys": None}
        if (limits or {}).get(driver):
            entry["allocatable"] = {"count": (limits or {})[driver]}
        entries.append(entry)
    return {
        "kind": "CSINode",
        "apiVersion": "storage.k8s.io/v1",
        "metadata": {"name": name},
        "spec": {"drivers": entries},
    }


def node(name: str, *, ready: bool) -> Obj:
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"name": name},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": _stamp(time.time()),
                }
            ]
        },
    }


def persistent_volume(
    name: str,
    driver: str,
    handle: str,
    *,
    modes: tuple[str, ...] = ("ReadWriteOnce",),
    block: bool = False,
    attributes: dict[str, str] | None = None,
    claim: tuple[str, str] | None = None,
) -> Obj:
    spec: Obj = {
        "accessModes": list(modes),
        "capacity": {"storage": "1Gi"},
        "volumeMode": "Block" if block else "Filesystem",
        "csi": {"driver": driver, "volumeHandle": handle, "volumeAttributes": attributes or {}},
    }
    if claim is not None:
        spec["claimRef"] = {
            "kind": "PersistentVolumeClaim",
            "namespace": claim[0],
            "name": claim[1],
        }
    return {
        "kind": "PersistentVolume",
        "apiVersion": "v1",
        "metadata": {"name": name},
        "spec": spec,
    }
