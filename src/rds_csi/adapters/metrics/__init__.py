"""Prometheus metrics: the Metrics port over an injected CollectorRegistry, and its endpoint."""

from rds_csi.adapters.metrics.prometheus import MetricsServer, PrometheusMetrics, serve_metrics


__all__ = ["MetricsServer", "PrometheusMetrics", "serve_metrics"]
