"""Prometheus metrics: :class:`Metrics` holds the series (``series``), :func:`serve` answers
``GET /metrics`` on loopback (``endpoint``); ``labels`` keeps label values bounded and free of
phone numbers, ``collectors`` holds our own collectors. docs/monitoring.md lists every series.
"""

from simbank.integrations.metrics.endpoint import (
    CONTENT_TYPE,
    DEFAULT_HOST,
    DEFAULT_PORT,
    MetricsServer,
    check_host,
    serve,
)
from simbank.integrations.metrics.labels import (
    BLOCK_REASONS,
    CALL_OUTCOMES,
    MASKED,
    OTHER,
    QUOTAS,
    REGISTRATION_STATES,
    Quota,
    safe_label,
)
from simbank.integrations.metrics.series import AT_BUCKETS, CALL_BUCKETS, Metrics

__all__ = [
    "AT_BUCKETS",
    "BLOCK_REASONS",
    "CALL_BUCKETS",
    "CALL_OUTCOMES",
    "CONTENT_TYPE",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MASKED",
    "OTHER",
    "QUOTAS",
    "REGISTRATION_STATES",
    "Metrics",
    "MetricsServer",
    "Quota",
    "check_host",
    "safe_label",
    "serve",
]
