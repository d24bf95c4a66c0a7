"""
deploy/monitoring against the driver: every series the Grafana dashboard and the alert rules
query is one the exporter exports and docs/metrics.md lists, with labels it has; every
expression parses as PromQL; and they cover what operators asked for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Final

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from rds_csi.adapters.metrics import PrometheusMetrics
from tests.deploy_support import ROOT, Obj, doc_table


MONITORING: Final = ROOT / "deploy" / "monitoring"
DASHBOARD: Final = MONITORING / "grafana-dashboard.json"
RULES: Final = MONITORING / "prometheusrule.yaml"
# Added by Prometheus to every scraped series, not by the driver.
TARGET_LABELS: Final = frozenset({"instance", "job", "namespace", "pod", "service", "container"})
# What Grafana substitutes before the query reaches Prometheus.
GRAFANA_VARIABLES: Final = {"$__rate_interval": "5m", "$instance": ".*", "$rds": ".*"}


def _parser() -> Any:
    return pytest.importorskip("promql_parser", reason="promql-parser (dev extra) is not installed")


def dashboard() -> Obj:
    doc: Obj = json.loads(DASHBOARD.read_text())
    return doc


def panels() -> list[Obj]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"]]


def rule_doc() -> Obj:
    doc: Obj = yaml.safe_load(RULES.read_text())
    return doc


def rules() -> list[Obj]:
    return [rule for group in rule_doc()["spec"]["groups"] for rule in group["rules"]]


def all_exprs() -> list[str]:
    return [*dashboard_exprs(), *(str(rule["expr"]) for rule in rules())]


def _promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def _documented() -> dict[str, frozenset[str]]:
    """docs/metrics.md: metric -> its labels."""
    return {
        row["metric"]: frozenset(label.strip() for label in row["labels"].split(",") if label)
        for row in doc_table("metrics.md", "metrics")
    }


def _exported() -> dict[str, str]:
    """What a fresh exporter declares: family name (counters with _total) -> type."""
    text = generate_latest(PrometheusMetrics(CollectorRegistry()).registry).decode()
    types = dict(re.findall(r"^# TYPE (rds_csi_\w+) (\w+)$", text, re.MULTILINE))
    return {n: t for n, t in types.items() if not (n.endswith("_created") and t == "gauge")}


def _family(series: str, types: dict[str, str]) -> str:
    """``x_seconds_bucket`` -> ``x_seconds`` when ``x_seconds`` is a histogram."""
    base = re.sub(r"_(bucket|count|sum)$", "", series)
    return base if base != series and types.get(base) == "histogram" else series


def _children(node: Any) -> Iterator[Any]:
    for attribute in ("lhs", "rhs", "expr", "args", "vector_selector", "param"):
        value = getattr(node, attribute, None)
        for child in value if isinstance(value, list) else [value]:
            if child is not None and type(child).__module__ == "promql_parser":
                yield child


def _selectors(node: Any) -> Iterator[tuple[str, set[str]]]:
    """Every vector selector below ``node``: its metric name and the labels it matches on."""
    if type(node).__name__ == "VectorSelector":
        yield node.name, {m.name for m in node.matchers.matchers}
    for child in _children(node):
        yield from _selectors(child)


def _grouped(node: Any) -> Iterator[tuple[list[str], Any]]:
    """Every ``sum by (...)`` (or other aggregation with ``by``): its labels and its operand."""
    modifier = getattr(node, "modifier", None)
    if (
        type(node).__name__ == "AggregateExpr"
        and modifier is not None
        and str(modifier).startswith("by")
    ):
        yield list(modifier.labels), node.expr
    for child in _children(node):
        yield from _grouped(child)


def _labels_of(
    series: str, documented: dict[str, frozenset[str]], types: dict[str, str]
) -> set[str]:
    family = _family(series, types)
    labels = set(documented.get(family, frozenset())) | TARGET_LABELS
    if series.endswith("_bucket") and family != series:
        labels.add("le")
    return labels


def test_the_files_are_there_and_well_formed() -> None:
    board = dashboard()
    assert board["uid"]
    assert board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels():
        assert panel["targets"], f"panel {panel['title']!r} queries nothing"
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "instance", "rds"} <= variables
    doc = rule_doc()
    assert (doc["apiVersion"], doc["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names))
    for rule in rules():
        assert re.fullmatch(r"RdsCsi[A-Za-z]+", rule["alert"]), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


def test_every_expression_is_promql() -> None:
    parser = _parser()
    for expr in all_exprs():
        try:
            parser.parse(_promql(expr))
        except ValueError as exc:
            pytest.fail(f"not PromQL ({exc}): {expr}")


def test_every_metric_used_is_exported_and_documented() -> None:
    exported, documented = _exported(), _documented()
    used = {
        _family(name, exported)
        for expr in all_exprs()
        for name in re.findall(r"\brds_csi_[a-z0-9_]+", expr)
    }
    assert used, "the dashboard and rules query no rds_csi_ series"
    assert used - set(documented) == set(), "used but not in docs/metrics.md"
    assert used - set(exported) == set(), "used but not exported by PrometheusMetrics"


def test_every_label_used_is_one_the_series_has() -> None:
    parser = _parser()
    exported, documented = _exported(), _documented()
    for expr in all_exprs():
        tree = parser.parse(_promql(expr))
        for name, matched in _selectors(tree):
            unknown = matched - _labels_of(name, documented, exported)
            assert not unknown, f"{name} has no label {sorted(unknown)}: {expr}"
        for by, operand in _grouped(tree):
            available = set[str]().union(
                *(_labels_of(name, documented, exported) for name, _ in _selectors(operand))
            )
            unknown = set(by) - available
            assert not unknown, f"grouped by {sorted(unknown)}, which no series has: {expr}"


def test_alert_annotations_name_only_labels_the_alert_has() -> None:
    parser = _parser()
    for rule in rules():
        kept = {label for by, _ in _grouped(parser.parse(str(rule["expr"]))) for label in by}
        text = " ".join(str(v) for v in rule["annotations"].values())
        named = set(re.findall(r"\$labels\.(\w+)", text))
        assert named <= kept, f"{rule['alert']} names {sorted(named - kept)}, dropped by its expr"


def test_the_dashboard_shows_what_operators_asked_for() -> None:
    text = "\n".join(dashboard_exprs())
    for series in (
        "rds_csi_rpc_requests_total",  # RPC rate
        "rds_csi_rpc_errors_total",  # errors
        "rds_csi_rpc_duration_seconds_bucket",  # latency
        "rds_csi_backend_command_duration_seconds_bucket",  # RDS latency
        "rds_csi_pool_used_bytes",  # pool usage
        "rds_csi_pool_size_bytes",
        "rds_csi_nvme_connect_total",  # NVMe connects
        "rds_csi_mount_recovery_total",  # recoveries
        "rds_csi_backend_up",
        "rds_csi_attachments",  # attachments
        "rds_csi_stale_attachments",
    ):
        assert series in text, f"no panel queries {series}"


@pytest.mark.parametrize(
    ("alert", "needle"),
    [
        ("RdsCsiPoolAlmostFull", "> 85"),  # pool above 85%
        ("RdsCsiBackendDown", "rds_csi_backend_up"),
        ("RdsCsiHighErrorRatio", "rds_csi_rpc_errors_total"),
        ("RdsCsiStuckOperation", "rds_csi_rpc_in_flight"),
    ],
)
def test_the_rules_alert_on_what_operators_asked_for(alert: str, needle: str) -> None:
    by_name = {rule["alert"]: str(rule["expr"]) for rule in rules()}
    assert alert in by_name
    assert needle in by_name[alert]


def test_the_alerts_table_in_the_docs_is_the_rules() -> None:
    documented = {row["alert"]: row["severity"] for row in doc_table("metrics.md", "alerts")}
    assert documented == {rule["alert"]: rule["labels"]["severity"] for rule in rules()}
