"""`rds-csi doctor node` on prepared trees: what each finding says, and its fix."""

from __future__ import annotations

import io
import json
import pathlib

import attrs
import pytest

from rds_csi.entrypoints.config import settings_from
from rds_csi.entrypoints.doctor.node import NodeHost, check_node
from rds_csi.entrypoints.doctor.report import Findings, Status, render


TOOLS = {
    "blkid",
    "mount",
    "umount",
    "mkfs.ext4",
    "resize2fs",
    "mkfs.xfs",
    "xfs_growfs",
    "mkfs.ext3",
}


def _host(tmp_path: pathlib.Path, *, tools: set[str] = TOOLS, shared: bool = True) -> NodeHost:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "modules").write_text(
        "nvme_tcp 49152 0 - Live 0x0\nnvme_fabrics 32768 1 nvme_tcp, Live 0x0\n"
    )
    lib = tmp_path / "lib" / "6.1.0"
    lib.mkdir(parents=True)
    etc = tmp_path / "etc" / "nvme"
    etc.mkdir(parents=True)
    (etc / "hostnqn").write_text("nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f\n")
    (etc / "hostid").write_text("1b4e28ba-2fa1-11d2-883f-0016d3cca427\n")
    kubelet = tmp_path / "kubelet"
    kubelet.mkdir()
    tag = "shared:1" if shared else ""
    (tmp_path / "mountinfo").write_text(f"22 1 259:1 / / rw,relatime {tag} - ext4 /dev/x rw\n")
    return NodeHost(
        proc_modules=tmp_path / "proc" / "modules",
        lib_modules=lib,
        etc_nvme=etc,
        mountinfo=tmp_path / "mountinfo",
        kubelet_dir=kubelet,
        which=lambda name: f"/usr/bin/{name}" if name in tools else None,
    )


def _run(host: NodeHost, nvme_binary: str = "true", **config: object) -> dict[str, dict[str, str]]:
    findings = Findings()
    check_node(
        settings_from({"node_id": "n1", "nvme_binary": nvme_binary, **config}), findings, host
    )
    out = io.StringIO()
    render(findings, out, as_json=True)
    doc = json.loads(out.getvalue())
    assert doc["ok"] is not any(c["status"] == "FAIL" for c in doc["checks"])
    return {c["name"]: c for c in doc["checks"]}


def test_a_ready_node_passes(tmp_path: pathlib.Path) -> None:
    found = _run(_host(tmp_path))
    assert {c["status"] for c in found.values()} == {"OK", "SKIP"}
    for name in (
        "kernel modules",
        "host nqn",
        "host id",
        "nvme-cli",
        "filesystem tools",
        "kubelet dir",
    ):
        assert found[name]["status"] == "OK", found[name]
    assert found["data address"]["status"] == "SKIP"


def test_modules_installed_but_not_loaded_warn_with_modprobe(tmp_path: pathlib.Path) -> None:
    host = _host(tmp_path)
    host.proc_modules.write_text("")
    (host.lib_modules / "modules.dep").write_text(
        "kernel/drivers/nvme/host/nvme-tcp.ko.zst: kernel/drivers/nvme/host/nvme-fabrics.ko.zst\n"
        "kernel/drivers/nvme/host/nvme-fabrics.ko.zst:\n"
    )
    check = _run(host)["kernel modules"]
    assert check["status"] == "WARN"
    assert "modprobe nvme_tcp" in check["fix"]


def test_built_in_modules_are_fine(tmp_path: pathlib.Path) -> None:
    host = _host(tmp_path)
    host.proc_modules.write_text("")
    (host.lib_modules / "modules.builtin").write_text(
        "kernel/drivers/nvme/host/nvme-tcp.ko\nkernel/drivers/nvme/host/nvme-fabrics.ko\n"
    )
    assert _run(host)["kernel modules"]["status"] == "OK"


def test_a_kernel_without_nvme_tcp_fails(tmp_path: pathlib.Path) -> None:
    host = _host(tmp_path)
    host.proc_modules.write_text("")
    found = _run(host)
    assert found["kernel modules"]["status"] == "FAIL"


def test_missing_hostnqn_fails_with_gen_hostnqn(tmp_path: pathlib.Path) -> None:
    host = _host(tmp_path)
    (host.etc_nvme / "hostnqn").unlink()
    (host.etc_nvme / "hostid").unlink()
    found = _run(host)
    assert found["host nqn"]["status"] == "FAIL"
    assert "nvme gen-hostnqn >" in found["host nqn"]["fix"]
    assert found["host id"]["status"] == "WARN"


def test_nvme_cli_missing_or_its_version(tmp_path: pathlib.Path) -> None:
    host = _host(tmp_path)
    missing = _run(host, nvme_binary=str(tmp_path / "no-nvme"))["nvme-cli"]
    assert missing["status"] == "FAIL"
    assert "install nvme-cli" in missing["fix"]
    fake = tmp_path / "nvme"
    fake.write_text("#!/bin/sh\necho 'nvme version 2.4 (git 2.4+)'\n")
    fake.chmod(0o755)
    assert _run(host, nvme_binary=str(fake))["nvme-cli"]["detail"] == "nvme version 2.4 (git 2.4+)"


@pytest.mark.parametrize(
    ("absent", "status"),
    [({"mkfs.xfs"}, "WARN"), ({"resize2fs"}, "FAIL"), ({"blkid"}, "FAIL")],
)
def test_filesystem_tools_per_type(tmp_path: pathlib.Path, absent: set[str], status: str) -> None:
    check = _run(_host(tmp_path, tools=TOOLS - absent))["filesystem tools"]
    assert check["status"] == status
    assert next(iter(absent)) in check["detail"]


def test_kubelet_dir_missing_or_not_shared(tmp_path: pathlib.Path) -> None:
    host = _host(tmp_path, shared=False)
    private = _run(host)["kubelet dir"]
    assert private["status"] == "WARN"
    assert "Bidirectional" in private["fix"]
    gone = _run(attrs.evolve(host, kubelet_dir=tmp_path / "nope"))["kubelet dir"]
    assert gone["status"] == "FAIL"
    assert "--kubelet-dir" in gone["fix"]


def test_data_address_unreachable_fails(tmp_path: pathlib.Path) -> None:
    check = _run(_host(tmp_path), nvme_address="127.0.0.1", nvme_port=1)["data address"]
    assert check["status"] == "FAIL"
    assert "127.0.0.1:1" in check["detail"]


def test_text_lines_carry_the_fix_under_the_finding(tmp_path: pathlib.Path) -> None:
    host = _host(tmp_path)
    (host.etc_nvme / "hostnqn").unlink()
    findings = Findings()
    check_node(settings_from({"node_id": "n1", "nvme_binary": "true"}), findings, host)
    out = io.StringIO()
    render(findings, out, as_json=False)
    lines = out.getvalue().splitlines()
    at = lines.index(f"FAIL  host nqn: {host.etc_nvme / 'hostnqn'} is missing or empty")
    assert lines[at + 1].startswith("      fix: nvme gen-hostnqn")
    assert findings.failed
    assert Status.FAIL in {c.status for c in findings.checks}
