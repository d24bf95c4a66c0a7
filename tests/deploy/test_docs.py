"""The operator docs point at things that exist: files, objects, containers, labels."""

from __future__ import annotations

import re

from tests.deploy_support import (
    DOCS,
    ROOT,
    by_kind,
    containers,
    doc_pages,
    doc_table,
    manifest_objects,
)


def test_the_guide_covers_what_operators_ask() -> None:
    names = {p.name for p in doc_pages()}
    assert {
        "install.md",
        "routeros.md",
        "storageclass.md",
        "configuration.md",
        "metrics.md",
        "troubleshooting.md",
        "testing-real-rds.md",
    } <= names
    index = (DOCS / "README.md").read_text()
    assert all(f"({name})" in index for name in names - {"README.md"})


def test_relative_links_resolve() -> None:
    for page in doc_pages():
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to {target}"


def test_repository_paths_named_in_the_docs_exist() -> None:
    for page in doc_pages():
        for path in re.findall(r"`((?:deploy|tests|docs)/[\w./-]+?)/?`", page.read_text()):
            assert (ROOT / path).exists(), f"{page.name} names {path}"


def test_kubectl_commands_name_objects_and_containers_that_exist() -> None:
    objects = manifest_objects()
    deployments = {o["metadata"]["name"] for o in by_kind(objects, "Deployment")}
    workloads = by_kind(objects, "Deployment") + by_kind(objects, "DaemonSet")
    container_names = {name for w in workloads for name in containers(w)}
    services = {o["metadata"]["name"] for o in by_kind(objects, "Service")}
    components = {w["metadata"]["labels"]["app.kubernetes.io/component"] for w in workloads}
    text = "\n".join(p.read_text() for p in doc_pages())
    # kubectl's deploy/NAME, not the repository's deploy/ folder
    named_deployments = {
        name
        for name in re.findall(r"(?<![\w/.-])deploy/([a-z0-9-]+)", text)
        if not (ROOT / "deploy" / name).exists()
    }
    named_containers = set(re.findall(r"\s-c ([a-z0-9-]+)", text))
    named_components = set(re.findall(r"app\.kubernetes\.io/component=([a-z]+)", text))
    named_services = set(re.findall(r"`(rds-csi-[a-z-]+-metrics)`", text))
    assert named_deployments
    assert named_deployments <= deployments
    assert named_containers
    assert named_containers <= container_names
    assert named_components <= components
    assert named_services == services


def test_the_metrics_table_follows_prometheus_naming() -> None:
    rows = doc_table("metrics.md", "metrics")
    names = [row["metric"] for row in rows]
    assert len(names) == len(set(names))
    for row in rows:
        name, kind = row["metric"], row["type"]
        assert re.fullmatch(r"rds_csi_[a-z0-9_]+", name), name
        assert kind in {"counter", "gauge", "histogram", "summary"}, name
        assert name.endswith("_total") == (kind == "counter"), name
        if kind == "histogram":
            assert name.endswith("_seconds"), name
        labels = [label.strip() for label in row["labels"].split(",") if label.strip()]
        assert all(re.fullmatch(r"[a-z_]+", label) for label in labels), name


def test_the_metrics_brief_is_covered() -> None:
    # Per-RPC counts, errors by code and latency; RouterOS latency; NVMe connects; recoveries.
    rows = {row["metric"]: row for row in doc_table("metrics.md", "metrics")}
    assert rows["rds_csi_rpc_requests_total"]["labels"] == "method, code"
    assert rows["rds_csi_rpc_errors_total"]["labels"] == "method, code"
    assert rows["rds_csi_rpc_duration_seconds"]["type"] == "histogram"
    assert rows["rds_csi_backend_command_duration_seconds"]["type"] == "histogram"
    assert "rds_csi_nvme_connect_total" in rows
    assert "rds_csi_mount_recovery_total" in rows


def test_the_docs_queries_use_documented_metrics() -> None:
    documented = {row["metric"] for row in doc_table("metrics.md", "metrics")}
    text = "\n".join(p.read_text() for p in doc_pages())
    used = {
        re.sub(r"_(bucket|count|sum)$", "", m) for m in re.findall(r"\brds_csi_[a-z0-9_]+", text)
    }
    assert used
    assert used <= documented
