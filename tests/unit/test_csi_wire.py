"""Our csi.proto is wire-identical to the CSI spec v1.12.0 csi.proto.

The fixture is a descriptor-level fingerprint of the official csi.proto at v1.12.0: every message
(nested ones by full name), field, oneof, enum value, service, method and custom option. Two
descriptors of ours are compared with it member by member, in both directions: the one the
generated module carries, and one compiled fresh from csi.proto by protoc. A failure lists every
mismatch, not just the first.

Not compared, on purpose: the file's name and file options (our go_package is left out), and the
source order of declarations (not part of the wire).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from google.protobuf import descriptor_pb2, empty_pb2, unknown_fields, wrappers_pb2

from rds_csi.entrypoints.csi._pb import csi_pb2, csi_pb2_grpc


if TYPE_CHECKING:
    import grpc
    from google.protobuf.message import Message


pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "csi-wire-fingerprint-v1.12.0.json"
SRC = REPO / "src"
PB_DIR = SRC / "rds_csi" / "entrypoints" / "csi" / "_pb"
PROTO = PB_DIR / "csi.proto"
GEN_SCRIPT = REPO / "scripts" / "gen_proto.py"
GENERATED = ("csi_pb2.py", "csi_pb2.pyi", "csi_pb2_grpc.py", "csi_pb2_grpc.pyi")
CSI_SECRET = "csi.v1.csi_secret"
# A plugin may leave the alpha SnapshotMetadata service out. Ours carries it, and then it must
# match like everything else.
OPTIONAL_SERVICES = frozenset({"csi.v1.SnapshotMetadata"})

_type_str = descriptor_pb2.FieldDescriptorProto.Type.Name
_label_str = descriptor_pb2.FieldDescriptorProto.Label.Name

Json = dict[str, Any]
JsonNameOf = Callable[[str], str]


# --- the fingerprint -------------------------------------------------------------------------


def _load_fingerprint() -> Json:
    data: Json = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


FINGERPRINT = _load_fingerprint()
# (extendee, number) -> extension full name, to name custom options the way the fingerprint does
EXTENSION_NAMES: dict[tuple[str, int], str] = {
    (ext["extendee"], ext["number"]): ext["name"] for ext in FINGERPRINT["extensions"]
}


def _expected_view(fingerprint: Json) -> Json:
    """The fingerprint reshaped into the comparable view `_wire_view` builds from a descriptor."""
    return {
        "package": fingerprint["package"],
        "syntax": fingerprint["syntax"],
        "dependencies": sorted(fingerprint["dependencies"]),
        "extensions": {
            ext["name"]: {k: ext[k] for k in ("number", "extendee", "type", "label")}
            for ext in fingerprint["extensions"]
        },
        "messages": {
            msg["full_name"]: {
                "map_entry": msg["map_entry"],
                "fields": {
                    field["name"]: {k: v for k, v in field.items() if k != "name"}
                    for field in msg["fields"]
                },
                "oneofs": sorted(msg["oneofs"]),
                "nested_messages": sorted(msg["nested_messages"]),
                "nested_enums": sorted(msg["nested_enums"]),
                "reserved_ranges": sorted(msg["reserved_ranges"]),
                "reserved_names": sorted(msg["reserved_names"]),
                "extension_ranges": sorted(msg["extension_ranges"]),
                "options": msg["options"],
            }
            for msg in fingerprint["messages"]
        },
        "enums": {
            enum["full_name"]: {
                "values": {
                    value["name"]: {"number": value["number"], "options": value["options"]}
                    for value in enum["values"]
                },
                "reserved_ranges": sorted(enum["reserved_ranges"]),
                "reserved_names": sorted(enum["reserved_names"]),
                "options": enum["options"],
            }
            for enum in fingerprint["enums"]
        },
        "services": {
            service["full_name"]: {
                "methods": {
                    method["name"]: {k: v for k, v in method.items() if k != "name"}
                    for method in service["methods"]
                },
                "options": service["options"],
            }
            for service in fingerprint["services"]
        },
    }


# --- our descriptor, as the same view --------------------------------------------------------


def _options(options: Message, skip: Sequence[str] = ()) -> dict[str, Any]:
    """Every option set on a descriptor, custom ones named by their extension's full name.

    Re-parsing the serialized options as an empty message turns every field into an unknown
    field, so this reads them the same way whether or not csi_pb2's extensions are registered.
    """
    extendee = f".{options.DESCRIPTOR.full_name}"
    standard = options.DESCRIPTOR.fields_by_number
    raw = unknown_fields.UnknownFieldSet(empty_pb2.Empty.FromString(options.SerializeToString()))
    named: dict[str, Any] = {}
    for index in range(len(raw)):
        number: int = raw[index].field_number
        data: Any = raw[index].data
        if (extendee, number) in EXTENSION_NAMES:
            named[EXTENSION_NAMES[extendee, number]] = bool(data)  # every CSI option is a bool
        elif number in standard:
            if standard[number].name not in skip:
                named[standard[number].name] = data
        else:
            named[f"<unknown option {number}>"] = data
    return named


def _message_view(
    msg: descriptor_pb2.DescriptorProto, scope: str, json_name_of: JsonNameOf | None, view: Json
) -> None:
    full_name = f"{scope}.{msg.name}"
    oneofs = [oneof.name for oneof in msg.oneof_decl]
    fields: Json = {}
    for field in msg.field:
        json_name: str | None = field.json_name if field.HasField("json_name") else None
        if json_name is None and json_name_of is not None:
            json_name = json_name_of(f"{full_name}.{field.name}")
        fields[field.name] = {
            "number": field.number,
            "type": _type_str(field.type),
            "label": _label_str(field.label),
            "type_name": field.type_name or None,
            "oneof": oneofs[field.oneof_index] if field.HasField("oneof_index") else None,
            "proto3_optional": field.proto3_optional,
            "synthetic_oneof": field.proto3_optional,
            "json_name": json_name,
            "options": _options(field.options),
        }
    view["messages"][full_name] = {
        "map_entry": msg.options.map_entry,
        "fields": fields,
        "oneofs": sorted(oneofs),
        "nested_messages": sorted(f"{full_name}.{nested.name}" for nested in msg.nested_type),
        "nested_enums": sorted(f"{full_name}.{nested.name}" for nested in msg.enum_type),
        # DescriptorProto ranges are end-exclusive; the fingerprint writes them inclusive
        "reserved_ranges": sorted([r.start, r.end - 1] for r in msg.reserved_range),
        "reserved_names": sorted(msg.reserved_name),
        "extension_ranges": sorted([r.start, r.end - 1] for r in msg.extension_range),
        "options": _options(msg.options, skip=("map_entry",)),
    }
    for nested in msg.nested_type:
        _message_view(nested, full_name, json_name_of, view)
    for enum in msg.enum_type:
        _enum_view(enum, full_name, view)


def _enum_view(enum: descriptor_pb2.EnumDescriptorProto, scope: str, view: Json) -> None:
    view["enums"][f"{scope}.{enum.name}"] = {
        "values": {
            value.name: {"number": value.number, "options": _options(value.options)}
            for value in enum.value
        },
        "reserved_ranges": sorted([r.start, r.end] for r in enum.reserved_range),
        "reserved_names": sorted(enum.reserved_name),
        "options": _options(enum.options),
    }


def _wire_view(file: descriptor_pb2.FileDescriptorProto, json_name_of: JsonNameOf | None) -> Json:
    package = file.package
    view: Json = {
        "package": package,
        "syntax": file.syntax or "proto2",
        "dependencies": sorted(file.dependency),
        "extensions": {
            f"{package}.{ext.name}": {
                "number": ext.number,
                "extendee": ext.extendee,
                "type": _type_str(ext.type),
                "label": _label_str(ext.label),
            }
            for ext in file.extension
        },
        "messages": {},
        "enums": {},
        "services": {},
    }
    for msg in file.message_type:
        _message_view(msg, package, json_name_of, view)
    for enum in file.enum_type:
        _enum_view(enum, package, view)
    for service in file.service:
        full_name = f"{package}.{service.name}"
        view["services"][full_name] = {
            "methods": {
                method.name: {
                    "grpc_path": f"/{full_name}/{method.name}",
                    "input_type": method.input_type,
                    "output_type": method.output_type,
                    "client_streaming": method.client_streaming,
                    "server_streaming": method.server_streaming,
                    "options": _options(method.options),
                }
                for method in service.method
            },
            "options": _options(service.options),
        }
    return view


# --- the comparison --------------------------------------------------------------------------


def _diff(path: str, official: Any, ours: Any, out: list[str]) -> None:
    if isinstance(official, dict) and isinstance(ours, dict):
        out.extend(f"{path}/{key}: missing in ours" for key in sorted(official.keys() - ours))
        out.extend(
            f"{path}/{key}: extra in ours, not in the official proto"
            for key in sorted(ours.keys() - official)
        )
        for key in sorted(official.keys() & ours.keys()):
            _diff(f"{path}/{key}", official[key], ours[key], out)
    elif official != ours:
        out.append(f"{path}: official {official!r}, ours {ours!r}")


def wire_mismatches(official: Json, ours: Json) -> list[str]:
    official = dict(official, services=dict(official["services"]))
    for service in OPTIONAL_SERVICES - ours["services"].keys():
        official["services"].pop(service, None)
    out: list[str] = []
    _diff("", official, ours, out)
    return out


def _secret_fields(view: Json) -> set[str]:
    return {
        f"{msg_name}.{field_name}"
        for msg_name, msg in view["messages"].items()
        for field_name, field in msg["fields"].items()
        if field["options"].get(CSI_SECRET) is True
    }


# --- the two descriptors of ours -------------------------------------------------------------


def _generated_module_view() -> Json:
    file = descriptor_pb2.FileDescriptorProto()
    csi_pb2.DESCRIPTOR.CopyToProto(file)
    pool = csi_pb2.DESCRIPTOR.pool

    def json_name_of(full_name: str) -> str:
        # the gencode's embedded descriptor omits default json_names; the loaded one knows them
        return pool.FindFieldByName(full_name).json_name

    return _wire_view(file, json_name_of)


def _protoc_view(out_dir: Path) -> Json:
    if importlib.util.find_spec("grpc_tools") is None:
        pytest.skip("grpcio-tools is not installed: cannot compile csi.proto independently")
    descriptor_set = out_dir / "csi.binpb"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={SRC}",
            f"--proto_path={resources.files('grpc_tools') / '_proto'}",
            f"--descriptor_set_out={descriptor_set}",
            str(PROTO),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"protoc failed on csi.proto:\n{result.stderr}"
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file
    assert len(files) == 1
    return _wire_view(files[0], json_name_of=None)


@pytest.fixture(scope="module", params=["generated-module", "protoc"])
def ours(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Json:
    if request.param == "generated-module":
        return _generated_module_view()
    return _protoc_view(tmp_path_factory.mktemp("csi-descriptor"))


# --- tests -----------------------------------------------------------------------------------


def test_fixture_is_the_v1_12_0_fingerprint_and_self_consistent() -> None:
    counts = FINGERPRINT["counts"]
    messages = FINGERPRINT["messages"]
    methods = [m for service in FINGERPRINT["services"] for m in service["methods"]]
    assert FINGERPRINT["spec_tag"] == "v1.12.0"
    assert FINGERPRINT["package"] == "csi.v1"
    assert {
        "messages_total": len(messages),
        "map_entry_messages": sum(m["map_entry"] for m in messages),
        "top_level_messages": sum(m["full_name"].count(".") == 2 for m in messages),
        "enums": len(FINGERPRINT["enums"]),
        "services": len(FINGERPRINT["services"]),
        "methods": len(methods),
        "fields": sum(len(m["fields"]) for m in messages),
        "extensions": len(FINGERPRINT["extensions"]),
    } == {k: v for k, v in counts.items() if k != "messages_excluding_map_entries"}


def test_our_proto_matches_the_official_wire_contract(ours: Json) -> None:
    mismatches = wire_mismatches(_expected_view(FINGERPRINT), ours)
    assert not mismatches, (
        f"{len(mismatches)} wire mismatch(es) between csi.proto and CSI v1.12.0:\n"
        + "\n".join(mismatches)
    )


def test_csi_secret_marks_the_same_fields(ours: Json) -> None:
    official = _secret_fields(_expected_view(FINGERPRINT))
    assert official, "the fingerprint lists no csi_secret field: wrong fixture?"
    ours_secret = _secret_fields(ours)
    assert ours_secret == official, (
        f"csi_secret missing on: {sorted(official - ours_secret)}; "
        f"csi_secret extra on: {sorted(ours_secret - official)}"
    )


def test_csi_secret_is_readable_through_the_extension() -> None:
    # how log redaction will ask: the option on the live descriptor, via csi_pb2.csi_secret
    secrets = csi_pb2.CreateVolumeRequest.DESCRIPTOR.fields_by_name["secrets"]
    name = csi_pb2.CreateVolumeRequest.DESCRIPTOR.fields_by_name["name"]
    assert secrets.GetOptions().Extensions[csi_pb2.csi_secret] is True
    assert name.GetOptions().Extensions[csi_pb2.csi_secret] is False


def test_the_comparison_reports_every_mismatch() -> None:
    official = _expected_view(FINGERPRINT)
    broken = json.loads(json.dumps(official))
    request = broken["messages"]["csi.v1.CreateVolumeRequest"]
    request["fields"]["name"]["number"] = 99
    request["fields"]["x"] = request["fields"].pop("parameters")
    broken["services"].pop("csi.v1.SnapshotMetadata")  # optional: not a mismatch
    broken["services"]["csi.v1.Node"]["methods"].pop("NodeGetInfo")
    mismatches = wire_mismatches(official, broken)
    assert mismatches == [
        "/messages/csi.v1.CreateVolumeRequest/fields/parameters: missing in ours",
        "/messages/csi.v1.CreateVolumeRequest/fields/x: extra in ours, not in the official proto",
        "/messages/csi.v1.CreateVolumeRequest/fields/name/number: official 1, ours 99",
        "/services/csi.v1.Node/methods/NodeGetInfo: missing in ours",
    ]


class _RecordingChannel:
    """Stands in for a grpc.Channel: records which multicallable each stub method asks for."""

    def __init__(self) -> None:
        self.calls: dict[str, str] = {}

    def __getattr__(self, kind: str) -> Callable[..., None]:
        def record(path: str, *_args: object, **_kwargs: object) -> None:
            self.calls[path] = kind

        return record


def test_grpc_stubs_use_the_official_paths_and_streaming() -> None:
    expected: dict[str, str] = {}
    recorded: dict[str, str] = {}
    kinds = {
        (False, False): "unary_unary",
        (False, True): "unary_stream",
        (True, False): "stream_unary",
        (True, True): "stream_stream",
    }
    for service in FINGERPRINT["services"]:
        short = service["full_name"].rsplit(".", 1)[1]
        for method in service["methods"]:
            expected[method["grpc_path"]] = kinds[
                method["client_streaming"], method["server_streaming"]
            ]
        channel = _RecordingChannel()
        getattr(csi_pb2_grpc, f"{short}Stub")(cast("grpc.Channel", channel))
        assert hasattr(csi_pb2_grpc, f"add_{short}Servicer_to_server")
        recorded.update(channel.calls)
    assert recorded == expected


def test_messages_round_trip_through_the_wire() -> None:
    access_mode = csi_pb2.VolumeCapability.AccessMode(
        mode=csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
    )
    request = csi_pb2.CreateVolumeRequest(
        name="pvc-1",
        capacity_range=csi_pb2.CapacityRange(required_bytes=1 << 30),
        volume_capabilities=[
            csi_pb2.VolumeCapability(
                mount=csi_pb2.VolumeCapability.MountVolume(fs_type="ext4", mount_flags=["noatime"]),
                access_mode=access_mode,
            )
        ],
        parameters={"pool": "nvme"},
        secrets={"password": "hunter2"},
        volume_content_source=csi_pb2.VolumeContentSource(
            snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id="snap-1")
        ),
    )
    decoded = csi_pb2.CreateVolumeRequest.FromString(request.SerializeToString())
    assert decoded == request
    assert decoded.volume_capabilities[0].WhichOneof("access_type") == "mount"
    assert decoded.volume_content_source.WhichOneof("type") == "snapshot"
    assert dict(decoded.secrets) == {"password": "hunter2"}


def test_known_encodings() -> None:
    # hand-encoded bytes: (field_number << 3 | wire_type), then the payload
    assert csi_pb2.NodeGetInfoResponse(node_id="n", max_volumes_per_node=3).SerializeToString() == (
        b"\x0a\x01n\x10\x03"
    )
    assert csi_pb2.ProbeResponse(ready=wrappers_pb2.BoolValue(value=True)).SerializeToString() == (
        b"\x0a\x02\x08\x01"
    )
    capability = csi_pb2.NodeServiceCapability(
        rpc=csi_pb2.NodeServiceCapability.RPC(
            type=csi_pb2.NodeServiceCapability.RPC.STAGE_UNSTAGE_VOLUME
        )
    )
    assert capability.SerializeToString() == b"\x0a\x02\x08\x01"


# --- freshness of the committed stubs --------------------------------------------------------


def _installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _pinned(distribution: str) -> str | None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    for requirement in pyproject["project"]["optional-dependencies"]["dev"]:
        match = re.fullmatch(rf"{re.escape(distribution)}==(\S+)", requirement)
        if match:
            return match.group(1)
    return None


def test_committed_stubs_are_fresh(tmp_path: Path) -> None:
    tools = ("grpcio-tools", "mypy-protobuf")
    missing = [tool for tool in tools if _installed(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: cannot regenerate the stubs")
    result = subprocess.run(
        [sys.executable, str(GEN_SCRIPT), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"scripts/gen_proto.py failed:\n{result.stderr}"
    fresh_dir = tmp_path / PB_DIR.relative_to(SRC)
    stale = [
        name
        for name in GENERATED
        if (fresh_dir / name).read_bytes() != (PB_DIR / name).read_bytes()
    ]
    versions = "; ".join(
        f"{tool} {_installed(tool)} installed, {_pinned(tool)} pinned" for tool in tools
    )
    assert not stale, (
        f"committed stubs differ from a fresh generation: {stale}. If csi.proto changed, run "
        f"`python scripts/gen_proto.py` and commit; if not, check the tool versions ({versions})."
    )


def test_tool_versions_are_pinned() -> None:
    for tool in ("grpcio-tools", "mypy-protobuf"):
        assert _pinned(tool) is not None, f"pin {tool}==<version> in the dev extra"
