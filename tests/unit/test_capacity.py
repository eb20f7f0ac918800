"""The capacity summary: eligible SIMs per action and when the next frees up, by the
planner's own rules (tables over :func:`simbank.bank.capacity.gateway_capacity`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from simbank.bank.capacity import gateway_capacity
from simbank.bank.policy import Limits, QuietWindow
from simbank.bank.rotation import ModemView, SlotView
from simbank.bank.usage import HOUR_S, Usage
from simbank.contract import ActionCapacity, Capacity, Topics

UTC = ZoneInfo("UTC")
NOW = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC
LIMITS = Limits(
    calls_per_hour=2,
    calls_per_day=10,
    call_seconds_per_day=1000,
    sms_per_day=1,
    min_call_gap_s=30,
)


def usage(calls: int = 0, sms: int = 0, first_call: float = NOW - 600) -> Usage:
    return Usage(
        NOW, NOW - 3600, NOW + 3600, hour_calls=(first_call,) * calls, calls_day=calls,
        call_seconds_day=10 * calls, sms_day=sms, last_call_end=first_call + 10 if calls else None,
    )  # fmt: skip


def slot(n: int, state: str = "available", limits: Limits = LIMITS, **used: float) -> SlotView:
    return SlotView(n, f"8999{n:016d}", state, usage(**used), limits)  # type: ignore[arg-type]


def modem(name: str, *slots: SlotView) -> ModemView:
    return ModemView(name, slots, slots[0].slot if slots else None, NOW - 3600)


def test_counts_the_sims_the_policy_lets_act_in_every_ready_modem() -> None:
    m1 = modem(
        "m1",
        slot(1, "active"),  # eligible for both
        slot(2, calls=2, first_call=NOW - 1000),  # rolling hour full: frees at +2600 s
        slot(3, "blocked"),
        SlotView(4, None, "absent"),
    )
    m2 = modem("m2", slot(5, sms=1), slot(6, "disabled"), slot(7, "locked"))
    cap = gateway_capacity([m1, m2], frozenset(), NOW, tz=UTC, traffic_stopped=False)
    call, sms = cap.actions["call"], cap.actions["sms"]
    assert (call.eligible, call.modems) == (2, 2)  # slot 1 and slot 5
    assert call.next_free_at == pytest.approx(NOW - 1000 + HOUR_S)
    assert (sms.eligible, sms.modems) == (2, 1)  # slots 1, 2; slot 5 used its day
    assert sms.next_free_at == pytest.approx(NOW + 3600)  # the day's end
    assert (cap.modems_ready, cap.modems_busy, cap.traffic_stopped) == (2, 0, False)
    assert cap.next_change_at == pytest.approx(NOW - 1000 + HOUR_S)


def test_a_busy_modem_keeps_its_sims_but_cannot_start_one_now() -> None:
    views = [modem("m1", slot(1, "active")), modem("m2", slot(2, "active"))]
    cap = gateway_capacity(views, frozenset({"m2"}), NOW, tz=UTC, traffic_stopped=False)
    assert (cap.actions["call"].eligible, cap.actions["call"].modems) == (2, 1)
    assert (cap.modems_ready, cap.modems_busy) == (2, 1)


def test_a_stopped_gateway_has_nothing_and_frees_nothing_by_itself() -> None:
    views = [modem("m1", slot(1, "active"), slot(2, calls=2))]
    cap = gateway_capacity(views, frozenset(), NOW, tz=UTC, traffic_stopped=True)
    for action in ("call", "sms"):
        room = cap.actions[action]
        assert (room.eligible, room.modems, room.next_free_at) == (0, 0, None)
    assert cap.traffic_stopped and cap.next_change_at is None


def test_quiet_hours_stop_every_sim_until_they_end() -> None:
    local = dt.datetime.fromtimestamp(NOW, UTC)
    start = (local - dt.timedelta(minutes=10)).strftime("%H:%M")
    end = (local + dt.timedelta(minutes=50)).strftime("%H:%M")
    quiet = Limits(quiet_hours=(QuietWindow.parse(f"{start}-{end}"),))
    cap = gateway_capacity(
        [modem("m1", slot(1, "active", quiet))], frozenset(), NOW, tz=UTC, traffic_stopped=False
    )
    call = cap.actions["call"]
    assert call.eligible == 0 and call.next_free_at is not None
    ends = dt.datetime.fromtimestamp(call.next_free_at, UTC)
    assert ends.strftime("%H:%M") == end and call.next_free_at > NOW


def test_a_used_up_limit_that_never_frees_gives_no_time() -> None:
    never = Limits(calls_per_hour=0, sms_per_day=0)
    cap = gateway_capacity(
        [modem("m1", slot(1, "active", never))], frozenset(), NOW, tz=UTC, traffic_stopped=False
    )
    assert cap.actions["call"].eligible == 0 and cap.actions["call"].next_free_at is None


def test_no_ready_modem_is_no_capacity() -> None:
    cap = gateway_capacity([], frozenset(), NOW, tz=UTC, traffic_stopped=False)
    assert cap.modems_ready == 0 and cap.actions["call"].eligible == 0
    assert cap.next_change_at is None


def test_the_payload_and_topic_are_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "mqtt-api.md").read_text()
    assert f"`{Topics('<base>', '<gw>').capacity}`" in doc
    for model in (Capacity, ActionCapacity):
        missing = [name for name in model.model_fields if f"`{name}`" not in doc]
        assert not missing, model


def test_a_modem_in_a_call_counts_busy_for_calls_only() -> None:
    m1, m2 = modem("m1", slot(1, "active")), modem("m2", slot(2, "active"))
    cap = gateway_capacity(
        [m1, m2], frozenset(), NOW, tz=UTC, traffic_stopped=False, in_call=frozenset({"m2"})
    )
    assert (cap.modems_ready, cap.modems_busy) == (2, 1)
    assert (cap.actions["call"].eligible, cap.actions["call"].modems) == (2, 1)
    assert (cap.actions["sms"].eligible, cap.actions["sms"].modems) == (2, 2)
    locked = gateway_capacity(
        [m1, m2], frozenset({"m2"}), NOW, tz=UTC, traffic_stopped=False, in_call=frozenset({"m2"})
    )
    assert locked.modems_busy == 1 and locked.actions["sms"].modems == 1
