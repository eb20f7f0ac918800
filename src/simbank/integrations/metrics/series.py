"""Every simbank series in one :class:`Metrics`: what the daemon believes, as numbers.

The daemon feeds it through a few typed calls (the StatusBoard's modem and SIM states, its
events, each AT command's latency, each call's outcome, each request's outcome) and a few
callables read at scrape time (MQTT connection, circuit breaker); ``endpoint`` serves it.

One unit per metric: counts and seconds never share a name (``simbank_sim_calls`` and
``simbank_sim_call_time_seconds``, each with a ``window`` label). Labels carry modem ids and
ICCIDs as they are (:func:`~.labels.modem_label`, :func:`~.labels.iccid_label`), never a
phone number from free text (:func:`~.labels.safe_label`); label values from the outside
world are bounded to known names. No ``_created`` series (:class:`~.collectors.WithoutCreated`).
"""

from __future__ import annotations

import contextlib
from collections import Counter as Tally
from collections.abc import Callable, Mapping
from typing import Final, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from simbank import __version__
from simbank.contract import (
    COMMANDS,
    ERROR_CODES,
    ModemState,
    ModemStateName,
    SimState,
    SimStateName,
)
from simbank.integrations.metrics.collectors import MqttCollector, WithoutCreated
from simbank.integrations.metrics.labels import (
    BLOCK_REASONS,
    CALL_OUTCOMES,
    OTHER,
    QUOTAS,
    REGISTRATION_STATES,
    iccid_label,
    modem_label,
    name_label,
    registration_label,
)

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

CALL_BUCKETS: Final = (
    5.0,
    10.0,
    20.0,
    30.0,
    45.0,
    60.0,
    90.0,
    120.0,
    180.0,
    300.0,
    600.0,
    900.0,
    1200.0,
    1800.0,
    2700.0,
    3600.0,
)
"""Answered calls' talk time: a few seconds to the hour ``max_call_duration_s`` allows."""

_MODEM_STATES: tuple[str, ...] = get_args(ModemStateName)
_SIM_STATES: tuple[str, ...] = get_args(SimStateName)
_UP_STATES = frozenset({"ready", "switching"})
_REQUEST_STATUSES = frozenset({"ok", *ERROR_CODES})
#: An ``incoming_call`` event's outcomes (anything else is not counted: never a free label).
INCOMING_OUTCOMES: Final = frozenset({"answered", "missed", "rejected"})


class Metrics:
    """Every simbank series, in a registry of its own (never the process-global one)."""

    def __init__(self, version: str = __version__) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        build = Gauge(
            "simbank_build_info", "Always 1: the running simbank version", ["version"], registry=r
        )
        build.labels(version=version).set(1)
        # -- modems --
        self.modems = Gauge("simbank_modems", "Modems in each state", ["state"], registry=r)
        self.modem_up = Gauge(
            "simbank_modem_up",
            "1 while the modem answers AT (ready or switching), else 0",
            ["modem"],
            registry=r,
        )
        self.modem_state = Gauge(
            "simbank_modem_state",
            "1 for the modem's current state, 0 for the others",
            ["modem", "state"],
            registry=r,
        )
        self.modem_signal = Gauge(
            "simbank_modem_signal_dbm",
            "Received signal strength (RSSI) in dBm at the last poll (absent: modem not up or "
            "no reading)",
            ["modem"],
            registry=r,
        )
        self.modem_quality = Gauge(
            "simbank_modem_signal_quality_ratio",
            "Signal quality from 0 to 1 at the last poll (absent: modem not up or no reading)",
            ["modem"],
            registry=r,
        )
        self.modem_registration = Gauge(
            "simbank_modem_registration",
            "1 for the modem's network registration state, 0 for the others",
            ["modem", "state"],
            registry=r,
        )
        # -- SIMs --
        self.sims = Gauge("simbank_sims", "SIMs in each state", ["state"], registry=r)
        self.sim_state = Gauge(
            "simbank_sim_state",
            "1 for the SIM's current state, 0 for the others",
            ["iccid", "state"],
            registry=r,
        )
        self.sim_calls = Gauge(
            "simbank_sim_calls",
            "Calls the SIM made in the current window (hour, day, billing month)",
            ["iccid", "window"],
            registry=r,
        )
        self.sim_calls_limit = Gauge(
            "simbank_sim_calls_limit",
            "The SIM policy's limit on calls per window (absent: no limit)",
            ["iccid", "window"],
            registry=r,
        )
        self.sim_call_time = Gauge(
            "simbank_sim_call_time_seconds",
            "Call time charged to the SIM in the current window (day, billing month), seconds",
            ["iccid", "window"],
            registry=r,
        )
        self.sim_call_time_limit = Gauge(
            "simbank_sim_call_time_limit_seconds",
            "The SIM policy's limit on call time per window, seconds (absent: no limit)",
            ["iccid", "window"],
            registry=r,
        )
        self.sim_sms = Gauge(
            "simbank_sim_sms",
            "SMS the SIM sent in the current window (day, billing month)",
            ["iccid", "window"],
            registry=r,
        )
        self.sim_sms_limit = Gauge(
            "simbank_sim_sms_limit",
            "The SIM policy's limit on SMS per window (absent: no limit)",
            ["iccid", "window"],
            registry=r,
        )
        self.sim_sms_unread = Gauge(
            "simbank_sim_sms_unread",
            "Received SMS not yet acknowledged (sms/ack), per SIM",
            ["iccid"],
            registry=r,
        )
        self.sim_balance = Gauge(
            "simbank_sim_balance",
            "The SIM's prepaid balance at its last check, in its own currency (absent: never read)",
            ["iccid"],
            registry=r,
        )
        # -- traffic --
        self.calls = Counter(
            "simbank_calls",
            "Calls dialled, by modem and outcome (completed, busy, no_answer, failed, unknown)",
            ["modem", "outcome"],
            registry=r,
        )
        self.call_duration = Histogram(
            "simbank_call_duration_seconds",
            "Talk time of completed (answered) calls, seconds",
            ["modem"],
            buckets=CALL_BUCKETS,
            registry=r,
        )
        self.call_failures = Counter(
            "simbank_call_failures",
            "Failed calls by the network's release cause (3GPP 24.008 number, or none)",
            ["cause"],
            registry=r,
        )
        self.sms_delivery = Counter(
            "simbank_sms_delivery",
            "Sent SMS settled by their delivery reports, by outcome (delivered, failed)",
            ["outcome"],
            registry=r,
        )
        # -- the AT channel --
        self.at_seconds = Histogram(
            "simbank_at_command_seconds",
            "AT command round trip, seconds (timed-out commands count with their timeout)",
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
        # -- the bank --
        self.blocks = Counter(
            "simbank_blocks", "SIMs quarantined by the block detector", ["reason"], registry=r
        )
        self.rotations = Counter(
            "simbank_rotations", "SIM switches, per modem", ["modem"], registry=r
        )
        self.incoming_calls = Counter(
            "simbank_incoming_calls",
            "Inbound calls once their outcome is known, by modem and outcome (answered, "
            "missed, rejected)",
            ["modem", "outcome"],
            registry=r,
        )
        self.unauthorized_calls = Counter(
            "simbank_unauthorized_calls",
            "Calls dialled on a modem without a booking (another port, a PBX that did not ask): "
            "booked against the SIM's quotas when seen",
            ["modem"],
            registry=r,
        )
        self.circuit_open = Gauge(
            "simbank_circuit_open",
            "1 while the circuit breaker stops outbound traffic (too many blocks), else 0",
            registry=r,
        )
        self.traffic_paused = Gauge(
            "simbank_traffic_paused",
            "1 while an operator has paused outbound traffic (traffic/pause), else 0",
            registry=r,
        )
        # -- the ledger's storage --
        self.storage_degraded = Gauge(
            "simbank_storage_degraded",
            "1 while the ledger cannot book (disk full, read-only, I/O error, corrupt, or a "
            "restored ledger not yet confirmed): requests that book are refused, else 0",
            registry=r,
        )
        self.storage_free = Gauge(
            "simbank_storage_free_bytes",
            "Free space on the state directory's filesystem (storage_low warns below the "
            "configured margin)",
            registry=r,
        )
        self.backup_last = Gauge(
            "simbank_ledger_backup_timestamp_seconds",
            "When the last verified ledger backup was written (Unix time; NaN: none yet)",
            registry=r,
        )
        # -- MQTT --
        self.mqtt_connected = Gauge(
            "simbank_mqtt_connected", "1 while connected to the MQTT broker, else 0", registry=r
        )
        self.requests = Counter(
            "simbank_requests",
            "MQTT requests answered, by command and status (ok or the error code)",
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
        self.circuit_open.set(0)
        self.traffic_paused.set(0)
        self._exposed = WithoutCreated(self.registry)

    # -- feeding ---------------------------------------------------------------------------

    def observe_modem(self, state: ModemState) -> None:
        """A modem's latest retained state (call it wherever the StatusBoard publishes one)."""
        modem = modem_label(state.id)
        if modem not in self._modem_states:
            self._first_sight(modem)
        self._modem_states[modem] = state.state
        up = state.state in _UP_STATES
        self.modem_up.labels(modem=modem).set(1 if up else 0)
        _set_one_hot(self.modem_state, _MODEM_STATES, state.state, modem=modem)
        _set_counts(self.modems, _MODEM_STATES, self._modem_states)
        registration = registration_label(state.registration) if up else "unknown"
        _set_one_hot(self.modem_registration, REGISTRATION_STATES, registration, modem=modem)
        signal = state.signal
        _set_or_remove(self.modem_signal, signal.rssi_dbm if up else None, modem)
        quality = signal.quality / 100 if up and signal.quality is not None else None
        _set_or_remove(self.modem_quality, quality, modem)

    def _first_sight(self, modem: str) -> None:
        """Every per-modem counter starts at 0, so ``rate()`` sees the first increase."""
        self.rotations.labels(modem=modem)
        self.at_timeouts.labels(modem=modem)
        self.unauthorized_calls.labels(modem=modem)
        for outcome in INCOMING_OUTCOMES:
            self.incoming_calls.labels(modem=modem, outcome=outcome)
        self.at_resyncs.labels(modem=modem)
        for outcome in CALL_OUTCOMES:
            self.calls.labels(modem=modem, outcome=outcome)
        self.call_duration.labels(modem=modem)

    def observe_sim(self, state: SimState) -> None:
        """A SIM's latest retained state: its state, usage and limits."""
        iccid = iccid_label(state.iccid)
        self._sim_states[iccid] = state.state
        _set_counts(self.sims, _SIM_STATES, self._sim_states)
        _set_one_hot(self.sim_state, _SIM_STATES, state.state, iccid=iccid)
        usage = state.usage
        for quota in QUOTAS:
            used_gauge, limit_gauge = self._quota_gauges(quota.metric)
            used = getattr(usage, quota.usage)
            # A month nobody counts (null) has no series.
            _set_or_remove(used_gauge, used, iccid, quota.window)
            limit = state.limits.get(quota.limit)
            if isinstance(limit, bool) or not isinstance(limit, int | float):
                limit = None
            _set_or_remove(limit_gauge, limit, iccid, quota.window)
        self.sim_sms_unread.labels(iccid=iccid).set(state.sms_unread)
        amount = state.balance.amount if state.balance is not None else None
        _set_or_remove(self.sim_balance, float(amount) if amount is not None else None, iccid)

    def _quota_gauges(self, metric: str) -> tuple[Gauge, Gauge]:
        if metric == "calls":
            return self.sim_calls, self.sim_calls_limit
        if metric == "call_time":
            return self.sim_call_time, self.sim_call_time_limit
        return self.sim_sms, self.sim_sms_limit

    def observe_event(self, event_type: str, fields: Mapping[str, object]) -> None:
        """A ``bridge/event``: counts ``sim_blocked`` by reason, ``sim_rotated`` by modem, the
        delivery outcomes of sent SMS, inbound calls by outcome and unauthorized calls."""
        if event_type == "sim_blocked":
            reason = fields.get("reason")
            label = name_label(reason) if isinstance(reason, str) else OTHER
            self.blocks.labels(reason=label).inc()
        elif event_type in ("sms_delivered", "sms_failed"):
            self.sms_delivery.labels(outcome=event_type.removeprefix("sms_")).inc()
        elif event_type == "sim_rotated":
            modem = fields.get("modem")
            if isinstance(modem, str):
                self.rotations.labels(modem=modem_label(modem)).inc()
        elif event_type == "incoming_call":
            modem, outcome = fields.get("modem"), fields.get("outcome")
            if isinstance(modem, str) and outcome in INCOMING_OUTCOMES:
                self.incoming_calls.labels(modem=modem_label(modem), outcome=outcome).inc()
        elif event_type == "unauthorized_call":
            modem = fields.get("modem")
            if isinstance(modem, str):
                self.unauthorized_calls.labels(modem=modem_label(modem)).inc()

    def observe_call(self, modem: str, outcome: str, duration_s: float, cause: int | None) -> None:
        """One dialled call's end (``TrafficCommands.on_call``): counted by outcome; an
        answered call's talk time goes to the histogram, a failed call's cause is counted."""
        modem = modem_label(modem)
        outcome = outcome if outcome in CALL_OUTCOMES else "unknown"
        self.calls.labels(modem=modem, outcome=outcome).inc()
        if outcome == "completed":
            self.call_duration.labels(modem=modem).observe(max(duration_s, 0.0))
        elif outcome == "failed":
            known = cause is not None and 0 <= cause <= 255
            self.call_failures.labels(cause=str(cause) if known else "none").inc()

    def observe_at(self, modem: str, seconds: float, timed_out: bool) -> None:
        """One AT command's round trip; a timeout also counts in ``simbank_at_timeouts``."""
        modem = modem_label(modem)
        self.at_seconds.labels(modem=modem).observe(max(seconds, 0.0))
        if timed_out:
            self.at_timeouts.labels(modem=modem).inc()

    def observe_resync(self, modem: str, reason: str) -> None:
        """One AT channel re-sync (``AtChannel.on_resync``); the reason goes to the log only."""
        del reason  # free text: never a label
        self.at_resyncs.labels(modem=modem_label(modem)).inc()

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
        self.registry.register(MqttCollector(stats))

    def watch_gateway(
        self,
        *,
        mqtt_connected: Callable[[], bool],
        circuit_open: Callable[[], bool],
        traffic_paused: Callable[[], bool],
    ) -> None:
        """Read the broker connection, the circuit breaker and the operator's pause at each
        scrape (they change without an event the board would pass on)."""
        self.mqtt_connected.set_function(lambda: float(mqtt_connected()))
        self.circuit_open.set_function(lambda: float(circuit_open()))
        self.traffic_paused.set_function(lambda: float(traffic_paused()))

    def watch_storage(
        self,
        *,
        degraded: Callable[[], bool],
        free_bytes: Callable[[], int | None],
        last_backup_at: Callable[[], float | None],
    ) -> None:
        """Read the ledger's health, its filesystem's free space and the last backup at each
        scrape (NaN while unknown)."""
        nan = float("nan")
        self.storage_degraded.set_function(lambda: float(degraded()))

        def free() -> float:
            value = free_bytes()
            return nan if value is None else float(value)

        def backup() -> float:
            value = last_backup_at()
            return nan if value is None else value

        self.storage_free.set_function(free)
        self.backup_last.set_function(backup)

    def set_mqtt_connected(self, connected: bool) -> None:
        self.mqtt_connected.set(1 if connected else 0)

    def exposition(self) -> bytes:
        """The text format of every series (what ``GET /metrics`` answers)."""
        return generate_latest(self._exposed)


def _set_counts(gauge: Gauge, states: tuple[str, ...], current: Mapping[str, str]) -> None:
    tally = Tally(current.values())
    for state in states:
        gauge.labels(state=state).set(tally.get(state, 0))


def _set_one_hot(gauge: Gauge, states: tuple[str, ...], current: str, **labels: str) -> None:
    """A state set: 1 for ``current``, 0 for every other state (one series per state)."""
    for state in states:
        gauge.labels(state=state, **labels).set(1 if state == current else 0)


def _set_or_remove(gauge: Gauge, value: float | None, *labels: str) -> None:
    """Set the series, or remove it when there is no value (absent beats a stale number)."""
    if value is None:
        with contextlib.suppress(KeyError):
            gauge.remove(*labels)
    else:
        gauge.labels(*labels).set(value)
