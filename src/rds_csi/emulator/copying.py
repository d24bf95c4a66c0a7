"""
A real data copy of a disk image, for ``/file copy`` and ``/disk add copy-from=`` (A32, A33).

A reflink (``FICLONE``) where the host filesystem has them (btrfs, xfs): instant and sharing
blocks, as a copy-on-write pool would. Elsewhere a sparse-preserving copy: only the data
extents (``SEEK_DATA``/``SEEK_HOLE``) are copied, with ``os.copy_file_range``, so a 1 GiB
image holding 512 MiB copies 512 MiB. ``throughput`` (bytes per second, 0 = unlimited) slows
the sparse copy, and forbids the reflink, so a slow copy can be tested.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pathlib
import time
from typing import Final


__all__ = ["copy_image"]

FICLONE: Final = 0x40049409  # _IOW(0x94, 9, int), linux/fs.h
_CHUNK: Final = 8 << 20
_NO_REFLINK: Final = frozenset(
    {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EPERM}
)


def _reflink(src: int, dst: int) -> bool:
    try:
        fcntl.ioctl(dst, FICLONE, src)
    except OSError as exc:
        if exc.errno in _NO_REFLINK:
            return False
        raise
    return True


def _extents(fd: int, size: int) -> list[tuple[int, int]]:
    """The (offset, length) of every data extent; the whole file if holes are not reported."""
    found: list[tuple[int, int]] = []
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole remains
                break
            return [(0, size)]
        end = os.lseek(fd, start, os.SEEK_HOLE)
        found.append((start, end - start))
        offset = end
    return found


def _copy_range(src: int, dst: int, offset: int, length: int, throughput: int) -> None:
    done = 0
    while done < length:
        step = min(_CHUNK, length - done)
        started = time.monotonic()
        try:
            n = os.copy_file_range(src, dst, step, offset + done, offset + done)
        except OSError as exc:
            if exc.errno not in {errno.EXDEV, errno.ENOSYS, errno.EINVAL}:
                raise
            n = os.pwrite(dst, os.pread(src, step, offset + done), offset + done)
        if n <= 0:
            raise OSError(errno.EIO, "short copy")
        done += n
        if throughput:
            left = n / throughput - (time.monotonic() - started)
            if left > 0:
                time.sleep(left)


def copy_image(src: pathlib.Path, dst: pathlib.Path, *, throughput: int = 0) -> str:
    """
    Copy ``src`` to the new file ``dst`` (which must not exist); returns ``reflink`` or
    ``sparse``. A failure removes ``dst``: nothing half-made stays.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as fin:
        size = os.fstat(fin.fileno()).st_size
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            if not throughput and _reflink(fin.fileno(), fd):
                return "reflink"
            os.ftruncate(fd, size)  # holes stay holes
            for offset, length in _extents(fin.fileno(), size):
                _copy_range(fin.fileno(), fd, offset, length, throughput)
        except BaseException:
            os.close(fd)
            fd = -1
            with contextlib.suppress(FileNotFoundError):
                dst.unlink()
            raise
        finally:
            if fd >= 0:
                os.close(fd)
    return "sparse"
