"""
Values that reach mount(8), mkfs and friends on the node: paths and mount options.

One rule each, applied wherever a layer takes such a value (the node use cases, the mount
adapters, the capability), so a value that passed once passes everywhere.
"""

from __future__ import annotations

import posixpath
import re
from typing import Final

import attrs

from rds_csi.domain.errors import InvalidArgument
from rds_csi.domain.text import option_name, quoted


__all__ = ["MOUNT_OPTION_MAX_CHARS", "NODE_PATH_MAX_BYTES", "MountOption", "NodePath"]

NODE_PATH_MAX_BYTES: Final = 4096  # PATH_MAX on Linux
MOUNT_OPTION_MAX_CHARS: Final = 256
# One option of a mount(8) -o list: no separator, space, quote or leading dash, so it can
# neither split into two options nor read as a flag.
_MOUNT_OPTION_RE: Final = re.compile(
    rf"[A-Za-z0-9_][A-Za-z0-9_.:=/+@-]{{0,{MOUNT_OPTION_MAX_CHARS - 1}}}"
)
_SHOWN: Final = 128


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _path_problem(text: str) -> str:
    if not text:
        return "is required"
    if len(text.encode()) > NODE_PATH_MAX_BYTES:
        return f"is longer than {NODE_PATH_MAX_BYTES} bytes"
    if not text.startswith("/"):
        return f"{_shown(text)} is not an absolute path"
    # NUL and newline cannot be passed or read back from mountinfo; none belongs in a path.
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):  # noqa: PLR2004
        return f"{_shown(text)} contains a control character"
    if ".." in text.split("/"):
        return f"{_shown(text)} must not contain '..'"
    return ""


@attrs.frozen(order=True)
class NodePath:
    """
    A path on this node kubelet or a port passes around: absolute (so never read as an
    option by a tool), without ``..`` or control characters, at most PATH_MAX bytes, and
    normalized (``//`` and ``.`` segments and a trailing ``/`` folded) so two spellings of one
    path compare equal.
    """

    value: str = attrs.field()

    @value.validator
    def _check(self, _attr: attrs.Attribute[str], value: str) -> None:
        problem = _path_problem(value)
        if problem:
            raise InvalidArgument("path", problem)

    @classmethod
    def parse(cls, text: str, *, field: str = "path") -> NodePath:
        """
        Raises:
            InvalidArgument: naming ``field``, when ``text`` breaks the rule.
        """
        problem = _path_problem(text)
        if problem:
            raise InvalidArgument(field, problem)
        return cls(posixpath.normpath(text))

    def __str__(self) -> str:
        return self.value


@attrs.frozen(order=True)
class MountOption:
    """One mount(8) option (``noatime``, ``context=system_u:object_r:x:s0``)."""

    value: str = attrs.field()

    @value.validator
    def _check(self, _attr: attrs.Attribute[str], value: str) -> None:
        if _MOUNT_OPTION_RE.fullmatch(value) is None:
            raise InvalidArgument("mount option", _option_problem(value))

    @classmethod
    def parse(cls, text: str, *, field: str = "mount option") -> MountOption:
        """
        Raises:
            InvalidArgument: naming ``field``, when ``text`` is not one plain option.
        """
        if _MOUNT_OPTION_RE.fullmatch(text) is None:
            raise InvalidArgument(field, _option_problem(text))
        return cls(text)

    def __str__(self) -> str:
        return self.value


def _option_problem(text: str) -> str:
    # By name only: the value may be a password (cifs's password=...).
    return (
        f"the option named {quoted(option_name(text))} is not a mount option (no spaces, "
        f"commas, quotes or leading dash; at most {MOUNT_OPTION_MAX_CHARS} characters; "
        "its value is not shown)"
    )
