"""Logging setup: one handler on stderr, text (key=value) or JSON lines."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Final, TextIO

from rds_csi.domain.text import printable


__all__ = ["LOG_FORMATS", "LOG_LEVELS", "configure_logging"]

LOG_LEVELS: Final = ("debug", "info", "warning", "error")
LOG_FORMATS: Final = ("text", "json")


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


def _timestamp(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or not text.isprintable() or any(ch in text for ch in ' "='):
        return json.dumps(text)  # escapes every control character: one record, one line
    return text


class TextFormatter(logging.Formatter):
    """``2026-01-01T00:00:00.000Z INFO rds_csi.rpc rpc method=CreateVolume code=OK ...``"""

    def format(self, record: logging.LogRecord) -> str:
        # The message may carry request values: escaped, so it cannot start a fake line.
        message = printable(record.getMessage(), limit=None)
        parts = [_timestamp(record), record.levelname, record.name, message]
        parts += [f"{k}={_quote(v)}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, msg, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_fields(record))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Route every logger to one stderr handler; replaces handlers set before."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # paramiko logs every handshake and auth at INFO; one line per RPC is our INFO budget.
    logging.getLogger("paramiko").setLevel(max(logging.WARNING, root.level))
