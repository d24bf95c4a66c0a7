"""
The REST API's resources on the emulator's state: ``/rest/disk``, ``/rest/file``,
``/rest/system/resource``, answered as RouterOS 7 answers them (FACTS section 4).

- Every value is a JSON string: numbers ``"4420"``, booleans ``"true"``/``"false"``, ids
  ``"*1A"``, sizes raw bytes. Flags appear as boolean properties (``"block-device":"true"``).
  Writes accept ``yes``/``no`` too.
- ``GET`` lists (``?key=value`` filters, ``.proplist`` limits fields); ``GET /<.id>`` one item;
  ``PUT`` adds and returns the whole item; ``PATCH /<.id>`` sets and returns it; ``DELETE``
  answers an empty 204, and 404 the second time; ``POST …/add`` answers ``{"ret":"*1A"}``;
  ``POST …/print`` takes ``.proplist`` and ``.query`` (``key=value`` words, ANDed).
- Errors: ``{"error":N,"message":…,"detail":…}``: RouterOS's own failure text as the detail of
  a 400; ``{"error":404,"message":"Not Found"}`` for an unknown id; unknown parameters 400.

Exactly as the console, the export fields of an unexported disk are absent (assumption A8).
The HTTP server around this is ``rest_server.py``; this module is pure request -> answer.
"""

from __future__ import annotations

import json
import platform
import re
import time
from collections.abc import Mapping
from typing import Final

import attrs

from rds_csi.domain import InvalidArgument, Size
from rds_csi.emulator import assumptions
from rds_csi.emulator.render import Bare, Grouped, Humanized, PropValue
from rds_csi.emulator.state import (
    DISK_ATTRS,
    POOL_ID,
    Disk,
    FileEntry,
    PoolState,
    RosFailure,
)
from rds_csi.emulator.units import parse_routeros_size
from rds_csi.emulator.values import disk_value, file_key


__all__ = ["Answer", "RestApi", "error_body"]

VERSION: Final = "7.24.4 (stable)"  # the version the REST facts were gathered on
_ITEM_ID: Final = re.compile(r"\*([0-9A-Fa-f]{1,16})")
_DISK_TYPES: Final = frozenset({"file", "raid", "nvme-tcp", "iscsi", "tmpfs", "ramdisk"})
_STATUS_TEXT: Final = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    406: "Not Acceptable",
}
_STARTED: Final = time.monotonic()


@attrs.frozen
class Answer:
    """An HTTP status and a JSON document (``None``: an empty body)."""

    status: int
    doc: object = None


def error_body(status: int, detail: str = "") -> dict[str, object]:
    body: dict[str, object] = {"error": status, "message": _STATUS_TEXT.get(status, "Error")}
    if detail:
        body["detail"] = detail
    return body


def _fail(status: int, detail: str = "") -> Answer:
    return Answer(status, error_body(status, detail))


def _text(value: PropValue) -> str:
    match value:
        case bool():
            return "true" if value else "false"
        case Grouped(v) | Humanized(v):
            return str(v)
        case Bare(v):
            return v
    return str(value)


class RestApi:
    """Answers REST requests from a ``PoolState``; the caller holds nothing (locks here)."""

    def __init__(self, state: PoolState) -> None:
        self.state = state

    # --- what a request is, in console words (for fault matching) ---------------------------

    @staticmethod
    def describe(method: str, path: str, query: Mapping[str, str]) -> str:
        """The request as the equivalent console line, so one fault ``match`` fits both."""
        parts = [p for p in path.split("/") if p][1:]  # drop "rest"
        menu = "/" + (parts[0] if parts else "")
        item = parts[1] if len(parts) > 1 else ""
        where = " ".join(f"{k}={v}" for k, v in query.items() if not k.startswith("."))
        verb = {
            "GET": "print detail" + (f" where {where}" if where else ""),
            "PUT": "add",
            "PATCH": f"set {item}",
            "DELETE": f"remove {item}",
            "POST": item,
        }.get(method, method)
        if method == "POST" and item in {"add", "print"}:
            verb = {"add": "add", "print": "print detail"}[item]
        return f"{method} {path} :: {menu} {verb}".rstrip()

    # --- dispatch -------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: Mapping[str, str], body: bytes) -> Answer:
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != "rest":
            return _fail(404)
        parts = parts[1:]
        try:
            doc = _body(body) if method in {"PUT", "PATCH", "POST"} else {}
        except (ValueError, TypeError) as exc:
            return _fail(400, str(exc))
        with self.state.lock:
            try:
                return self._route(method, parts, dict(query), doc)
            except RosFailure as exc:
                return _fail(400, str(exc))
            except OSError as exc:
                return _fail(400, f"failure: {exc.strerror or 'i/o error'}")

    def _route(  # noqa: C901, PLR0911 - the one table of routes
        self, method: str, parts: list[str], query: dict[str, str], doc: dict[str, object]
    ) -> Answer:
        if parts == ["system", "resource"] and method == "GET":
            return Answer(200, self._resource())
        if not parts or parts[0] not in {"disk", "file"}:
            return _fail(400, f"no such command or directory ({'/'.join(parts) or 'rest'})")
        menu, rest = parts[0], parts[1:]
        if not rest:
            if method == "GET":
                return Answer(200, self._select(menu, query, query.get(".proplist", "")))
            if method == "PUT" and menu == "disk":
                return Answer(200, self._json_disk(self._add(doc)))
            return _fail(400, "no such command")
        if len(rest) != 1:
            return _fail(400, f"no such command or directory ({rest[-1]})")
        name = rest[0]
        if method == "POST" and name == "add" and menu == "disk":
            return Answer(200, {"ret": f"*{self._add(doc).id:X}"})
        if method == "POST" and name == "copy" and menu == "file":
            self._file_copy(doc)
            return Answer(200, [])
        if method == "POST" and name == "print":
            return Answer(200, self._post_print(menu, doc))
        match = _ITEM_ID.fullmatch(name)
        if match is None:
            return _fail(400, f"no such command or directory ({name})")
        key = int(match.group(1), 16)
        if menu == "disk":
            return self._disk_item(method, key, doc)
        return self._file_item(method, key)

    # --- /disk ----------------------------------------------------------------------------

    def _json_disk(self, disk: Disk | None) -> dict[str, str]:
        key = POOL_ID if disk is None else disk.id
        out = {".id": f"*{key:X}"}
        for name, value in self.state.disk_props(disk):
            out[name] = _text(value)
        flags = self.state.disk_flags(disk)
        for letter, flag in assumptions.DISK_LEGEND:
            out.setdefault(flag.lower(), "true" if letter in flags else "false")
        return out

    def _disk_item(  # noqa: PLR0911 - one answer per verb
        self, method: str, key: int, doc: dict[str, object]
    ) -> Answer:
        if key == POOL_ID:
            if method == "GET":
                return Answer(200, self._json_disk(None))
            if method == "DELETE":
                return _fail(400, assumptions.POOL_NOT_REMOVABLE)
            return _fail(400, "failure: can not change a mounted RAID from this emulator")
        disk = self.state.by_id(key)
        if disk is None:
            return _fail(404)
        if method == "GET":
            return Answer(200, self._json_disk(disk))
        if method == "DELETE":
            self.state.remove(disk)
            return Answer(204)
        if method == "PATCH":
            values, size, kind = self._values(doc, adding=False)
            if kind is not None:
                raise RosFailure("failure: type can not be changed")
            self.state.update(disk, values, size)
            return Answer(200, self._json_disk(disk))
        return _fail(400, "no such command")

    def _add(self, doc: dict[str, object]) -> Disk:
        doc = dict(doc)
        source = self._copy_from(doc.pop("copy-from", None))
        values, size, kind = self._values(doc, adding=True)
        if kind is None:
            raise RosFailure("missing value(s) of argument(s) type")
        if kind != "file":
            raise RosFailure(assumptions.UNSUPPORTED_TYPE)
        return self.state.add(values, size, source)

    def _copy_from(self, raw: object) -> Disk | None:
        """``copy-from`` names the other item by its ``.id`` (A33, A34)."""
        if raw is None:
            return None
        match = _ITEM_ID.fullmatch(raw) if isinstance(raw, str) else None
        source = self.state.by_id(int(match.group(1), 16)) if match is not None else None
        if source is None:
            raise RosFailure("no such item")
        return source

    def _file_copy(self, doc: dict[str, object]) -> None:
        """``POST /rest/file/copy``: the console's ``/file copy`` (A32), arguments as A34."""
        unknown = set(doc) - {assumptions.REST_COPY_SOURCE, assumptions.REST_COPY_NAME}
        if unknown:
            raise RosFailure(f"unknown parameter {min(unknown)}")
        source, dest = (
            _argument(doc, assumptions.REST_COPY_SOURCE),
            _argument(doc, assumptions.REST_COPY_NAME),
        )
        self.state.copy_file(self.state.image_path(source), self.state.image_path(dest))

    def _values(
        self, doc: dict[str, object], *, adding: bool
    ) -> tuple[dict[str, object], Size | None, str | None]:
        values: dict[str, object] = {}
        size: Size | None = None
        kind: str | None = None
        for key, raw in doc.items():
            if not isinstance(raw, str):
                raise RosFailure(f"invalid value for argument {key}")
            if key == "type" and adding:
                if raw not in _DISK_TYPES:
                    raise RosFailure("input does not match any value of type")
                kind = raw
            elif key == "file-size":
                try:
                    size = parse_routeros_size(raw)
                except InvalidArgument:
                    raise RosFailure("invalid value for argument file-size") from None
            elif key in DISK_ATTRS:
                values[key] = disk_value(key, raw)
            else:
                raise RosFailure(f"unknown parameter {key}")
        return values, size, kind

    # --- /file ----------------------------------------------------------------------------

    def _file_item(self, method: str, key: int) -> Answer:
        entry = next((e for e in self.state.files() if file_key(e) == key), None)
        if entry is None:
            return _fail(404)
        if method == "GET":
            return Answer(200, _json_file(entry))
        if method == "DELETE":
            self.state.remove_file(entry)
            return Answer(204)
        return _fail(400, "no such command")

    # --- listings -------------------------------------------------------------------------

    def _items(self, menu: str) -> list[dict[str, str]]:
        if menu == "disk":
            return [self._json_disk(disk) for _key, disk in self.state.items()]
        return [_json_file(e) for e in self.state.files()]

    def _select(self, menu: str, query: Mapping[str, str], proplist: str) -> list[dict[str, str]]:
        wanted = {k: v for k, v in query.items() if not k.startswith(".")}
        if menu == "disk" and set(wanted) == {"slot"}:  # the driver's every lookup: no stat
            disk = self.state.by_slot(wanted["slot"])
            if wanted["slot"] == self.state.pool_name:
                rows = [self._json_disk(None)]
            else:
                rows = [self._json_disk(disk)] if disk is not None else []
        else:
            rows = [r for r in self._items(menu) if all(r.get(k) == v for k, v in wanted.items())]
        if proplist:
            keep = {".id", *proplist.split(",")}
            rows = [{k: v for k, v in r.items() if k in keep} for r in rows]
        return rows

    def _post_print(self, menu: str, doc: dict[str, object]) -> list[dict[str, str]]:
        query: dict[str, str] = {}
        words = doc.get(".query", [])
        if not isinstance(words, list):
            raise RosFailure("invalid value for argument .query")
        for word in words:
            key, sep, value = str(word).partition("=")
            if not sep:
                raise RosFailure(f"unsupported .query word {word!r} (this emulator: key=value)")
            query[key] = value
        props = doc.get(".proplist", [])
        proplist = ",".join(props) if isinstance(props, list) else str(props)
        return self._select(menu, query, proplist)

    def _resource(self) -> dict[str, str]:
        return {
            "uptime": f"{int(time.monotonic() - _STARTED)}s",
            "version": VERSION,
            "board-name": "RDS2216 (emulated)",
            "platform": "MikroTik",
            "architecture-name": platform.machine() or "x86_64",
            "cpu-count": "1",
            "total-hdd-space": str(self.state.pool_size.bytes),
            "free-hdd-space": str(self.state.free()),
        }


def _body(raw: bytes) -> dict[str, object]:
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("failed to parse JSON body") from None
    if not isinstance(doc, dict):
        raise TypeError("JSON body must be an object")
    return doc


def _argument(doc: Mapping[str, object], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise RosFailure(f"missing value(s) of argument(s) {key}")
    return value


def _json_file(entry: FileEntry) -> dict[str, str]:
    out = {".id": f"*{file_key(entry):X}", "name": entry.name, "type": entry.kind}
    if entry.size is not None:
        out["size"] = str(entry.size)
    out["last-modified"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.modified))
    return out
