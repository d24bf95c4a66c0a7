"""Secrets never reach a log line: every csi_secret field and mount_flags are masked."""

from __future__ import annotations

from rds_csi.entrypoints.csi._pb import csi_pb2
from rds_csi.entrypoints.csi.redaction import MASK, redacted, redacted_text


Cap = csi_pb2.VolumeCapability


def test_secrets_and_mount_flags_are_masked_at_any_depth() -> None:
    request = csi_pb2.NodePublishVolumeRequest(
        volume_id="pvc-1",
        target_path="/t",
        secrets={"password": "hunter2", "token": "s3cr3t"},
        volume_capability=Cap(
            access_mode=Cap.AccessMode(mode=Cap.AccessMode.SINGLE_NODE_WRITER),
            mount=Cap.MountVolume(fs_type="ext4", mount_flags=["user=bob,password=hunter2"]),
        ),
        volume_context={"nqn": "nqn.2000-02.com.mikrotik:pvc-1"},
    )
    text = redacted_text(request)
    assert "hunter2" not in text
    assert "s3cr3t" not in text
    assert MASK in text
    assert "password" in text  # the key stays: it says which secret was sent
    assert "pvc-1" in text
    assert "nqn.2000-02.com.mikrotik:pvc-1" in text


def test_every_secrets_field_of_the_proto_is_masked() -> None:
    # All 19 csi_secret fields in v1.12.0 are maps named `secrets`; walk every request type.
    found = 0
    for name, descriptor in csi_pb2.DESCRIPTOR.message_types_by_name.items():
        if "secrets" not in descriptor.fields_by_name:
            continue
        found += 1
        message = getattr(csi_pb2, name)(secrets={"k": "v4lue"})
        assert "v4lue" not in redacted_text(message), name
    assert found == 19


def test_the_original_request_is_untouched() -> None:
    request = csi_pb2.DeleteVolumeRequest(volume_id="pvc-1", secrets={"k": "v"})
    redacted(request)
    assert request.secrets["k"] == "v"
