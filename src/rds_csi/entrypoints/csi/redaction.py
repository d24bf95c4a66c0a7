"""Requests as log text, with every secret masked."""

from __future__ import annotations

from google.protobuf import text_format
from google.protobuf.message import Message

from rds_csi.entrypoints.csi._pb import csi_pb2


__all__ = ["MASK", "redacted", "redacted_text"]

MASK = "***"
# Not marked csi_secret, but the spec warns they may carry credentials (e.g. CIFS passwords).
_SENSITIVE_FIELDS = frozenset({"mount_flags"})


def redacted(message: Message) -> Message:
    """A copy of ``message`` with the values of every ``csi_secret`` field (each ``secrets``
    map) and every ``mount_flags`` entry replaced by ``***``, at any depth."""
    copy = type(message)()
    copy.CopyFrom(message)
    _mask(copy)
    return copy


def redacted_text(message: Message) -> str:
    return text_format.MessageToString(redacted(message), as_one_line=True)


def _mask(message: Message) -> None:
    for field, value in message.ListFields():
        if field.GetOptions().Extensions[csi_pb2.csi_secret]:
            for key in list(value):
                value[key] = MASK
        elif field.name in _SENSITIVE_FIELDS:
            value[:] = [MASK] * len(value)
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            for item in value if field.is_repeated else [value]:
                _mask(item)
