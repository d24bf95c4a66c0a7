"""
Every RouterOS behaviour the emulator had to guess, in one place.

``shared/routeros/FACTS.md`` marks these as unverified (or gives no real example). The emulator
picks the behaviour below; the SSH adapter is written to tolerate the alternatives named here.
When someone captures the real thing on an RDS, change the value here and the test that pins it.

A1. Line width of exec-channel output
    Emulator: ``EXEC_WIDTH`` = 80 columns; a ``<N>w`` login option (``admin+ct200w``) sets it
    Adapter tolerates: any width, both wrap styles
A2. How a token longer than a line is split
    Emulator: starts on a fresh continuation line and is cut at the width, the rest on the next
        line, indented like every continuation (``WRAP_STYLE`` = "token"); the "hard" style
        cuts the whole record text at every width boundary, terminal-like
    Adapter tolerates: mid-token splits anywhere, indented or not
A3. Right-aligned item numbers
    Emulator: numbers are right-aligned to the widest number shown
    Adapter tolerates: any leading spaces
A4. Flag column when no shown row has a flag
    Emulator: no column: ``N type=...``
    Adapter tolerates: any spacing
A5. Header of an empty match (``where`` finds nothing)
    Emulator: ``Flags:`` with the menu's whole legend (the "header still printed" observation)
    Adapter tolerates: a ``Flags:`` line with any legend, or none
A6. Header wrapping
    Emulator: the legend wraps at ``; `` boundaries, continuation lines indented by 7
    Adapter tolerates: indented ``L - NAME`` continuation lines
A7. Separator between records
    Emulator: a line holding one space, between records only
    Adapter tolerates: blank or absent
A8. ``nvme-tcp-server-*`` properties of a disk whose export is off
    Emulator: not printed
    Adapter: refuses such a disk as malformed (its disks are always exported)
A9. Text of a full pool on ``/disk add`` / ``set file-size``
    Emulator: ``NOT_ENOUGH_SPACE``
    Adapter tolerates: any line with "not enough space", "no space left", "insufficient space",
        "disk full"
A10. How the pool accounts a file disk
    Emulator: at its full ``file-size`` (the RDS capture's free space fell by ~1.1 TiB for a 1
        TiB disk, so it looks preallocated), although the image is a sparse file on the
        emulator's host
    Adapter tolerates: free space that does not drop exactly
A11. ``/disk add`` on a path whose file exists
    Emulator: the file is reused and truncated/extended to ``file-size``
    Adapter tolerates: our create removes a stale image of the same volume first
A12. Duplicate ``slot`` (or NQN of an exported disk) on ``/disk add``
    Emulator: ``failure: already have such entry``
    Adapter tolerates: the create re-reads the winner
A13. Empty ``[find ...]`` passed to ``remove`` / ``set``
    Emulator: a silent no-op
    Adapter tolerates: "no such item" is treated the same
A14. Exit status of a command that printed an error
    Emulator: ``ERROR_EXIT_STATUS`` = 0 (errors are text)
    Adapter tolerates: exit status is never trusted; a ``:put`` end marker proves success
A15. Where errors go
    Emulator: stdout, followed by CRLF
    Adapter tolerates: stdout and stderr read together
A16. Parent directories of ``file-path``
    Emulator: made as needed
A17. A ``file-path`` outside the pool's mount point
    Emulator: ``FILE_OUTSIDE_POOL``
    Adapter tolerates: never sent
A18. ``/file remove`` of a disk's image while the disk exists
    Emulator: ``FILE_IN_USE``
    Adapter tolerates: delete removes the disk first
A19. ``/file print detail``
    Emulator: no header; ``name=`` bare (quoted if it holds a space or quote); ``type=.img
        file``; humanized ``size``; ``last-modified=YYYY-MM-DD HH:MM:SS``
    Adapter tolerates: the adapter never parses ``/file``
A20. Pool row of ``/disk print detail``
    Emulator: flags ``BM``, ``type=raid``, btrfs, ``size``/``free`` in grouped bytes,
        ``use=N%``, ``mount-point="<pool>"``, ``state="clean"`` (field order in
        ``render.POOL_ORDER``)
    Adapter tolerates: reads only ``size`` and ``free``
A21. A newline (or any control character) in the exec command line
    Emulator: ``syntax error (line 1 column N)``
    Adapter tolerates: never sent
A22. Missing mandatory ``add`` argument
    Emulator: ``missing value(s) of argument(s) <name>``
    Adapter tolerates: passed through as a BackendError
A23. Unknown property name in ``where``
    Emulator: ``expected end of command (line 1 column N)``
    Adapter tolerates: never sent
A24. A whole exec line is atomic with respect to other sessions
    Emulator: yes (one lock)
A25. ``:put`` of a list
    Emulator: items joined with ``;``
A26. ``get <disk> file-size``
    Emulator: raw bytes (FACTS' guess)
    Adapter tolerates: never used
A27. Number of concurrent channels per connection
    Emulator: unlimited
    Adapter tolerates: the adapter caps its own (8 by default)
A28. Unsupported ``type=`` on ``/disk add`` (anything but ``file``)
    Emulator: ``UNSUPPORTED_TYPE``
    Adapter tolerates: never sent
"""

from __future__ import annotations

from typing import Final


__all__ = [
    "DISK_LEGEND",
    "ERROR_EXIT_STATUS",
    "EXEC_WIDTH",
    "FILE_IN_USE",
    "FILE_OUTSIDE_POOL",
    "HEADER_INDENT",
    "NOT_ENOUGH_SPACE",
    "POOL_NOT_REMOVABLE",
    "UNSUPPORTED_TYPE",
    "WRAP_STYLE",
]

EXEC_WIDTH: Final = 80  # A1
WRAP_STYLE: Final = "token"  # A2
HEADER_INDENT: Final = 7  # A6: len("Flags: ")
ERROR_EXIT_STATUS: Final = 0  # A14
NOT_ENOUGH_SPACE: Final = "failure: not enough space"  # A9
FILE_OUTSIDE_POOL: Final = "failure: file must be on a mounted disk"  # A17
FILE_IN_USE: Final = "failure: file is in use by a disk"  # A18
POOL_NOT_REMOVABLE: Final = "failure: can not remove mounted disk"  # A20
UNSUPPORTED_TYPE: Final = "failure: this emulator makes only type=file disks"  # A28

# The /disk flag legend in RouterOS's order (FACTS section 1, "Flags"); the names are the
# property names in capitals, as the capture's `B - BLOCK-DEVICE; t - NVME-TCP-EXPORT` shows.
DISK_LEGEND: Final[tuple[tuple[str, str], ...]] = (
    ("X", "DISABLED"),
    ("A", "ACQUIRED"),
    ("E", "EMPTY"),
    ("B", "BLOCK-DEVICE"),
    ("M", "MOUNTED"),
    ("F", "FORMATTING"),
    ("S", "SWAP-ENABLED"),
    ("f", "RAID-MEMBER-FAILED"),
    ("r", "RAID-MEMBER"),
    ("c", "ENCRYPTED"),
    ("g", "GUID-PARTITION-TABLE"),
    ("p", "PARTITION"),
    ("t", "NVME-TCP-EXPORT"),
    ("i", "ISCSI-EXPORT"),
    ("s", "SMB-SHARING"),
    ("n", "NFS-SHARING"),
    ("m", "MEDIA-SHARING"),
    ("L", "SELF-ENCRYPTED-AND-LOCKED"),
    ("O", "SELF-ENCRYPTION-ENABLED"),
    ("o", "SELF-ENCRYPTION-SUPPORTED"),
)
