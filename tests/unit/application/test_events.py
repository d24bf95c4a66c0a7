"""Every event reason the driver records is documented, and the recorder never fails a call."""

from __future__ import annotations

from rds_csi.adapters.clock import SystemClock
from rds_csi.adapters.kubernetes import FakeKubernetes
from rds_csi.application.events import EVENT_REASONS, EventRecorder
from rds_csi.application.kubernetes import ObjectRef
from tests.deploy_support import doc_table


def test_docs_events_lists_every_reason_with_its_type() -> None:
    rows = {row["reason"].strip("`"): row["type"] for row in doc_table("events.md", "events")}
    assert rows == {r: "Warning" if warning else "Normal" for r, warning in EVENT_REASONS.items()}
    assert all(r[0].isupper() and r.isalnum() for r in rows)


def test_an_unreachable_api_server_does_not_fail_the_caller() -> None:
    k8s = FakeKubernetes()
    k8s.unavailable = True
    recorder = EventRecorder(k8s, SystemClock())
    assert not recorder.record(ObjectRef("PersistentVolumeClaim", "c", "ns"), "AttachRefused", "x")
    assert (
        EventRecorder(None, SystemClock()).record(ObjectRef("Pod", "p"), "MountFailed", "x")
        is False
    )
