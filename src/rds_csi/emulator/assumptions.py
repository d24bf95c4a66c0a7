"""
Every RouterOS behaviour the emulator had to guess, and every limit it enforces, in one place.

Each entry says what the emulator does, its source ("FACTS §N" = ``shared/routeros/FACTS.md``
section N; "guess" = nobody has seen it on an RDS), the ``Dialect`` setting that flips it (the
contract suite runs the adapter under every preset in ``dialect.DIALECTS``), and what the SSH
adapter does about it. When someone captures the real thing on an RDS, change the value here,
the dialect presets, and the test that pins it; ``docs/testing-real-rds.md`` lists what to
check first.

A1. Line width of exec-channel output
    Emulator: ``EXEC_WIDTH`` = 80 columns; a ``<N>w`` login option (``admin+ct200w``) sets it
    Source: guess (FACTS §5 "80 columns is likely"; the interactive capture is ~230, §1)
    Dialect: ``width`` (today 80, strict 80, wide 230)
    Adapter tolerates: any width of at least ~40 columns
A2. How long records wrap
    Emulator: ``token`` breaks between tokens and cuts a token longer than a line; ``hard``
        cuts the record text at every width boundary, mid-token; ``none`` never wraps
    Source: FACTS §9 / WW a28f18e (exec splits mid-token at some width); §1 (interactive
        capture breaks between tokens)
    Dialect: ``wrap_style`` (today token, strict hard, wide token)
    Adapter tolerates: all three; continuation lines indented by any amount
A3. Item numbers
    Emulator: numbers right-aligned to the widest shown; the first ``/disk`` item (the pool)
        is ``first_number``
    Source: FACTS §1 (global numbering: file disks at 26-31); alignment is a guess
    Dialect: ``first_number`` (today 0, strict 26, wide 26)
    Adapter tolerates: any number, any leading spaces; never addresses items by number
A4. Flag column when no shown row has a flag
    Emulator: no column: ``N type=...``
    Source: guess
    Adapter tolerates: any spacing
A5. Header of an empty match (``where`` finds nothing)
    Emulator: ``Flags:`` with the menu's whole legend
    Source: FACTS §1 (WW e26544e: the header is still printed)
    Adapter tolerates: a ``Flags:`` header with any legend, or none
A6. Header wrapping
    Emulator: ``indented`` wraps the legend at ``; `` with continuation lines indented by 7;
        ``flush`` wraps there without indent; ``cut`` cuts it at the width mid-word, no indent;
        ``none`` keeps one line
    Source: guess (the capture's header fits one line, §1)
    Dialect: ``header_wrap`` (today indented, strict cut, wide none)
    Adapter tolerates: all four (header lines hold no ``=``; the joined legend is checked)
A7. Separator between records
    Emulator: a line holding one space, between records only
    Source: FACTS §1 (multi-record RAID capture)
    Adapter tolerates: blank or absent
A8. ``nvme-tcp-server-*`` properties of a disk whose export is off
    Emulator: not printed
    Source: FACTS §1 (real RAID rows with ``nvme-tcp-export=no`` print none)
    Adapter: reads the disk as a volume that is not exported (listed, deletable, re-exported
        by a repeated create)
A9. Text of a full pool on ``/disk add`` / ``set file-size``
    Emulator: ``NOT_ENOUGH_SPACE``
    Source: guess (FACTS §1: no real example; WW looks for "not enough space")
    Adapter tolerates: any line with "not enough space", "no space left", "insufficient space",
        "disk full"
A10. How the pool accounts a file disk
    Emulator: at its full ``file-size`` (the capture's free space fell by ~1.1 TiB for a 1 TiB
        disk), although the image is a sparse file on the emulator's host
    Source: FACTS §1 (inferred)
    Adapter tolerates: free space that does not drop exactly
A11. ``/disk add`` on a path whose file exists
    Emulator: the file is reused and truncated/extended to ``file-size``
    Source: guess
    Adapter tolerates: create removes a stale image of the same volume first (only if one is
        found: see A13)
A12. Duplicate ``slot`` (or NQN of an exported disk) on ``/disk add``
    Emulator: ``failure: already have such entry``
    Source: FACTS §1 error texts (the text is real; that ``/disk`` uses it here is a guess)
    Adapter tolerates: the create re-reads the winner
A13. Empty ``[find ...]`` passed to ``remove`` / ``set``
    Emulator: ``no-op`` does nothing; ``no-such-item`` fails with ``no such item``
    Source: guess (FACTS §1: "common practice ... unverified on ROSE")
    Dialect: ``empty_find`` (today no-op, strict no-such-item, wide no-op)
    Adapter: never depends on it: every ``remove`` it sends is guarded by ``:if ([:len
        [find ...]] > 0)``; a ``set`` on a vanished disk reads as not found either way
A14. Exit status of a command that printed an error
    Emulator: ``error_exit_status`` (0 or 1)
    Source: guess (FACTS §1 "Exit codes: not verified"; §9)
    Dialect: ``error_exit_status`` (today 0, strict 1, wide 0)
    Adapter tolerates: both; the exit status is never trusted, a ``:put`` end marker proves
        success and the error text is read either way
A15. Where errors go
    Emulator: stdout, followed by CRLF
    Source: guess (FACTS §9)
    Adapter tolerates: stdout and stderr read together
A16. Parent directories of ``file-path``
    Emulator: made as needed
    Source: guess (FACTS §9: a setup guide creates the base directory first)
A17. A ``file-path`` outside the pool's mount point
    Emulator: ``FILE_OUTSIDE_POOL``
    Source: guess
    Adapter tolerates: never sent
A18. ``/file remove`` of a disk's image while the disk exists
    Emulator: ``FILE_IN_USE``
    Source: guess
    Adapter tolerates: delete removes the disk first
A19. ``/file print detail``
    Emulator: no header; ``name=`` bare (quoted if it holds a space or quote); ``type=.img
        file``; humanized ``size``; ``last-modified=YYYY-MM-DD HH:MM:SS``
    Source: FACTS §3 (7.16+ docs sample)
    Adapter tolerates: the adapter never parses ``/file``
A20. Pool row of ``/disk print detail``
    Emulator: ``emulator``: flags ``BM``, ``type=raid``, btrfs, ``size``/``free`` in grouped
        bytes, ``use=N%``, ``mount-point="<pool>"``, ``state="clean"``; ``real`` adds what
        the real row has: ``fs=xfs``, ``fs-uuid``, ``total-inodes``, ``free-inodes``,
        ``raid-uuid``, ``raid-chunk-size`` (values made up: ``POOL_FS_UUID``,
        ``POOL_RAID_UUID``, one inode per ``_BYTES_PER_INODE``)
    Source: FACTS §1 (pool rows: ``fs=xfs``, read-only property list)
    Dialect: ``pool_row`` (today emulator, strict real, wide real)
    Adapter tolerates: reads only ``size`` and ``free``
A21. A newline (or any control character) in the exec command line
    Emulator: ``syntax error (line 1 column N)``
    Source: guess (FACTS §5: one command line per exec)
    Adapter tolerates: never sent
A22. Missing mandatory ``add`` argument
    Emulator: ``missing value(s) of argument(s) <name>``
    Source: guess
    Adapter tolerates: passed through as a BackendError
A23. Unknown property name in ``where``
    Emulator: ``expected end of command (line 1 column N)``
    Source: FACTS §1 error texts (the text; its use here is a guess)
    Adapter tolerates: never sent
A24. A whole exec line is atomic with respect to other sessions
    Emulator: yes (one lock)
    Source: guess
    Adapter: relies on it only for idempotence checks it repeats anyway
A25. ``:put`` of a list
    Emulator: items joined with ``;``
    Source: FACTS §1 (TIK §10.1)
A26. ``get <disk> file-size``
    Emulator: raw bytes
    Source: guess (FACTS §1)
    Adapter tolerates: never used
A27. Number of concurrent channels per connection
    Emulator: unlimited
    Source: guess (FACTS §9: ~19 concurrent sessions blocked on a real RDS)
    Adapter tolerates: caps its own (a setting; keep it well under 19)
A28. Unsupported ``type=`` on ``/disk add`` (anything but ``file``)
    Emulator: ``UNSUPPORTED_TYPE``
    Source: emulator limit
    Adapter tolerates: never sent
A29. ``file-size`` display rounding
    Emulator: ``nearest`` rounds to one decimal, ``truncate`` cuts (1500 MiB -> ``1.4GiB``)
    Source: guess (FACTS §1: the only sample, ``1024.0GiB``, cannot tell)
    Dialect: ``size_display`` (today nearest, strict truncate, wide nearest)
    Adapter: ignores display fields; ``size`` (bytes) is the truth
A30. Limits on a ``file-path``
    Emulator: each segment ``MAX_PATH_SEGMENT`` = 255 characters of ``[A-Za-z0-9._-]`` (not
        starting with ``.`` or ``-``), the whole path ``MAX_FILE_PATH`` = 4095 characters;
        otherwise ``invalid value for argument file-path``
    Source: guess (Linux NAME_MAX and PATH_MAX; RouterOS's own limits are unknown)
    Adapter: sends at most 255 characters per value (``commands._SAFE_STRING``)
A31. Pool name and ``slot``
    Emulator: a pool name of 1-64 ``[A-Za-z0-9_-]``; any slot string
    Source: guess (FACTS §7: slot validation rules unverified)
A32. ``/file copy <source> name=<dest>``
    Emulator: copies the file's data for real (a reflink where the host filesystem can, else
        a sparse-preserving copy, slowed by ``copy_throughput``), inside the exec line, which
        returns when the copy is complete; a destination that exists is ``FILE_EXISTS``; the
        copy counts against the pool at the source's size (A10)
    Source: guess (FACTS §2: ``/file/copy`` exists; its argument names, whether it reflinks
        on btrfs, and whether it returns before the copy ends are all unverified)
    Adapter: ``--snapshot-method file-copy`` (the default) copies with it, then adds the disk;
        a disk appears only on a complete copy, and an image without its disk is removed
        before a retry. First thing to check on hardware (docs/testing-real-rds.md).
A33. ``/disk add copy-from=<item>``
    Emulator: takes the other disk's settings (all but ``slot`` and ``file-path``), then the
        given ones, and when ``file-path`` names no existing file, copies the other disk's
        image there as ``/file copy`` does (A32); ``file-size`` then grows the copy
    Source: guess (FACTS §1: documented only as "takes the default values of a new item's
        properties from another item"; the Go driver's snapshots rely on a data copy, never
        verified on hardware)
    Adapter: ``--snapshot-method copy-from`` for parity with the Go driver; it always sets
        ``nvme-tcp-export`` itself (a snapshot is never exported) and grows a restored disk
        with ``set file-size`` when the copy kept its source's size
A34. Snapshot copies over REST
    Emulator: ``POST /rest/file/copy`` takes ``REST_COPY_SOURCE`` (``source``) and
        ``REST_COPY_NAME`` (``name``), copies as A32 and answers ``[]``; ``PUT /rest/disk``
        takes ``copy-from`` as the other disk's ``.id`` (``*1A``) and copies as A33; an
        unknown ``.id`` is ``no such item``
    Source: guess (FACTS §4: REST runs any command by ``POST /rest/<path>/<cmd>`` with the
        console's argument names, but the name of ``/file copy``'s unnamed source argument,
        what the copy answers, and whether ``copy-from`` takes an ``.id`` are unverified)
    Adapter: ``routeros_rest.snapshots`` (``COPY_SOURCE_ARG``, ``COPY_DEST_ARG``); check on
        hardware with ``--backend rest`` before trusting REST snapshots
"""

from __future__ import annotations

from typing import Final


__all__ = [
    "DISK_LEGEND",
    "ERROR_EXIT_STATUS",
    "EXEC_WIDTH",
    "FILE_EXISTS",
    "FILE_IN_USE",
    "FILE_OUTSIDE_POOL",
    "HEADER_INDENT",
    "MAX_FILE_PATH",
    "MAX_PATH_SEGMENT",
    "NOT_ENOUGH_SPACE",
    "POOL_FS_UUID",
    "POOL_NOT_REMOVABLE",
    "POOL_RAID_UUID",
    "REST_COPY_NAME",
    "REST_COPY_SOURCE",
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
FILE_EXISTS: Final = "failure: file already exists"  # A32
POOL_NOT_REMOVABLE: Final = "failure: can not remove mounted disk"  # A20
REST_COPY_SOURCE: Final = "source"  # A34
REST_COPY_NAME: Final = "name"  # A34
UNSUPPORTED_TYPE: Final = "failure: this emulator makes only type=file disks"  # A28
MAX_PATH_SEGMENT: Final = 255  # A30
MAX_FILE_PATH: Final = 4095  # A30
POOL_FS_UUID: Final = "2f0e6a1c-7d5b-4c1e-9a3f-5b8d0c6e4a21"  # A20: made up
POOL_RAID_UUID: Final = "9c41d2b7-3e8a-4f60-b1d5-7a2c9e0f3b68"  # A20: made up

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
