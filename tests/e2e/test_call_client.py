"""
`rds-csi call` against the real servicers: the container wires them, a real gRPC server on a
unix socket serves them (in-memory RDS, fake node), the client runs as the CLI parses it.
"""

from __future__ import annotations

import io
import json
import pathlib
from collections.abc import Iterator

import attrs
import pytest

from rds_csi.adapters.fake_rds import InMemoryRds
from rds_csi.domain import BackendUnavailable
from rds_csi.entrypoints import client
from rds_csi.entrypoints.cli import build_parser
from rds_csi.entrypoints.config import settings_from
from rds_csi.entrypoints.container import Container
from rds_csi.entrypoints.settings import Mode


@attrs.frozen
class Ran:
    code: int
    out: str
    err: str


@attrs.define
class Served:
    rds: InMemoryRds
    container: Container
    endpoint: str
    workdir: pathlib.Path

    def call(self, *argv: str, endpoint: bool = True) -> Ran:
        """``rds-csi call [--endpoint E] ARGV``, in-process."""
        args = build_parser().parse_args(
            ["call", *(["--endpoint", self.endpoint] if endpoint else []), *argv]
        )
        out, err = io.StringIO(), io.StringIO()
        code = client.run(args, out, err)
        return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture
def served(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    for var in ("RDS_CSI_ENDPOINT", "CSI_ENDPOINT", "RDS_CSI_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # what `call` remembers
    rds = InMemoryRds()
    container = Container(
        settings=settings_from(
            {
                "node_id": "node-7",
                "backend": "fake",
                "initiator": "fake",
                "topology": "zone=a",
                "kubelet_dir": str(tmp_path),
            }
        ),
        mode=Mode.ALL,
    )
    container.raw_backend.override(rds)
    server = container.grpc_server()
    socket = tmp_path / "csi.sock"
    server.add_insecure_port(f"unix://{socket}")
    server.start()
    yield Served(rds, container, f"unix://{socket}", tmp_path)
    server.stop(None)


def _table(text: str) -> dict[str, str]:
    return {line.split()[0]: line.split(maxsplit=1)[1] for line in text.splitlines()[1:]}


class TestProbe:
    def test_not_ready_prints_the_drivers_reason_and_exits_1(self, served: Served) -> None:
        served.rds.faults.fail_next(100, lambda: BackendUnavailable("ssh: connection refused"))
        served.container.health_monitor().refresh(wait=5)
        ran = served.call("probe")
        assert ran.code == 1
        rows = _table(ran.out)
        assert rows["ready"] == "false"
        assert "ssh: connection refused" in rows["reason"]

    def test_the_reason_is_in_the_json_too(self, served: Served) -> None:
        served.rds.faults.fail_next(100, lambda: BackendUnavailable("ssh: timed out"))
        served.container.health_monitor().refresh(wait=5)
        doc = json.loads(served.call("--json", "probe").out)
        assert doc["ready"] is False
        assert "ssh: timed out" in doc["reason"]

    def test_ready_has_no_reason(self, served: Served) -> None:
        ran = served.call("probe")
        assert ran.code == 0
        assert ran.out.split() == ["field", "value", "ready", "true"]


class TestOptionsAfterTheVerb:
    def test_endpoint_json_and_timeout_go_after_the_verb(self, served: Served) -> None:
        ran = served.call(
            "info", "--endpoint", served.endpoint, "--json", "--timeout", "5", endpoint=False
        )
        assert ran.code == 0, ran.err
        assert json.loads(ran.out)["name"] == "rds.csi.srvlab.io"

    def test_before_the_verb_is_not_overwritten_by_the_verbs_default(self, served: Served) -> None:
        ran = served.call("--json", "info")
        assert json.loads(ran.out)["name"] == "rds.csi.srvlab.io"


class TestNoDriver:
    def test_a_missing_socket_says_the_driver_may_not_be_running(self, served: Served) -> None:
        gone = served.workdir / "nothing" / "csi.sock"
        ran = served.call("probe", "--endpoint", f"unix://{gone}", endpoint=False)
        assert ran.code == 1
        assert f"{gone} does not exist" in ran.err
        assert "Is the driver running?" in ran.err
        assert f"rds-csi all --endpoint unix://{gone}" in ran.err

    def test_a_dead_socket_says_so_too(self, served: Served) -> None:
        dead = served.workdir / "dead.sock"
        dead.touch()  # a leftover file where no one listens
        ran = served.call("probe", "--endpoint", f"unix://{dead}", "--timeout", "2", endpoint=False)
        assert ran.code == 1
        assert ran.err.startswith("UNAVAILABLE: ")
        assert "Is the driver running?" in ran.err

    def test_the_default_endpoint_is_the_readmes(self) -> None:
        readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
        args = build_parser().parse_args(["call", "probe"])
        assert args.endpoint == "unix:///tmp/rds-csi/csi.sock"
        assert f"rds-csi all --endpoint {args.endpoint}" in readme


class TestNodeVerbs:
    def _create(self, served: Served) -> str:
        made = served.call("--json", "create", "pvc-cli", "--size", "1Gi")
        assert made.code == 0, made.err
        return str(json.loads(made.out)["volume"]["volume_id"])

    def test_stage_and_publish_fill_the_context_from_the_id_and_defaults(
        self, served: Served
    ) -> None:
        vid = self._create(served)
        staging = served.workdir / "staging"
        staged = served.call("stage", vid, "--staging-path", str(staging))
        assert staged.code == 0, staged.err
        rows = _table(staged.out)
        assert rows["staged"] == vid
        assert rows["context.nqn"] == f"nqn.2000-02.com.mikrotik:{vid}"
        assert rows["context.nvmeAddress"] == "127.0.0.1"
        target = served.workdir / "target"
        published = served.call(
            "publish", vid, "--staging-path", str(staging), "--target-path", str(target)
        )
        assert published.code == 0, published.err

    def test_every_missing_key_is_named_at_once(
        self, served: Served, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("RDS_CSI_RDS_ADDRESS", "")
        ran = served.call(
            "stage", "pvc-x", "--staging-path", "/s", "--context", "nqn=", "--context", "a=b"
        )
        assert ran.code == 2
        assert ran.err.startswith("volume_context is missing: nqn (")
        assert "; nvmeAddress (" in ran.err
        assert "RDS_CSI_NVME_ADDRESS" in ran.err

    def test_the_drivers_config_file_gives_the_defaults(self, served: Served) -> None:
        config = served.workdir / "controller.yaml"
        config.write_text("nvme_address: 192.0.2.7\nnvme_port: 4421\n")
        vid = self._create(served)
        ran = served.call(
            "stage", vid, "--staging-path", str(served.workdir / "s"), "--config", str(config)
        )
        assert ran.code == 0, ran.err
        rows = _table(ran.out)
        assert rows["context.nvmeAddress"] == "192.0.2.7"
        assert rows["context.nvmePort"] == "4421"

    def test_expand_then_node_expand(self, served: Served) -> None:
        vid = self._create(served)
        staging = served.workdir / "staging"
        target = served.workdir / "target"
        assert served.call("stage", vid, "--staging-path", str(staging)).code == 0
        assert (
            served.call(
                "publish", vid, "--staging-path", str(staging), "--target-path", str(target)
            ).code
            == 0
        )
        grown = served.call("expand", vid, "--size", "2Gi")
        assert _table(grown.out)["node_expansion_required"] == "true"
        assert "node-expand" in _table(grown.out)["next"]
        ran = served.call("node-expand", vid, "--volume-path", str(target), "--size", "2Gi")
        assert ran.code == 0, ran.err
        assert _table(ran.out)["capacity"].startswith(str(2 << 30))

    def test_node_info(self, served: Served) -> None:
        ran = served.call("node-info")
        assert ran.code == 0, ran.err
        rows = _table(ran.out)
        assert rows["node_id"] == "node-7"
        assert rows["topology.zone"] == "a"


class TestDeleteOfWhatThisCliStaged:
    def _staged(self, served: Served) -> tuple[str, pathlib.Path, pathlib.Path]:
        made = served.call("--json", "create", "pvc-held", "--size", "1Gi")
        vid = str(json.loads(made.out)["volume"]["volume_id"])
        staging, target = served.workdir / "staging", served.workdir / "target"
        assert served.call("stage", vid, "--staging-path", str(staging)).code == 0
        published = served.call(
            "publish", vid, "--staging-path", str(staging), "--target-path", str(target)
        )
        assert published.code == 0
        return vid, staging, target

    def test_is_refused_with_the_commands_that_undo_it(self, served: Served) -> None:
        vid, staging, target = self._staged(served)
        ran = served.call("delete", vid)
        assert ran.code == 2
        assert ran.err.startswith(f"not deleting {vid}: this CLI staged and published it")
        assert f"rds-csi call unpublish {vid} --target-path {target}" in ran.err
        assert f"rds-csi call unstage {vid} --staging-path {staging}" in ran.err
        assert served.call("get", vid).code == 0  # still there

    def test_goes_through_once_undone(self, served: Served) -> None:
        vid, staging, target = self._staged(served)
        assert served.call("unpublish", vid, "--target-path", str(target)).code == 0
        assert served.call("delete", vid).code == 2  # still staged
        assert served.call("unstage", vid, "--staging-path", str(staging)).code == 0
        assert served.call("delete", vid).code == 0
        assert served.call("get", vid).code == 1

    def test_force_deletes_and_forgets(self, served: Served) -> None:
        vid, _, _ = self._staged(served)
        assert served.call("delete", vid, "--force").code == 0
        assert served.call("get", vid).code == 1
        assert (
            not (served.workdir / "state" / "rds-csi" / "call-staged.json").read_text().count(vid)
        )
