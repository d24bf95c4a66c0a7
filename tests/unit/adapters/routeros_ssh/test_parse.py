"""
The parser, fed captured RouterOS output, re-wrapped output and random or mutated text.

It must read every wrapping RouterOS may produce, and for anything else raise MalformedOutput
(with the raw text), never another exception and never a wrong volume.
"""

from __future__ import annotations

import contextlib
import random
import re
import uuid

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rds_csi.adapters.routeros_ssh.parse import (
    RouterOsError,
    is_error_text,
    parse_detail,
    split_reply,
)
from rds_csi.adapters.routeros_ssh.volumes import capacity_from_records, volume_from_record
from rds_csi.domain import (
    BackendError,
    CapacityReport,
    DiskPath,
    MalformedOutput,
    Nqn,
    Size,
    Volume,
    VolumeId,
)
from rds_csi.domain.size import GIB, MIB, TIB
from rds_csi.emulator.assumptions import DISK_LEGEND
from rds_csi.emulator.render import HeaderWrap, Row, WrapStyle, render_detail
from rds_csi.emulator.state import Disk, file_disk_props


CRLF = "\r\n"

# FACTS.md section 1: `/disk/print detail where slot="vm-storage-001"` on an RDS2216, 7.24.4.
FACTS_CAPTURE = CRLF.join(
    [
        "Flags: B - BLOCK-DEVICE; t - NVME-TCP-EXPORT",
        (
            '31 Bt type=file slot="vm-storage-001" slot-default="" parent="" fs=- '
            'model="/raid10/vm-storage-001.img" size=1 099 511 627 776 mount-filesystem=no '
            "mount-read-only=no compress=no sector-size=512 raid-master=none nvme-tcp-export=yes"
        ),
        (
            '      nvme-tcp-server-port=4420 nvme-tcp-server-nqn="nqn.2026-09.com.mikrotik:'
            'rds2216.vm-storage-001" nvme-tcp-server-allow-host-name="" iscsi-export=no '
            "nfs-sharing=no smb-sharing=no media-sharing=no media-interface=none swap=no"
        ),
        "      file-path=/raid10/vm-storage-001.img file-size=1024.0GiB file-offset=0",
        "",
    ]
)

# The multi-record RAID capture's shape: a positional flag column and a " " separator line.
RAID_CAPTURE = CRLF.join(
    [
        "Flags: B - BLOCK-DEVICE; M - MOUNTED; r - RAID-MEMBER",
        '26 BM  type=raid slot="raid10" size=16 003 143 565 312 free=14 789 895 307 264 use=8%',
        '       mount-point="raid10" state="clean" fs=xfs',
        " ",
        '27 B r type=hardware slot="nvme1" model="Samsung SSD" size=4 000 787 030 016',
        "",
    ]
)

VID = VolumeId("pvc-0a1b2c3d-0000-4000-8000-00000000abcd")


def _ours(vid: VolumeId = VID, size: int = 10 * GIB, width: int = 80) -> str:
    base = "/storage-pool/metal-csi"
    disk = Disk(
        id=2,
        slot=vid.value,
        file_path=f"{base}/{vid}.img",
        nvme_tcp_export=True,
        nvme_tcp_server_nqn=f"nqn.2000-02.com.mikrotik:{vid}",
    )
    row = Row(1, "Bt", tuple(file_disk_props(disk, size)))
    return render_detail([row], legend=(("B", "BLOCK-DEVICE"), ("t", "NVME-TCP-EXPORT")),
                         width=width, style="token")  # fmt: skip


def _flat(vid: VolumeId = VID, size: int = 10 * GIB) -> str:
    """The record on one line (no header), as a very wide terminal prints it."""
    return _ours(vid, size, width=10_000).split(CRLF)[1]


def _expected(vid: VolumeId = VID, size: int = 10 * GIB) -> Volume:
    return Volume(vid, Size(size), DiskPath("/storage-pool/metal-csi", vid), Nqn.for_volume(vid))


class TestCaptures:
    def test_the_facts_capture_reads_field_for_field(self) -> None:
        (record,) = parse_detail(FACTS_CAPTURE)
        assert record.number == 31
        assert record.flags == {"B", "t"}
        assert record.fields["slot"] == "vm-storage-001"
        assert record.fields["size"] == "1 099 511 627 776"
        assert record.fields["nvme-tcp-export"] == "yes"
        assert record.fields["nvme-tcp-server-port"] == "4420"
        assert record.fields["nvme-tcp-server-nqn"] == (
            "nqn.2026-09.com.mikrotik:rds2216.vm-storage-001"
        )
        assert record.fields["file-path"] == "/raid10/vm-storage-001.img"
        assert record.fields["file-offset"] == "0"
        assert record.fields["nvme-tcp-server-allow-host-name"] == ""
        assert len(record.fields) == 25
        assert volume_from_record(record, FACTS_CAPTURE) is None  # not a slot of ours

    def test_the_raid_capture_reads_positional_flags_and_separators(self) -> None:
        first, second = parse_detail(RAID_CAPTURE)
        assert (first.number, first.flags) == (26, frozenset("BM"))
        assert (second.number, second.flags) == (27, frozenset("Br"))
        assert first.fields["mount-point"] == "raid10"
        assert second.fields["model"] == "Samsung SSD"
        report = capacity_from_records([first], RAID_CAPTURE, "raid10")
        assert report == CapacityReport(Size(16_003_143_565_312), Size(14_789_895_307_264))

    def test_a_disk_of_ours_becomes_the_volume(self) -> None:
        text = _ours()
        (record,) = parse_detail(text)
        assert volume_from_record(record, text) == _expected()

    def test_an_empty_match_is_no_records(self) -> None:
        header = "Flags: X - DISABLED; A - ACQUIRED; E - EMPTY; B - BLOCK-DEVICE; M - MOUNTED;"
        assert (
            parse_detail(header + CRLF + "       F - FORMATTING; t - NVME-TCP-EXPORT" + CRLF) == ()
        )
        assert parse_detail("Flags: B - BLOCK-DEVICE" + CRLF) == ()
        assert parse_detail("") == ()

    def test_a_value_cut_mid_token_is_joined_back(self) -> None:
        # WW commit a28f18e: `file-path=/storage-pool/metal-csi/pvc-xxx` then `-yyy.img`
        text = _ours().replace(f"{VID}.img file-size", f"{VID}.img file-size")
        cut = CRLF.join(
            [
                "Flags: B - BLOCK-DEVICE; t - NVME-TCP-EXPORT",
                f'1 Bt type=file slot="{VID.value[:20]}',
                f'     {VID.value[20:]}" model="/storage-pool/metal-csi/{VID}.img" size=10 737 4',
                "     18 240 nvme-tcp-export=yes nvme-tcp-server-port=44",
                f'     20 nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:{VID}" file-path=/storage-',
                f"     pool/metal-csi/{VID.value[:12]}",
                f"-{VID.value[13:]}.img file-size=10.0GiB",
                "",
            ]
        )
        assert text
        (record,) = parse_detail(cut)
        assert volume_from_record(record, cut) == _expected()

    def test_ansi_colour_codes_are_ignored(self) -> None:
        text = _ours().replace("type=file", "\x1b[32mtype\x1b[0m=file")
        (record,) = parse_detail(text)
        assert record.fields["type"] == "file"


class TestRefusals:
    @pytest.mark.parametrize(
        ("text", "why"),
        [
            (FACTS_CAPTURE[:-2], "middle of a line"),
            (FACTS_CAPTURE.replace('slot="vm-storage-001"', 'slot="vm-storage-001'), None),
            (FACTS_CAPTURE.replace("fs=-", "fs=- fs=-"), "twice"),
            (FACTS_CAPTURE.replace("swap=no", "swap=no\x07"), "control characters"),
            ("garbage line\r\n", "unexpected line"),
            (FACTS_CAPTURE.replace("31 Bt", "31 Bt=x"), None),
            (RAID_CAPTURE.replace("27 B r", "26 B r"), "not increasing"),
            (FACTS_CAPTURE.replace('model="', 'model="\\q'), "escape"),
        ],
    )
    def test_broken_output_is_malformed_with_the_raw_text(self, text: str, why: str | None) -> None:
        with pytest.raises(MalformedOutput, match=why) as caught:
            parse_detail(text)
        assert caught.value.raw == text

    @pytest.mark.parametrize(
        ("old", "new", "why"),
        [
            ("size=10 737 418 240 ", "", "has no size"),
            ("nvme-tcp-export=yes", "nvme-tcp-export=perhaps", "not yes or no"),
            ("nvme-tcp-server-port=4420", "nvme-tcp-server-port=99999", "nvme-tcp-server-port"),
            ("nqn.2000-02.com.mikrotik:", "nqn.2000-02.com.mikrotik;", "not an NQN"),
            ('model="/storage-pool/metal-csi/', 'model="/elsewhere/', "but model"),
        ],
    )
    def test_a_disk_of_ours_with_a_bad_field_is_refused_not_guessed(
        self, old: str, new: str, why: str
    ) -> None:
        flat = _flat()
        assert old in flat
        text = flat.replace(old, new) + CRLF
        (record,) = parse_detail(text)
        with pytest.raises(MalformedOutput, match=why):
            volume_from_record(record, text)

    @pytest.mark.parametrize("shown", ["1.4GiB", "1.5GiB", "1464.8MiB", "9.9TiB", "?"])
    def test_a_file_size_display_never_vetoes_a_disk(self, shown: str) -> None:
        """Issue 11 fix 3: rounding or truncating the display (A29) is RouterOS's business."""
        size = 1500 * MIB
        text = _flat(size=size).replace("file-size=1.5GiB", f"file-size={shown}") + CRLF
        (record,) = parse_detail(text)
        assert volume_from_record(record, text) == _expected(size=size)

    def test_a_disk_whose_export_is_off_is_a_volume_not_exported(self) -> None:
        """Issue 11 fix 2: such a row prints no nvme-tcp-server-* fields (A8; real RAID rows)."""
        flat = re.sub(r' nvme-tcp-server-[a-z-]+=("[^"]*"|[0-9]+)', "", _flat())
        text = flat.replace("nvme-tcp-export=yes", "nvme-tcp-export=no") + CRLF
        (record,) = parse_detail(text)
        assert "nvme-tcp-server-port" not in record.fields
        volume = volume_from_record(record, text)
        assert volume == attrs.evolve(_expected(), exported=False)

    def test_an_exported_disk_without_its_port_is_still_refused(self) -> None:
        text = re.sub(r" nvme-tcp-server-port=[0-9]+", "", _flat()) + CRLF
        (record,) = parse_detail(text)
        with pytest.raises(MalformedOutput, match="nvme-tcp-server-port"):
            volume_from_record(record, text)

    def test_foreign_disks_are_not_volumes(self) -> None:
        flat = _flat()
        for old, new in [
            ("type=file", "type=raid"),
            (f'slot="{VID}"', 'slot="vm-1"'),
            (f"{VID}.img", "other.img"),
        ]:
            text = flat.replace(old, new) + CRLF
            (record,) = parse_detail(text)
            assert volume_from_record(record, text) is None


class TestReplies:
    MARKER = "rds-csi-end-0123456789abcdef"

    def test_the_marker_line_is_split_off(self) -> None:
        assert split_reply(FACTS_CAPTURE + self.MARKER + CRLF, self.MARKER) == FACTS_CAPTURE
        assert split_reply(self.MARKER + "\n", self.MARKER) == ""

    @pytest.mark.parametrize(
        "error",
        [
            "failure: not enough space",
            "no such item",
            "bad command name dsk (line 1 column 2)",
            "expected end of command (line 1 column 37)",
        ],
    )
    def test_an_error_instead_of_the_marker_is_a_routeros_error(self, error: str) -> None:
        with pytest.raises(RouterOsError) as caught:
            split_reply(error + CRLF, self.MARKER)
        assert caught.value.text == error

    @pytest.mark.parametrize(
        ("text", "why"),
        [
            (FACTS_CAPTURE, "incomplete or garbled"),
            ("", "without any answer"),
            (FACTS_CAPTURE + "rds-csi-end-0123", "incomplete or garbled"),
            (MARKER + CRLF + "Flags:" + CRLF, "after the command's end marker"),
        ],
    )
    def test_a_reply_without_its_marker_is_malformed(self, text: str, why: str) -> None:
        with pytest.raises(MalformedOutput, match=why):
            split_reply(text, self.MARKER)

    def test_print_output_is_never_taken_for_an_error(self) -> None:
        assert not is_error_text(FACTS_CAPTURE)
        assert not is_error_text("31 Bt type=file\r\n")
        assert is_error_text("syntax error (line 1 column 10)\r\n")


# --- properties --------------------------------------------------------------------------

volume_ids = st.uuids().map(lambda u: VolumeId(f"pvc-{u}"))
sizes = st.integers(min_value=1, max_value=16 * TIB // MIB).map(lambda m: m * MIB)


def _rewrap(line: str, cuts: list[int], consume: list[bool], indent: int) -> str:
    """Break ``line`` before each cut; a break at a space may eat it (a soft wrap)."""
    out, start = [], 0
    for cut, eat in zip(cuts, consume, strict=False):
        out.append(line[start:cut])
        start = cut + 1 if eat and line[cut] == " " else cut
    out.append(line[start:])
    return CRLF.join([out[0], *(" " * indent + piece for piece in out[1:])]) + CRLF


class TestProperties:
    @given(volume_ids, sizes, st.integers(50, 250), st.sampled_from(["token", "hard"]))
    def test_any_width_and_wrap_style_reads_the_same_volume(
        self, vid: VolumeId, size: int, width: int, style: str
    ) -> None:
        disk = Disk(id=9, slot=vid.value, file_path=f"/storage-pool/metal-csi/{vid}.img",
                    nvme_tcp_export=True, nvme_tcp_server_nqn=str(Nqn.for_volume(vid)))  # fmt: skip
        row = Row(12, "Bt", tuple(file_disk_props(disk, size)))
        text = render_detail([row], legend=(("B", "B"), ("t", "T")), width=width, style=style)  # type: ignore[arg-type]
        (record,) = parse_detail(text)
        assert volume_from_record(record, text) == _expected(vid, size)

    @given(volume_ids, sizes, st.data())
    def test_breaks_anywhere_at_least_32_characters_apart_read_the_same_volume(
        self, vid: VolumeId, size: int, data: st.DataObject
    ) -> None:
        one_line = _flat(vid, size)
        # RouterOS's narrowest line (80) leaves far more than 32 after the "1 Bt " prefix
        positions = sorted(
            data.draw(st.sets(st.integers(5 + 32, len(one_line) - 1), max_size=12), label="cuts")
        )
        cuts = [p for i, p in enumerate(positions) if i == 0 or p - positions[i - 1] >= 32]
        consume = data.draw(st.lists(st.booleans(), min_size=len(cuts), max_size=len(cuts)))
        indent = data.draw(st.sampled_from([5, 0, 8]), label="indent")
        wrapped = _rewrap(one_line, cuts, consume, indent)
        continuations = wrapped.split(CRLF)[1:]
        # unindented continuations are read too, unless one could be a record ("0 key=..."):
        # then the answer must be refused, not guessed
        ambiguous = indent == 0 and any(re.match(r" ?[0-9]+ ", line) for line in continuations)
        try:
            found = _read_volumes(wrapped)
        except MalformedOutput:
            assert ambiguous
        else:
            assert found == [_expected(vid, size)]

    @given(volume_ids, sizes, st.data())
    def test_breaks_anywhere_never_give_a_wrong_volume(
        self, vid: VolumeId, size: int, data: st.DataObject
    ) -> None:
        one_line = _flat(vid, size)
        cuts = sorted(data.draw(st.sets(st.integers(5, len(one_line) - 1), max_size=30)))
        consume = data.draw(st.lists(st.booleans(), min_size=len(cuts), max_size=len(cuts)))
        wrapped = _rewrap(one_line, cuts, consume, 5)
        try:
            found = _read_volumes(wrapped)
        except MalformedOutput:
            return
        assert found == [_expected(vid, size)]

    @pytest.mark.parametrize(
        ("name", "cuts"),
        [("nvme-tcp-export", [-1, 1]), ("file-path", [-1, 1]), ("nvme-tcp-server-port", [-1, 2])],
    )
    def test_a_property_name_cut_onto_a_line_of_its_own_is_refused(
        self, name: str, cuts: list[int]
    ) -> None:
        # hypothesis found it: "n" alone on a line, then "vme-tcp-export=yes", read as an
        # unexported disk (a wrong volume) instead of being refused
        vid = VolumeId("pvc-e3e70682-c209-4cac-629f-6fbed82c07cd")
        one_line = _flat(vid, 954 * MIB)
        at = one_line.index(" " + name + "=") + 1  # cuts are relative to the name's start
        wrapped = _rewrap(one_line, [at + c for c in cuts], [False, False], 5)
        with pytest.raises(MalformedOutput):
            _read_volumes(wrapped)

    @given(st.text())
    def test_random_text_raises_nothing_but_malformed_output(self, text: str) -> None:
        _only_malformed(text)

    @given(st.data())
    def test_mutated_output_raises_nothing_but_malformed_output(self, data: st.DataObject) -> None:
        text = data.draw(st.sampled_from([FACTS_CAPTURE, RAID_CAPTURE, _ours()]))
        rng = random.Random(data.draw(st.integers(0, 2**32)))  # noqa: S311 - test data
        chars = list(text)
        for _ in range(data.draw(st.integers(1, 8))):
            i = rng.randrange(len(chars))
            match rng.randrange(4):
                case 0:
                    del chars[i]
                case 1:
                    chars.insert(i, rng.choice(' "=\\\r\n\x00x9-~[]'))
                case 2:
                    chars[i] = rng.choice(' "=\\\r\nq5')
                case _:
                    chars[i:i] = chars[rng.randrange(len(chars)) :][:10]
        _only_malformed("".join(chars))


def _read_volumes(text: str) -> list[Volume | None]:
    """What list_volumes would make of ``text`` (None: a disk that is not ours)."""
    return [volume_from_record(r, text) for r in parse_detail(text)]


def _only_malformed(text: str) -> None:
    marker = "rds-csi-end-" + uuid.uuid4().hex[:16]
    for attempt in (
        lambda: parse_detail(text),
        lambda: split_reply(text, marker),
        lambda: [volume_from_record(r, text) for r in parse_detail(text)],
        lambda: capacity_from_records(parse_detail(text), text, "raid10"),
    ):
        with contextlib.suppress(MalformedOutput, RouterOsError):
            attempt()


def test_an_untranslated_routeros_error_is_a_backend_error_with_its_words() -> None:
    with pytest.raises(BackendError) as caught:
        split_reply("not enough permissions (9)\r\n", "rds-csi-end-0123456789abcdef")
    assert caught.value.backend_message == "not enough permissions (9)"
    assert "not enough permissions (9)" in str(caught.value)


class TestHeaders:
    """Issue 11 fix 5: the ``Flags:`` legend may wrap anyhow (assumption A6)."""

    @pytest.mark.parametrize("wrap", ["indented", "flush", "cut", "none"])
    @pytest.mark.parametrize("width", [60, 80, 230])
    @pytest.mark.parametrize("style", ["token", "hard", "none"])
    def test_a_header_wrapped_any_way_is_read(
        self, wrap: HeaderWrap, width: int, style: WrapStyle
    ) -> None:
        disk = Disk(
            id=2,
            slot=VID.value,
            file_path=f"/storage-pool/metal-csi/{VID}.img",
            nvme_tcp_export=True,
            nvme_tcp_server_nqn=f"nqn.2000-02.com.mikrotik:{VID}",
        )
        row = Row(27, "ABEMFSt", tuple(file_disk_props(disk, 10 * GIB)))
        text = render_detail([row], legend=DISK_LEGEND, width=width, style=style, header_wrap=wrap)
        (record,) = parse_detail(text)
        assert record.number == 27
        assert volume_from_record(record, text) == _expected()

    @pytest.mark.parametrize("wrap", ["indented", "flush", "cut", "none"])
    def test_the_whole_legend_of_an_empty_match_is_read(self, wrap: HeaderWrap) -> None:
        text = render_detail([], legend=DISK_LEGEND, width=80, style="hard", header_wrap=wrap)
        assert text.count(CRLF) > 1 or wrap == "none"
        assert parse_detail(text) == ()

    def test_a_header_that_is_not_a_legend_is_malformed(self) -> None:
        text = f"Flags: B - BLOCK-DEVICE{CRLF}and then some words{CRLF}"
        with pytest.raises(MalformedOutput, match="flags header"):
            parse_detail(text)
