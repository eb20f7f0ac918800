"""Every simbank series in one :class:`Metrics`: what the daemon believes, as numbers.

The daemon feeds it through a few typed calls (the StatusBoard's modem and SIM states, its
events, each AT command's latency, each request's outcome); ``endpoint`` serves it.

Labels carry modem ids and ICCIDs, never phone numbers: every label value goes through
:func:`safe_label`, which masks anything that looks like one. Label values that come from the
outside world (request commands, statuses) are bounded to known names so a stranger cannot
grow the series count.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping
from typing import Final, get_args

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from simbank.contract import (
    COMMANDS,
    ERROR_CODES,
    ModemState,
    ModemStateName,
    SimState,
    SimStateName,
)

log = structlog.get_logger(__name__)

AT_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
    40.0,
)
"""AT round trips: a plain ``AT`` answers in ~1 ms; ``AT+COPS=?`` may take 40 s or more."""

USAGE_KINDS: Final = (
    "calls_hour",
    "calls_day",
    "call_seconds_day",
    "sms_day",
    # The billing month: counted (and shown) only when the SIM's policy sets a monthly limit.
    "calls_month",
    "call_seconds_month",
    "sms_month",
)
_LIMIT_KINDS: Final = {
    "calls_per_hour": "calls_hour",
    "calls_per_day": "calls_day",
    "call_seconds_per_day": "call_seconds_day",
    "sms_per_day": "sms_day",
    "calls_per_month": "calls_month",
    "call_seconds_per_month": "call_seconds_month",
    "sms_per_month": "sms_month",
}
BLOCK_REASONS: Final = (
    "registration_denied",
    "reject_cause",
    "stuck_searching",
    "calls_barred",
    "sim_blocked",
)
MASKED: Final = "masked"
OTHER: Final = "other"

_MODEM_STATES: tuple[str, ...] = get_args(ModemStateName)
_SIM_STATES: tuple[str, ...] = get_args(SimStateName)
_UP_STATES = frozenset({"ready", "switching"})
_REQUEST_STATUSES = frozenset({"ok", *ERROR_CODES})
_ICCID = re.compile(r"89\d{16,20}[0-9Ff]?")
_PHONE_LIKE = re.compile(r"(?<!\d)\+?\d{7,15}(?!\d)")
_NAME = re.compile(r"[a-z0-9_]{1,64}")


@functools.lru_cache(maxsize=4096)
def safe_label(value: str) -> str:
    """``value`` unless it holds something that looks like a phone number (a run of 7-15
    digits, optionally after ``+``) and is not an ICCID (18-22 digits starting ``89``);
    then :data:`MASKED` (logged once per value, without the value)."""
    if _ICCID.fullmatch(value):
        return value
    if _PHONE_LIKE.search(value):
        log.warning("metrics_label_masked", length=len(value))
        return MASKED
    return value


def _name_label(value: str) -> str:
    """A snake_case name from an event (a block reason); anything else is :data:`OTHER`."""
    return value if _NAME.fullmatch(value) else OTHER


class Metrics:
    """Every simbank series, in a registry of its own (never the process-global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.modems = Gauge("simbank_modems", "Modems by state", ["state"], registry=r)
        self.modem_up = Gauge(
            "simbank_modem_up",
            "1 while the modem answers AT (ready or switching)",
            ["modem"],
            registry=r,
        )
        self.sims = Gauge("simbank_sims", "SIMs by state", ["state"], registry=r)
        self.sim_usage = Gauge(
            "simbank_sim_usage", "SIM usage in the current windows", ["iccid", "kind"], registry=r
        )
        self.sim_limit = Gauge(
            "simbank_sim_limit",
            "The SIM policy's limit per usage kind",
            ["iccid", "kind"],
            registry=r,
        )
        self.at_seconds = Histogram(
            "simbank_at_command_seconds",
            "AT command round trip (timed-out commands count with their timeout)",
            ["modem"],
            buckets=AT_BUCKETS,
            registry=r,
        )
        self.at_timeouts = Counter(
            "simbank_at_timeouts", "AT commands that got no final result", ["modem"], registry=r
        )
        self.at_resyncs = Counter(
            "simbank_at_resyncs",
            "AT channel re-syncs: answers found out of step with the commands (a stray final "
            "result, a late answer)",
            ["modem"],
            registry=r,
        )
        self.blocks = Counter(
            "simbank_blocks", "SIMs quarantined by the block detector", ["reason"], registry=r
        )
        self.rotations = Counter(
            "simbank_rotations", "SIM switches per modem", ["modem"], registry=r
        )
        self.sim_sms_unread = Gauge(
            "simbank_sim_sms_unread",
            "Received SMS not yet acknowledged (sms/ack), per SIM",
            ["iccid"],
            registry=r,
        )
        self.sim_balance = Gauge(
            "simbank_sim_balance",
            "The SIM's prepaid balance at its last check (absent: never read)",
            ["iccid"],
            registry=r,
        )
        self.sms_delivery = Counter(
            "simbank_sms_delivery",
            "Sent SMS settled by their delivery reports, by outcome (delivered, failed)",
            ["outcome"],
            registry=r,
        )
        self.mqtt_connected = Gauge(
            "simbank_mqtt_connected", "1 while connected to the MQTT broker", registry=r
        )
        self.requests = Counter(
            "simbank_requests",
            "MQTT requests by command and status",
            ["command", "status"],
            registry=r,
        )
        self._modem_states: dict[str, str] = {}
        self._sim_states: dict[str, str] = {}
        for state in _MODEM_STATES:
            self.modems.labels(state=state).set(0)
        for state in _SIM_STATES:
            self.sims.labels(state=state).set(0)
        for reason in BLOCK_REASONS:
            self.blocks.labels(reason=reason)
        self.mqtt_connected.set(0)

    # -- feeding ---------------------------------------------------------------------------

    def observe_modem(self, state: ModemState) -> None:
        """A modem's latest retained state (call it wherever the StatusBoard publishes one)."""
        modem = safe_label(state.id)
        if modem not in self._modem_states:
            self.rotations.labels(modem=modem)
            self.at_timeouts.labels(modem=modem)
            self.at_resyncs.labels(modem=modem)
        self._modem_states[modem] = state.state
        self.modem_up.labels(modem=modem).set(1 if state.state in _UP_STATES else 0)
        _set_counts(self.modems, _MODEM_STATES, self._modem_states)

    def observe_sim(self, state: SimState) -> None:
        """A SIM's latest retained state: its state, usage and limits."""
        iccid = safe_label(state.iccid)
        self._sim_states[iccid] = state.state
        _set_counts(self.sims, _SIM_STATES, self._sim_states)
        usage = state.usage
        for kind in USAGE_KINDS:
            used = getattr(usage, kind)
            if used is None:  # a month nobody counts: no series
                with contextlib.suppress(KeyError):
                    self.sim_usage.remove(iccid, kind)
            else:
                self.sim_usage.labels(iccid=iccid, kind=kind).set(used)
        self.sim_sms_unread.labels(iccid=iccid).set(state.sms_unread)
        amount = state.balance.amount if state.balance is not None else None
        if amount is not None:
            self.sim_balance.labels(iccid=iccid).set(float(amount))
        else:
            with contextlib.suppress(KeyError):
                self.sim_balance.remove(iccid)
        for key, kind in _LIMIT_KINDS.items():
            value = state.limits.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.sim_limit.labels(iccid=iccid, kind=kind).set(value)
            else:
                with contextlib.suppress(KeyError):
                    self.sim_limit.remove(iccid, kind)

    def observe_event(self, event_type: str, fields: Mapping[str, object]) -> None:
        """A ``bridge/event``: counts ``sim_blocked`` by reason, ``sim_rotated`` by modem and
        the delivery outcomes of sent SMS."""
        if event_type == "sim_blocked":
            reason = fields.get("reason")
            label = _name_label(reason) if isinstance(reason, str) else OTHER
            self.blocks.labels(reason=label).inc()
        elif event_type in ("sms_delivered", "sms_failed"):
            self.sms_delivery.labels(outcome=event_type.removeprefix("sms_")).inc()
        elif event_type == "sim_rotated":
            modem = fields.get("modem")
            if isinstance(modem, str):
                self.rotations.labels(modem=safe_label(modem)).inc()

    def observe_at(self, modem: str, seconds: float, timed_out: bool) -> None:
        """One AT command's round trip; a timeout also counts in ``simbank_at_timeouts``."""
        modem = safe_label(modem)
        self.at_seconds.labels(modem=modem).observe(max(seconds, 0.0))
        if timed_out:
            self.at_timeouts.labels(modem=modem).inc()

    def observe_resync(self, modem: str, reason: str) -> None:
        """One AT channel re-sync (``AtChannel.on_resync``); the reason goes to the log only."""
        del reason  # free text: never a label
        self.at_resyncs.labels(modem=safe_label(modem)).inc()

    def observe_request(self, command: str, status: str) -> None:
        """One answered request: ``status`` is ``ok`` or the error code. Unknown commands and
        statuses count as ``other`` (the command comes from whoever can publish a topic)."""
        self.requests.labels(
            command=command if command in COMMANDS else OTHER,
            status=status if status in _REQUEST_STATUSES else OTHER,
        ).inc()

    def watch_mqtt(self, stats: Callable[[], Mapping[str, int]]) -> None:
        """Expose the MQTT bridge's overload counters (``MqttBridge.stats``), read at each
        scrape: ``simbank_mqtt_messages_total{kind}`` (received, oversized, dropped_*,
        published_*) and ``simbank_mqtt_queued{queue}``."""
        self.registry.register(_MqttCollector(stats))

    def set_mqtt_connected(self, connected: bool) -> None:
        self.mqtt_connected.set(1 if connected else 0)

    def exposition(self) -> bytes:
        """The text format of every series (what ``GET /metrics`` answers)."""
        return generate_latest(self.registry)


class _MqttCollector(Collector):
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


def _set_counts(gauge: Gauge, states: tuple[str, ...], current: Mapping[str, str]) -> None:
    tally = Tally(current.values())
    for state in states:
        gauge.labels(state=state).set(tally.get(state, 0))
