"""Resilience around the backend: a circuit breaker that fails fast while the RDS is down."""

from rds_csi.adapters.resilience.breaker import BreakerSettings, BreakingBackend


__all__ = ["BreakerSettings", "BreakingBackend"]
