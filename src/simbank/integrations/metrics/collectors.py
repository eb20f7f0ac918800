"""Collectors of our own: the MQTT bridge's counters read at each scrape, and the filter
that keeps ``_created`` series out of the exposition.

prometheus_client writes a ``<name>_created`` timestamp beside every counter and histogram;
its switch for that is process-global (``disable_created_metrics``). :class:`WithoutCreated`
drops them from one registry's exposition instead, so nothing global changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_WITH_CREATED = frozenset({"counter", "histogram", "summary"})


class WithoutCreated(Collector):
    """Every metric of ``source`` without its ``_created`` samples."""

    def __init__(self, source: Collector) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        for metric in self._source.collect():
            if metric.type in _WITH_CREATED:
                created = metric.name + "_created"
                metric.samples = [s for s in metric.samples if s.name != created]
            yield metric


class MqttCollector(Collector):
    """``simbank_mqtt_messages_total{kind}`` and ``simbank_mqtt_queued{queue}`` from the
    bridge's ``stats()`` (``queued_<queue>`` keys are gauges, the rest counters)."""

    def __init__(self, stats: Callable[[], Mapping[str, int]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        counted = CounterMetricFamily(
            "simbank_mqtt_messages",
            "MQTT messages received, refused unread (oversized), dropped under overload, or "
            "published",
            labels=["kind"],
        )
        queued = GaugeMetricFamily(
            "simbank_mqtt_queued", "MQTT messages waiting, by queue", labels=["queue"]
        )
        for key, value in sorted(stats.items()):
            if key.startswith("queued_"):
                queued.add_metric([key.removeprefix("queued_")], value)
            else:
                counted.add_metric([key], value)
        yield counted
        yield queued

    def describe(self) -> Iterator[Metric]:
        return iter(())
