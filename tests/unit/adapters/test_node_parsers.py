"""The node adapters' pure parts, fed output in the real tools' formats: nvme-cli 2.3 as recorded
in NVME-VM-FACTS or as its source prints it, util-linux 2.38 and Linux 6.18 captured here."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rds_csi.adapters.loop.parse import Export, LoopDevice, parse_exports, parse_loop_devices
from rds_csi.adapters.mount.parse import parse_blkid_export, parse_mountinfo, unescape_mount_path
from rds_csi.adapters.nvme_cli import HostIdentity, connect_argv
from rds_csi.adapters.nvme_cli.parse import (
    ConnectFailure,
    classify_connect_failure,
    namespace_order,
    parse_address,
    parse_connect_output,
    parse_disconnect_output,
    parse_discovery_log,
    parse_host_id,
    parse_host_nqn,
)
from rds_csi.application.ports import MountInfo
from rds_csi.domain import InvalidArgument, MalformedOutput, Nqn, NvmeTarget, ReconnectPolicy


NQN = "nqn.2000-02.com.mikrotik:pvc-11111111-2222-3333-4444-555555555555"


class TestNvmeOutput:
    def test_connect_json_names_the_controller(self) -> None:
        assert parse_connect_output('{\n  "device":"nvme0"\n}\n') == "nvme0"

    @pytest.mark.parametrize(
        "stdout", ["", "device: nvme0\n", '{"device":"../../etc"}', "[1]", '{"device":7}']
    )
    def test_anything_else_names_no_controller(self, stdout: str) -> None:
        assert parse_connect_output(stdout) is None

    @pytest.mark.parametrize(
        ("stderr", "kind"),
        [
            ("already connected\n", ConnectFailure.ALREADY_CONNECTED),
            ("could not add new controller: already connected\n", ConnectFailure.ALREADY_CONNECTED),
            (
                (
                    "Failed to write to /dev/nvme-fabrics: Connection refused\n"
                    "could not add new controller: failed to write to nvme-fabrics device\n"
                ),
                ConnectFailure.UNREACHABLE,
            ),
            ("could not add new controller: connection refused\n", ConnectFailure.UNREACHABLE),
            (
                "Failed to write to /dev/nvme-fabrics: Connection timed out\n",
                ConnectFailure.UNREACHABLE,
            ),
            (
                (
                    "Failed to write to /dev/nvme-fabrics: Input/output error\n"
                    "could not add new controller: failed to write to nvme-fabrics device\n"
                ),
                ConnectFailure.REJECTED,
            ),
            (
                (
                    "Failed to write to /dev/nvme-fabrics: Invalid argument\n"
                    "could not add new controller: invalid arguments/configuration\n"
                ),
                ConnectFailure.REJECTED,
            ),
            (
                "Failed to open /dev/nvme-fabrics: No such file or directory\n",
                ConnectFailure.UNKNOWN,
            ),
        ],
    )
    def test_connect_failures_are_told_apart_by_their_words(
        self, stderr: str, kind: ConnectFailure
    ) -> None:
        assert classify_connect_failure(stderr) is kind

    def test_the_discovery_log_lists_subsystems_not_referrals(self) -> None:
        stdout = (
            """{
  "genctr":3,
  "records":[
    {"trtype":"tcp","adrfam":"ipv4","subtype":"current discovery subsystem","treq":"not specified",
     "portid":1,"trsvcid":"4420","subnqn":"nqn.2014-08.org.nvmexpress.discovery",
     "traddr":"10.0.0.5"},
    {"trtype":"tcp","adrfam":"ipv4","subtype":"nvme subsystem","treq":"not specified",
     "portid":1,"trsvcid":"4420","subnqn":"@NQN@","traddr":"10.0.0.5","sectype":"none"}
  ]
}"""
        ).replace("@NQN@", NQN)
        assert parse_discovery_log(stdout) == frozenset({NQN})

    @pytest.mark.parametrize("stdout", ["", "Discovery Log Number of Records 1", '{"genctr":1}'])
    def test_a_discovery_log_we_cannot_read_is_malformed(self, stdout: str) -> None:
        with pytest.raises(MalformedOutput):
            parse_discovery_log(stdout)

    def test_disconnect_reports_its_count(self) -> None:
        assert parse_disconnect_output(f"NQN:{NQN} disconnected 1 controller(s)\n") == 1
        assert parse_disconnect_output(f"NQN:{NQN} disconnected 0 controller(s)\n") == 0
        assert parse_disconnect_output("") is None

    def test_a_controller_address_splits_into_fields(self) -> None:
        assert parse_address("traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1\n") == {
            "traddr": "127.0.0.1",
            "trsvcid": "4420",
            "src_addr": "127.0.0.1",
        }
        assert parse_address("traddr=fe80::1,trsvcid=4420")["traddr"] == "fe80::1"

    @pytest.mark.parametrize(
        ("name", "order"),
        [
            ("nvme0n1", (0, 1)),
            ("nvme12n3", (12, 3)),
            ("nvme0c0n1", None),  # the hidden per-path node
            ("ng0n1", None),  # the generic char device
            ("nvme0n1p1", None),
            ("nvme0", None),
            ("subsysnqn", None),
        ],
    )
    def test_only_block_namespaces_count(self, name: str, order: tuple[int, int] | None) -> None:
        assert namespace_order(name) == order

    def test_host_files_are_validated(self) -> None:
        hostnqn = "nqn.2014-08.org.nvmexpress:uuid:f21a127f-b6ee-4187-a7cf-845ea827f5e7"
        assert parse_host_nqn(hostnqn + "\n", source="hostnqn") == Nqn(hostnqn)
        hostid = "7d828c0f-95fc-4d20-9f66-510902715cc6"
        assert parse_host_id(hostid + "\n", source="hostid") == hostid
        with pytest.raises(InvalidArgument, match="hostnqn"):
            parse_host_nqn("$(reboot)", source="hostnqn")
        with pytest.raises(InvalidArgument, match="hostid"):
            parse_host_id("{7d828c0f-95fc-4d20-9f66-510902715cc6}", source="hostid")


class TestConnectArgv:
    def test_an_ipv6_target_with_a_finite_loss_timeout(self) -> None:
        target = NvmeTarget(
            address="fd00::5",
            port=4421,
            nqn=Nqn(NQN),
            reconnect=ReconnectPolicy(ctrl_loss_tmo=0, reconnect_delay=1, keep_alive_tmo=0),
        )
        argv = connect_argv("nvme", target, HostIdentity())
        assert argv == [
            "nvme",
            "connect",
            "-t",
            "tcp",
            "-a",
            "fd00::5",
            "-s",
            "4421",
            "-n",
            NQN,
            "--ctrl-loss-tmo=0",
            "--reconnect-delay=1",
            "-o",
            "json",
        ]


class TestLosetup:
    def test_the_json_list_with_a_deleted_and_a_detaching_device(self) -> None:
        stdout = """{
   "loopdevices": [
      {"name": "/dev/loop0", "back-file": "/data/disks/pvc-1.img", "autoclear": false},
      {"name": "/dev/loop1", "back-file": "/data/disks/pvc-2.img (deleted)", "autoclear": false},
      {"name": "/dev/loop2", "back-file": "/data/disks/pvc-3.img", "autoclear": "1"},
      {"name": "/dev/loop3", "back-file": null, "autoclear": false}
   ]
}"""
        assert parse_loop_devices(stdout) == [
            LoopDevice("/dev/loop0", "/data/disks/pvc-1.img"),
            LoopDevice("/dev/loop1", "/data/disks/pvc-2.img", deleted=True),
            LoopDevice("/dev/loop2", "/data/disks/pvc-3.img", autoclear=True),
        ]

    @pytest.mark.parametrize("stdout", ["", "\n", '{\n   "loopdevices": [\n\n   ]\n}\n'])
    def test_no_devices(self, stdout: str) -> None:
        assert parse_loop_devices(stdout) == []

    @pytest.mark.parametrize("stdout", ["/dev/loop0: []: (/x)", '{"devices": []}', "[{}]"])
    def test_garbage_is_malformed(self, stdout: str) -> None:
        with pytest.raises(MalformedOutput):
            parse_loop_devices(stdout)


class TestExportsFile:
    def test_the_emulators_format(self) -> None:
        text = json.dumps(
            {
                "version": 1,
                "exports": {
                    NQN: {
                        "slot": "pvc-1",
                        "image": "/var/lib/e/pvc-1.img",
                        "port": 4420,
                        "size": 1073741824,
                    }
                },
            }
        )
        assert parse_exports(text, source="x.json") == {
            NQN: Export(NQN, "/var/lib/e/pvc-1.img", "pvc-1", 4420, 1073741824)
        }

    @pytest.mark.parametrize(
        "text",
        [
            "",
            '{"version": 2, "exports": {}}',
            '{"version": 1}',
            '{"version": 1, "exports": {"nqn.x:y": {"image": "relative.img"}}}',
            '{"version": 1, "exports": {"nqn.x:y": {"slot": "s"}}}',
        ],
    )
    def test_anything_else_is_malformed_and_names_the_file(self, text: str) -> None:
        with pytest.raises(MalformedOutput, match=r"x\.json"):
            parse_exports(text, source="x.json")


class TestMountTable:
    def test_a_mount_a_read_only_bind_and_a_block_bind(self) -> None:
        text = (
            "42 27 7:0 / /tmp/t/m rw,noatime - xfs /dev/loop0 rw,inode64,noquota\n"
            "43 27 7:0 / /tmp/t/b ro,noatime shared:12 master:3 - xfs /dev/loop0 rw,inode64\n"
            "44 27 0:6 /loop0 /tmp/t/f rw,relatime - devtmpfs devtmpfs rw,size=123k,mode=755\n"
        )
        assert parse_mountinfo(text) == [
            MountInfo("/dev/loop0", "/tmp/t/m", "xfs", ("rw", "noatime"), "/", "7:0"),
            MountInfo("/dev/loop0", "/tmp/t/b", "xfs", ("ro", "noatime"), "/", "7:0"),
            MountInfo("devtmpfs", "/tmp/t/f", "devtmpfs", ("rw", "relatime"), "/loop0", "0:6"),
        ]
        assert parse_mountinfo(text)[1].read_only

    def test_escaped_paths_come_back_whole(self) -> None:
        text = r"50 27 7:1 / /var/lib/kubelet/pods/a\040b/vol\134x rw - ext4 /dev/loop1 rw" "\n"
        (entry,) = parse_mountinfo(text)
        assert entry.target == "/var/lib/kubelet/pods/a b/vol\\x"

    @given(st.text(alphabet=st.sampled_from("ab/ \t\n\\"), max_size=40))
    def test_unescape_reverses_the_kernels_escaping(self, path: str) -> None:
        escaped = "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in path)
        assert unescape_mount_path(escaped) == path

    @pytest.mark.parametrize("line", ["42 27 7:0 / /m rw ext4 /dev/x rw", "1 2 3 4 - x"])
    def test_a_broken_line_is_malformed(self, line: str) -> None:
        with pytest.raises(MalformedOutput):
            parse_mountinfo(line)


class TestBlkidAndArguments:
    def test_blkid_export(self) -> None:
        stdout = "DEVNAME=/dev/loop0\nUUID=8fdc2422\nBLOCK_SIZE=512\nTYPE=xfs\nUSAGE=filesystem\n"
        assert parse_blkid_export(stdout)["TYPE"] == "xfs"
        assert parse_blkid_export("PTUUID=1a2b\nPTTYPE=dos\n") == {
            "PTUUID": "1a2b",
            "PTTYPE": "dos",
        }
