"""Metrics: the exposition after feeding states, events, AT timings and requests."""

from __future__ import annotations

import math
import re
import sys
from typing import get_args

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from simbank.bank.evidence import Reason
from simbank.contract import ModemState, RegistrationInfo, SignalInfo, SimState, Usage
from simbank.integrations.metrics import (
    AT_BUCKETS,
    CALL_BUCKETS,
    CALL_OUTCOMES,
    MASKED,
    REGISTRATION_STATES,
    Metrics,
    safe_label,
)
from simbank.integrations.metrics.labels import iccid_label, modem_label, registration_label

ICCID = "8999001234567890123"
ICCID_F = "89990012345678901234F"


def _samples(metrics: Metrics) -> list[Sample]:
    text = metrics.exposition().decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _named(metrics: Metrics, name: str) -> list[Sample]:
    return [s for s in _samples(metrics) if s.name == name]


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    found = [s.value for s in _samples(metrics) if s.name == name and s.labels == labels]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


def _modem(modem_id: str, state: str) -> ModemState:
    return ModemState.model_validate({"id": modem_id, "port": "/dev/null", "state": state})


def test_modem_counts_follow_each_modems_latest_state() -> None:
    m = Metrics()
    m.observe_modem(_modem("m1", "probing"))
    m.observe_modem(_modem("m2", "ready"))
    m.observe_modem(_modem("m1", "ready"))
    assert _value(m, "simbank_modems", state="ready") == 2
    assert _value(m, "simbank_modems", state="probing") == 0
    assert _value(m, "simbank_modems", state="offline") == 0  # every state has a series
    assert _value(m, "simbank_modem_up", modem="m1") == 1
    m.observe_modem(_modem("m2", "unresponsive"))
    assert _value(m, "simbank_modems", state="ready") == 1
    assert _value(m, "simbank_modems", state="unresponsive") == 1
    assert _value(m, "simbank_modem_up", modem="m2") == 0
    m.observe_modem(_modem("m2", "switching"))
    assert _value(m, "simbank_modem_up", modem="m2") == 1


def test_sim_states_usage_and_limits() -> None:
    m = Metrics()
    limits = {"calls_per_hour": 20, "calls_per_day": 100, "sms_per_day": 50, "quiet_hours": []}
    usage = Usage(calls_hour=3, calls_day=7, call_seconds_day=410, sms_day=1)
    m.observe_sim(SimState(iccid=ICCID, state="active", usage=usage, limits=limits))
    m.observe_sim(SimState(iccid=ICCID_F, state="blocked"))
    assert _value(m, "simbank_sims", state="active") == 1
    assert _value(m, "simbank_sims", state="blocked") == 1
    assert _value(m, "simbank_sims", state="resting") == 0
    assert _value(m, "simbank_sim_calls", iccid=ICCID, window="hour") == 3
    assert _value(m, "simbank_sim_calls", iccid=ICCID, window="day") == 7
    assert _value(m, "simbank_sim_call_time_seconds", iccid=ICCID, window="day") == 410
    assert _value(m, "simbank_sim_sms", iccid=ICCID, window="day") == 1
    assert _value(m, "simbank_sim_calls_limit", iccid=ICCID, window="hour") == 20
    assert _value(m, "simbank_sim_sms_limit", iccid=ICCID, window="day") == 50
    assert not _named(m, "simbank_sim_call_time_limit_seconds")  # no such limit: no series
    # The SIM rests: moves between states; a limit that goes away loses its series.
    m.observe_sim(SimState(iccid=ICCID, state="resting", limits={"calls_per_hour": 20}))
    assert _value(m, "simbank_sims", state="active") == 0
    assert _value(m, "simbank_sims", state="resting") == 1
    assert [s.labels["window"] for s in _named(m, "simbank_sim_calls_limit")] == ["hour"]


def test_each_sim_has_a_state_set() -> None:
    m = Metrics()
    m.observe_sim(SimState(iccid=ICCID, state="active"))
    m.observe_sim(SimState(iccid=ICCID, state="blocked"))
    states = {s.labels["state"]: s.value for s in _named(m, "simbank_sim_state")}
    assert set(states) == {
        "available", "active", "resting", "suspected", "blocked", "locked", "absent", "disabled"
    }  # fmt: skip
    assert states == {state: float(state == "blocked") for state in states}


def test_one_unit_per_metric() -> None:
    """Counts and seconds never share a name: a ``window`` label splits each unit's windows,
    and every name that holds seconds says so."""
    m = Metrics()
    usage = Usage(calls_day=2, call_seconds_day=95, call_seconds_month=95, calls_month=2)
    limits = {"call_seconds_per_day": 600, "call_seconds_per_month": 6000, "calls_per_day": 9}
    m.observe_sim(SimState(iccid=ICCID, state="active", usage=usage, limits=limits))
    seconds = {s.name for s in _samples(m) if "call_time" in s.name}
    assert seconds == {
        "simbank_sim_call_time_seconds",
        "simbank_sim_call_time_limit_seconds",
    }
    assert {s.labels["window"] for s in _named(m, "simbank_sim_call_time_seconds")} == {
        "day",
        "month",
    }
    calls = {s.labels["window"]: s.value for s in _named(m, "simbank_sim_calls")}
    assert calls == {"hour": 0, "day": 2, "month": 2}
    assert not [s for s in _samples(m) if "kind" in s.labels]


def test_events_count_blocks_by_reason_and_rotations_by_modem() -> None:
    m = Metrics()
    m.observe_modem(_modem("m1", "ready"))
    assert _value(m, "simbank_rotations_total", modem="m1") == 0  # exists before the first
    assert _value(m, "simbank_blocks_total", reason="stuck_searching") == 0
    m.observe_event("sim_blocked", {"iccid": ICCID, "modem": "m1", "reason": "calls_barred"})
    m.observe_event("sim_blocked", {"iccid": ICCID, "modem": "m1", "reason": "calls_barred"})
    m.observe_event("sim_blocked", {"iccid": ICCID, "reason": "Weird Reason!"})
    m.observe_event("sim_blocked", {"iccid": ICCID})
    m.observe_event("sim_rotated", {"modem": "m1", "slot": 2, "iccid": ICCID})
    m.observe_event("modem_online", {"modem": "m1"})
    assert _value(m, "simbank_blocks_total", reason="calls_barred") == 2
    assert _value(m, "simbank_blocks_total", reason="other") == 2
    assert _value(m, "simbank_rotations_total", modem="m1") == 1


def test_at_histogram_buckets_and_timeouts() -> None:
    m = Metrics()
    m.observe_at("m1", 0.0008, timed_out=False)
    m.observe_at("m1", 0.02, timed_out=False)
    m.observe_at("m1", 30.0, timed_out=True)
    buckets = {
        s.labels["le"]: s.value
        for s in _samples(m)
        if s.name == "simbank_at_command_seconds_bucket" and s.labels["modem"] == "m1"
    }
    bounds = sorted(float(le) for le in buckets)
    assert bounds[:-1] == list(AT_BUCKETS)
    assert math.isinf(bounds[-1])
    assert AT_BUCKETS[0] == 0.001
    assert AT_BUCKETS[-1] == 40.0
    assert buckets["0.001"] == 1
    assert buckets["0.025"] == 2
    assert buckets["20.0"] == 2
    assert buckets["40.0"] == 3
    assert _value(m, "simbank_at_command_seconds_count", modem="m1") == 3
    assert _value(m, "simbank_at_timeouts_total", modem="m1") == 1


def test_requests_by_command_and_status_are_bounded() -> None:
    m = Metrics()
    m.observe_request("call", "ok")
    m.observe_request("call", "quota_exhausted")
    m.observe_request("sim/rotate", "ok")
    m.observe_request("no/such/command/" + "x" * 50, "unknown_command")
    m.observe_request("status", "made-up")
    assert _value(m, "simbank_requests_total", command="call", status="ok") == 1
    assert _value(m, "simbank_requests_total", command="call", status="quota_exhausted") == 1
    assert _value(m, "simbank_requests_total", command="sim/rotate", status="ok") == 1
    assert _value(m, "simbank_requests_total", command="other", status="unknown_command") == 1
    assert _value(m, "simbank_requests_total", command="status", status="other") == 1


def test_mqtt_connected_gauge() -> None:
    m = Metrics()
    assert _value(m, "simbank_mqtt_connected") == 0
    m.set_mqtt_connected(True)
    assert _value(m, "simbank_mqtt_connected") == 1
    m.set_mqtt_connected(False)
    assert _value(m, "simbank_mqtt_connected") == 0


_MASKED = object()
"""Expected: masked (``masked-<hash>``)."""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("m1", "m1"),
        ("modem_a-2", "modem_a-2"),
        (ICCID, ICCID),
        (ICCID_F, ICCID_F),
        ("8999110068256270054", "8999110068256270054"),
        ("123456", "123456"),  # too short for a number
        ("+15550100123", _MASKED),
        ("15550100123", _MASKED),
        ("5550100", _MASKED),
        ("+442079460123", _MASKED),
        ("m-15550100123", _MASKED),  # hidden inside free text
        ("call +447700900123 now", _MASKED),
        ("1234567890123456", "1234567890123456"),  # 16 digits: not a phone number
    ],
)
def test_safe_label(value: str, expected: object) -> None:
    label = safe_label(value)
    if expected is _MASKED:
        assert re.fullmatch(rf"{MASKED}-[0-9a-f]{{8}}", label), label
    else:
        assert label == expected


def test_masked_values_stay_distinct_and_stable() -> None:
    first, second = safe_label("+15550100123"), safe_label("+15550100124")
    assert first != second
    assert safe_label.__wrapped__("+15550100123") == first  # same value, same series
    assert "5550100123" not in first


@pytest.mark.parametrize("modem", ["m350000000000014", "15550100123", "gw_a-1"])
def test_configured_modem_ids_and_iccids_pass_as_they_are(modem: str) -> None:
    assert modem_label(modem) == modem
    assert iccid_label(ICCID) == ICCID
    assert iccid_label("8999010000000000001") == "8999010000000000001"


@pytest.mark.parametrize("value", ["+15550100123", "call 15550100123", "M1", ""])
def test_what_no_config_accepts_is_free_text(value: str) -> None:
    assert modem_label(value) == safe_label(value)
    assert iccid_label(value) == safe_label(value)


def test_imei_based_modem_ids_keep_their_own_series() -> None:
    """Regression: two modems named after their IMEIs were one ``masked`` series, and
    ``simbank_modems`` counted one of them."""
    m = Metrics()
    m.observe_modem(_modem("m350000000000014", "ready"))
    m.observe_modem(_modem("m350000000000022", "probing"))
    assert _value(m, "simbank_modems", state="ready") == 1
    assert _value(m, "simbank_modems", state="probing") == 1
    assert _value(m, "simbank_modem_up", modem="m350000000000014") == 1
    assert _value(m, "simbank_modem_up", modem="m350000000000022") == 0
    m.observe_at("m350000000000022", 0.1, timed_out=True)
    assert _value(m, "simbank_at_timeouts_total", modem="m350000000000022") == 1
    assert _value(m, "simbank_at_timeouts_total", modem="m350000000000014") == 0


def test_phone_numbers_never_reach_the_exposition() -> None:
    m = Metrics()
    m.observe_modem(_modem("m1", "ready"))
    m.observe_at("+15550100123", 0.1, timed_out=True)
    m.observe_event("sim_rotated", {"modem": "call 15550100123"})
    m.observe_event("sim_blocked", {"reason": "+15550100123"})
    m.observe_sim(SimState(iccid="+15550100124", state="active"))
    text = m.exposition().decode()
    assert "5550100123" not in text
    assert "5550100124" not in text
    masked_at = safe_label("+15550100123")
    assert _value(m, "simbank_at_timeouts_total", modem=masked_at) == 1
    assert _value(m, "simbank_rotations_total", modem=safe_label("call 15550100123")) == 1
    assert _value(m, "simbank_blocks_total", reason="other") == 1
    assert _value(m, "simbank_sim_state", iccid=safe_label("+15550100124"), state="active") == 1


def test_every_metrics_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.observe_modem(_modem("m1", "ready"))
    assert _value(first, "simbank_modems", state="ready") == 1
    assert _value(second, "simbank_modems", state="ready") == 0
    assert REGISTRY.get_sample_value("simbank_mqtt_connected") is None


def test_inbound_and_unauthorized_calls_by_modem() -> None:
    m = Metrics()
    m.observe_modem(_modem("m1", "ready"))
    assert _value(m, "simbank_incoming_calls_total", modem="m1", outcome="missed") == 0
    assert _value(m, "simbank_unauthorized_calls_total", modem="m1") == 0
    for outcome in ("missed", "missed", "rejected", "answered", "ringing?"):
        m.observe_event("incoming_call", {"modem": "m1", "outcome": outcome, "caller": "x"})
    m.observe_event("incoming_call", {"outcome": "missed"})  # no modem: not counted
    m.observe_event("unauthorized_call", {"modem": "m1", "iccid": ICCID})
    assert _value(m, "simbank_incoming_calls_total", modem="m1", outcome="missed") == 2
    assert _value(m, "simbank_incoming_calls_total", modem="m1", outcome="rejected") == 1
    assert _value(m, "simbank_incoming_calls_total", modem="m1", outcome="answered") == 1
    assert _value(m, "simbank_unauthorized_calls_total", modem="m1") == 1
    assert not [s for s in _samples(m) if s.labels.get("outcome") == "ringing?"]


def test_series_names() -> None:
    m = Metrics()
    m.observe_modem(_modem("m1", "ready"))
    m.observe_sim(SimState(iccid=ICCID, state="active", limits={"calls_per_hour": 1}))
    m.observe_at("m1", 0.1, timed_out=False)
    m.observe_request("status", "ok")
    names = {s.name for s in _samples(m)}
    assert {
        "simbank_modems",
        "simbank_modem_up",
        "simbank_sims",
        "simbank_sim_calls",
        "simbank_sim_calls_limit",
        "simbank_sim_state",
        "simbank_at_command_seconds_bucket",
        "simbank_at_timeouts_total",
        "simbank_blocks_total",
        "simbank_rotations_total",
        "simbank_mqtt_connected",
        "simbank_requests_total",
    } <= names


def test_the_billing_month_has_series_only_where_a_policy_counts_it() -> None:
    m = Metrics()
    counted = Usage(sms_day=2, sms_month=9, calls_month=4, call_seconds_month=300)
    limits = {"sms_per_day": 50, "sms_per_month": 40, "calls_per_month": None}
    m.observe_sim(SimState(iccid=ICCID, state="active", usage=counted, limits=limits))
    assert _value(m, "simbank_sim_sms", iccid=ICCID, window="month") == 9
    assert _value(m, "simbank_sim_sms_limit", iccid=ICCID, window="month") == 40
    assert _value(m, "simbank_sim_call_time_seconds", iccid=ICCID, window="month") == 300
    assert "month" not in {s.labels["window"] for s in _named(m, "simbank_sim_calls_limit")}
    # The policy drops its monthly limits: the month is no longer counted, its series go.
    m.observe_sim(SimState(iccid=ICCID, state="active", usage=Usage(sms_day=2), limits={}))
    windows = {
        s.labels["window"]
        for s in _samples(m)
        if s.name.startswith("simbank_sim_") and "window" in s.labels
    }
    assert windows == {"hour", "day"}


def test_unread_sms_balance_and_delivery_outcomes() -> None:
    from datetime import UTC, datetime

    from simbank.contract import BalanceInfo

    m = Metrics()
    checked = BalanceInfo(amount="1.25", low=True, floor="5", checked_at=datetime.now(UTC))
    m.observe_sim(SimState(iccid=ICCID, state="resting", sms_unread=3, balance=checked))
    assert _value(m, "simbank_sim_sms_unread", iccid=ICCID) == 3
    assert _value(m, "simbank_sim_balance", iccid=ICCID) == 1.25
    # An answer without an amount: the balance series goes rather than lie.
    unread = BalanceInfo(amount=None, checked_at=datetime.now(UTC))
    m.observe_sim(SimState(iccid=ICCID, state="active", balance=unread))
    assert not [s for s in _samples(m) if s.name == "simbank_sim_balance"]
    assert _value(m, "simbank_sim_sms_unread", iccid=ICCID) == 0
    m.observe_event("sms_delivered", {"message": 1})
    m.observe_event("sms_delivered", {"message": 2})
    m.observe_event("sms_failed", {"message": 3})
    assert _value(m, "simbank_sms_delivery_total", outcome="delivered") == 2
    assert _value(m, "simbank_sms_delivery_total", outcome="failed") == 1


def _reg_modem(state: str, stat: int | None, rssi: int | None, quality: int | None) -> ModemState:
    return ModemState(
        id="m1",
        port="/dev/null",
        state=state,
        registration=RegistrationInfo(stat=stat),
        signal=SignalInfo(rssi_dbm=rssi, quality=quality),
    )


def test_signal_registration_and_state_per_modem() -> None:
    m = Metrics()
    m.observe_modem(_reg_modem("ready", 5, -73, 45))
    assert _value(m, "simbank_modem_signal_dbm", modem="m1") == -73
    assert _value(m, "simbank_modem_signal_quality_ratio", modem="m1") == 0.45
    registration = {s.labels["state"]: s.value for s in _named(m, "simbank_modem_registration")}
    assert registration == {state: float(state == "roaming") for state in REGISTRATION_STATES}
    assert _value(m, "simbank_modem_state", modem="m1", state="ready") == 1
    assert _value(m, "simbank_modem_state", modem="m1", state="failed") == 0
    m.observe_modem(_reg_modem("ready", 3, -90, None))  # denied; no quality reading
    assert _value(m, "simbank_modem_registration", modem="m1", state="denied") == 1
    assert _value(m, "simbank_modem_registration", modem="m1", state="roaming") == 0
    assert not _named(m, "simbank_modem_signal_quality_ratio")
    # Offline: the last reading would be stale, so the signal goes and registration is unknown.
    m.observe_modem(_reg_modem("offline", 1, -60, 80))
    assert not _named(m, "simbank_modem_signal_dbm")
    assert _value(m, "simbank_modem_registration", modem="m1", state="unknown") == 1
    assert _value(m, "simbank_modem_registration", modem="m1", state="home") == 0
    assert _value(m, "simbank_modem_state", modem="m1", state="offline") == 1
    assert _value(m, "simbank_modem_state", modem="m1", state="ready") == 0


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        (None, "unknown"),
        (0, "not_registered"),
        (1, "home"),
        (2, "searching"),
        (3, "denied"),
        (4, "unknown"),
        (5, "roaming"),
        (6, "home"),
        (7, "roaming"),
        (8, "unknown"),
        (9, "home"),
        (10, "roaming"),
        (11, "unknown"),
        (99, "unknown"),
    ],
)
def test_registration_stats_fold_into_six_states(stat: int | None, state: str) -> None:
    assert registration_label(RegistrationInfo(stat=stat)) == state
    assert state in REGISTRATION_STATES


def test_call_outcomes_durations_and_causes() -> None:
    m = Metrics()
    m.observe_modem(_modem("m1", "ready"))
    for outcome in CALL_OUTCOMES:  # every outcome exists at 0 before the first call
        assert _value(m, "simbank_calls_total", modem="m1", outcome=outcome) == 0
    m.observe_call("m1", "completed", 42, None)
    m.observe_call("m1", "completed", 300, 16)
    m.observe_call("m1", "busy", 0, 17)
    m.observe_call("m1", "failed", 0, 21)
    m.observe_call("m1", "failed", 0, None)
    m.observe_call("m1", "weird", 12, None)
    assert _value(m, "simbank_calls_total", modem="m1", outcome="completed") == 2
    assert _value(m, "simbank_calls_total", modem="m1", outcome="busy") == 1
    assert _value(m, "simbank_calls_total", modem="m1", outcome="failed") == 2
    assert _value(m, "simbank_calls_total", modem="m1", outcome="unknown") == 1
    # Only answered calls have a talk time: ACD = sum / count = 171 s.
    assert _value(m, "simbank_call_duration_seconds_count", modem="m1") == 2
    assert _value(m, "simbank_call_duration_seconds_sum", modem="m1") == 342
    buckets = {
        float(s.labels["le"]): s.value for s in _named(m, "simbank_call_duration_seconds_bucket")
    }
    assert sorted(buckets)[:-1] == list(CALL_BUCKETS)
    assert CALL_BUCKETS[-1] == 3600
    assert buckets[30.0] == 0
    assert buckets[45.0] == 1
    assert buckets[300.0] == 2
    assert _value(m, "simbank_call_failures_total", cause="21") == 1
    assert _value(m, "simbank_call_failures_total", cause="none") == 1
    assert {s.labels["cause"] for s in _named(m, "simbank_call_failures_total")} == {"21", "none"}


def test_no_created_series_and_the_standard_ones_are_there() -> None:
    m = Metrics(version="9.8.7")
    m.observe_modem(_modem("m1", "ready"))
    m.observe_call("m1", "completed", 5, None)
    m.observe_at("m1", 0.1, timed_out=False)
    m.observe_request("status", "ok")
    names = {s.name for s in _samples(m)}
    assert not [name for name in names if name.endswith("_created")]
    assert _value(m, "simbank_build_info", version="9.8.7") == 1
    assert "python_info" in names
    assert "python_gc_collections_total" in names
    if sys.platform == "linux":  # ProcessCollector reads /proc
        assert _value(m, "process_resident_memory_bytes") > 0
        assert "process_cpu_seconds_total" in names
    # The filter is ours alone: the process-wide default registry keeps its _created series.
    probe = Counter("simbank_probe_total", "probe", registry=CollectorRegistry())
    assert any(s.name.endswith("_created") for s in next(iter(probe.collect())).samples)


def test_gateway_state_is_read_at_each_scrape() -> None:
    m = Metrics()
    assert _value(m, "simbank_circuit_open") == 0
    assert _value(m, "simbank_traffic_paused") == 0
    state = {"mqtt": True, "circuit": False, "paused": False}
    m.watch_gateway(
        mqtt_connected=lambda: state["mqtt"],
        circuit_open=lambda: state["circuit"],
        traffic_paused=lambda: state["paused"],
    )
    assert _value(m, "simbank_mqtt_connected") == 1
    state.update(mqtt=False, circuit=True, paused=True)
    assert _value(m, "simbank_mqtt_connected") == 0
    assert _value(m, "simbank_circuit_open") == 1
    assert _value(m, "simbank_traffic_paused") == 1


def test_every_block_reason_starts_at_zero() -> None:
    m = Metrics()
    reasons = {s.labels["reason"] for s in _named(m, "simbank_blocks_total")}
    assert reasons == set(get_args(Reason))
    assert {"calls_barred", "sms_barred", "puk_locked"} <= reasons
