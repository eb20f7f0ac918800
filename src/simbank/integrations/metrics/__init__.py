"""Prometheus metrics: :class:`Metrics` holds the series (``series``), :func:`serve` answers
``GET /metrics`` on loopback (``endpoint``)."""

from simbank.integrations.metrics.endpoint import (
    CONTENT_TYPE,
    DEFAULT_HOST,
    DEFAULT_PORT,
    MetricsServer,
    check_host,
    serve,
)
from simbank.integrations.metrics.series import (
    AT_BUCKETS,
    BLOCK_REASONS,
    MASKED,
    OTHER,
    USAGE_KINDS,
    Metrics,
    safe_label,
)

__all__ = [
    "AT_BUCKETS",
    "BLOCK_REASONS",
    "CONTENT_TYPE",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MASKED",
    "OTHER",
    "USAGE_KINDS",
    "Metrics",
    "MetricsServer",
    "check_host",
    "safe_label",
    "serve",
]
