"""
Mount points on the node's real filesystem, made and removed with a mark, and path resolution.

A mount point the driver makes carries a mark: a directory holds an empty ``MARK_NAME`` file,
a file (a block volume's target) holds ``FILE_MARK``. The mount hides the mark; once unmounted
it tells what the driver made from what kubelet, an operator or anyone else made, so removal
never deletes somebody else's file or directory. Shared by the real Mounter and the fake one,
whose mount points are real too.
"""

from __future__ import annotations

import logging
import os
import pathlib
import stat
from typing import Final

from rds_csi.domain import BackendError


__all__ = ["FILE_MARK", "MARK_NAME", "make_marked", "remove_marked", "resolve_path"]

_log = logging.getLogger(__name__)

MARK_NAME: Final = ".rds-csi-mount-point"
FILE_MARK: Final = b"rds-csi mount point\n"
_CREATE: Final = os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW


def resolve_path(path: str) -> str:
    """Every symlink in ``path`` resolved (missing components kept as written)."""
    try:
        return os.path.realpath(path)
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot resolve {path}", str(exc)) from exc


def _write_new(path: str | pathlib.Path, data: bytes, mode: int) -> None:
    fd = os.open(path, _CREATE, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def make_marked(path: str, *, file: bool) -> bool:
    """
    Create ``path`` (and its parents) as a marked directory or file; False if it exists.

    Raises:
        BackendError: it exists as the other kind, or cannot be created.
    """
    point = pathlib.Path(path)
    try:
        st = point.stat()
    except FileNotFoundError:
        pass
    except OSError as exc:
        # EIO/ENOTCONN: a stale mount sits there; the caller's mount_at will say what.
        raise BackendError(f"cannot create the mount point {path}", str(exc)) from exc
    else:
        if file == stat.S_ISDIR(st.st_mode):
            kind = "a file" if file else "a directory"
            raise BackendError(f"cannot use {path} as a mount point", f"it is not {kind}")
        return False
    try:
        point.parent.mkdir(parents=True, exist_ok=True)
        if file:
            # O_EXCL: a file someone else made in between is theirs, not ours to remove.
            _write_new(path, FILE_MARK, 0o640)
        else:
            point.mkdir(mode=0o750)
    except FileExistsError:
        return False
    except OSError as exc:
        raise BackendError(f"cannot create the mount point {path}", str(exc)) from exc
    if not file:
        try:
            _write_new(point / MARK_NAME, b"", 0o400)
        except OSError as exc:
            point.rmdir()  # made a moment ago, empty: ours to take back
            raise BackendError(f"cannot mark the mount point {path}", str(exc)) from exc
    _log.info("made the mount point %s", path)
    return True


def _file_is_marked(path: str, size: int) -> bool:
    if size != len(FILE_MARK):
        return False
    try:
        with pathlib.Path(path).open("rb") as handle:
            return handle.read(len(FILE_MARK) + 1) == FILE_MARK
    except OSError:
        return False


def remove_marked(path: str) -> bool:
    """
    Remove ``path`` if ``make_marked`` made it and it holds nothing but the mark.

    Returns whether it was removed: False for a missing path, a symlink, or anything unmarked.

    Raises:
        BackendError: a marked directory holds more than the mark, or removal failed.
    """
    point = pathlib.Path(path)
    try:
        st = point.lstat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise BackendError(f"cannot remove {path}", str(exc)) from exc
    try:
        if stat.S_ISDIR(st.st_mode):
            entries = [entry.name for entry in point.iterdir()]
            if MARK_NAME not in entries:
                _log.info("left %s in place: the driver did not make it", path)
                return False
            if len(entries) > 1:
                raise BackendError(
                    f"will not remove {path}", "it holds more than the mount point's mark"
                )
            (point / MARK_NAME).unlink()
            point.rmdir()  # never a recursive delete of a volume's data
        elif stat.S_ISREG(st.st_mode) and _file_is_marked(path, st.st_size):
            point.unlink()
        else:
            _log.info("left %s in place: the driver did not make it", path)
            return False
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise BackendError(f"cannot remove {path}", str(exc)) from exc
    _log.info("removed the mount point %s", path)
    return True
