"""The emulator's RouterOS console: scripting forms, print layouts and error texts."""

from __future__ import annotations

import pytest

from rds_csi.emulator.console import Console

from .conftest import IMAGE, VID, add_line


ADD = f'/disk add type=file file-path="{IMAGE}"'


def _ok(console: Console, line: str) -> str:
    output, ok = console.run(line)
    assert ok, output
    return output


class TestScripting:
    def test_put_prints_strings_numbers_and_variables_with_crlf(self, console: Console) -> None:
        assert _ok(console, ':put "a b"; :put 42; :local x "v"; :put "<$x>"') == (
            "a b\r\n42\r\n<v>\r\n"
        )

    def test_if_runs_the_branch_its_condition_picks(self, console: Console) -> None:
        line = (
            f':if ([:len [/disk find where slot="{VID}"]] = 0) do={{:put "absent"}} '
            'else={:put "present"}'
        )
        assert _ok(console, line) == "absent\r\n"
        _ok(console, add_line())
        assert _ok(console, line) == "present\r\n"

    def test_the_adapters_create_line_adds_once_and_prints_both_times(
        self, console: Console
    ) -> None:
        line = (
            f':if ([:len [/disk find where slot="{VID}"]] = 0) do={{'
            f'/file remove [/file find where name="{IMAGE}"]; {add_line()}}}; '
            f'/disk print detail where slot="{VID}"; :put "rds-csi-end-0123456789abcdef"'
        )
        first = _ok(console, line)
        second = _ok(console, line)
        assert first == second
        assert first.endswith("rds-csi-end-0123456789abcdef\r\n")
        assert len(console.state.disks()) == 1

    def test_add_returns_the_new_id_and_find_lists_ids(self, console: Console) -> None:
        assert _ok(console, f":put [{add_line()}]") == "*2\r\n"
        assert _ok(console, ":put [/disk find]") == "*1;*2\r\n"
        assert _ok(console, f':put [/disk find slot="{VID}"]') == "*2\r\n"

    def test_get_reads_one_property(self, console: Console) -> None:
        _ok(console, add_line("2G"))
        assert _ok(console, f':put [/disk get [find slot="{VID}"] file-size]') == "2147483648\r\n"

    def test_where_combines_conditions(self, console: Console) -> None:
        _ok(console, add_line())
        other = "pvc-99999999-2222-3333-4444-555555555555"
        _ok(console, add_line(slot=other, path=f"storage-pool/vols/{other}.img"))
        assert _ok(console, '/disk print count-only where slot~"^pvc-"') == "2\r\n"
        assert _ok(console, f'/disk print count-only where slot~"^pvc-" and !(slot="{VID}")') == (
            "1\r\n"
        )
        assert _ok(console, '/disk print count-only where type=file || mount-point="x"') == "2\r\n"
        assert _ok(console, "/disk print count-only where nvme-tcp-export") == "2\r\n"
        assert _ok(console, "/disk print count-only where mounted") == "1\r\n"

    def test_as_value_prints_records_chained_with_semicolons(self, console: Console) -> None:
        _ok(console, add_line())
        text = _ok(console, f':put [/disk print as-value where slot="{VID}"]')
        assert text.startswith(".id=*2;type=file;slot=" + VID + ";")
        assert ";size=10737418240;" in text


class TestPrintLayout:
    def test_detail_follows_the_captured_layout(self, console: Console) -> None:
        _ok(console, add_line())
        lines = _ok(console, f'/disk print detail where slot="{VID}"').split("\r\n")
        assert lines[0] == "Flags: B - BLOCK-DEVICE; t - NVME-TCP-EXPORT"
        assert lines[1].startswith(f'1 Bt type=file slot="{VID}"')
        assert all(line.startswith("     ") for line in lines[2:-1])
        assert lines[-1] == ""
        assert all(len(line) <= 80 for line in lines)
        joined = "".join(line.strip() for line in lines[1:])
        assert "size=10 737 418 240" in " ".join(line.strip() for line in lines[1:])
        assert "file-size=10.0GiB" in joined

    def test_records_are_numbered_globally_and_separated_by_a_space_line(
        self, console: Console
    ) -> None:
        _ok(console, add_line())
        text = _ok(console, "/disk print detail")
        assert "\r\n \r\n1 B t type=file" in text
        assert text.startswith(
            "Flags: B - BLOCK-DEVICE; M - MOUNTED; t - NVME-TCP-EXPORT\r\n0 BM  "
        )

    def test_an_empty_match_still_prints_the_flags_header(self, console: Console) -> None:
        text = _ok(console, '/disk print detail where slot="nothing"')
        assert text.startswith("Flags: X - DISABLED; ")
        assert "1 " not in text

    def test_the_pool_row_reports_size_free_and_use(self, console: Console) -> None:
        _ok(console, add_line("25G"))
        text = _ok(console, '/disk print detail where mount-point="storage-pool"')
        flat = " ".join(line.strip() for line in text.split("\r\n"))
        assert "size=107 374 182 400 free=80 530 636 800 use=25%" in flat

    def test_file_print_shows_names_without_a_slash_and_humanized_sizes(
        self, console: Console
    ) -> None:
        _ok(console, add_line("1G"))
        text = _ok(console, f'/file print detail where name="{IMAGE}"')
        flat = " ".join(line.strip() for line in text.split("\r\n"))
        assert flat.startswith(f"2 name={IMAGE} type=.img file size=1.0GiB last-modified=")


class TestErrors:
    @pytest.mark.parametrize(
        ("line", "error"),
        [
            ("/dsk print", "bad command name dsk (line 1 column 2)"),
            ("/disk prnt", "bad command name prnt (line 1 column 7)"),
            ("/disk/prnt", "bad command name prnt (line 1 column 7)"),
            ("print", "bad command name print (line 1 column 1)"),
            (":frobnicate", "bad command name frobnicate (line 1 column 2)"),
            ("/disk print detail foo", "expected end of command (line 1 column 20)"),
            ("/disk add type=file bogus=1", "expected end of command (line 1 column 21)"),
            ('/disk print where nonsense="x"', "expected end of command (line 1 column 19)"),
            (':put "open', "syntax error (line 1 column 6)"),
            (":put [/disk find", "syntax error (line 1 column 17)"),
            (':put "a"\n:put "b"', "syntax error (line 1 column 9)"),
            ("/disk add type=file", "missing value(s) of argument(s) file-path"),
            ("/disk add file-path=a/b.img file-size=1G", "missing value(s) of argument(s) type"),
            (f"{ADD} file-size=lots", "invalid value for argument file-size"),
            (f"{ADD} file-size=1G nvme-tcp-export=maybe",
             "input does not match any value of nvme-tcp-export"),
            (f"{ADD} file-size=1G nvme-tcp-server-port=70000",
             "value of nvme-tcp-server-port out of range (1..65535)"),
            ("/disk remove *99", "no such item"),
        ],
    )  # fmt: skip
    def test_routeros_error_texts(self, console: Console, line: str, error: str) -> None:
        output, ok = console.run(line)
        assert (output, ok) == (error + "\r\n", False)
        assert console.state.disks() == []

    def test_a_syntax_error_anywhere_runs_nothing(self, console: Console) -> None:
        output, ok = console.run(f'{add_line()}; :put "oops')
        assert not ok
        assert output.startswith("syntax error")
        assert console.state.disks() == []

    def test_a_failure_stops_the_rest_of_the_line(self, console: Console) -> None:
        _ok(console, add_line())
        output, ok = console.run(f':put "before"; {add_line()}; :put "after"')
        assert (output, ok) == ("before\r\nfailure: already have such entry\r\n", False)

    def test_an_empty_find_makes_remove_and_set_no_ops(self, console: Console) -> None:
        assert _ok(console, '/disk remove [find slot="none"]') == ""
        assert _ok(console, '/disk set [find slot="none"] file-size=2G') == ""
