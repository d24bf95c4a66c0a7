"""The Kubernetes port: the official client (``api``) and an in-memory cluster (``fake``)."""

from rds_csi.adapters.kubernetes.api import ApiKubernetes, api_client
from rds_csi.adapters.kubernetes.fake import FakeKubernetes, RecordedEvent


__all__ = ["ApiKubernetes", "FakeKubernetes", "RecordedEvent", "api_client"]
