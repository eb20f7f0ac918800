"""Rotation planner: stay while the active SIM may act, else the eligible SIM with most room."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.bank.policy import Limits, QuietWindow
from simbank.bank.rotation import (
    Action,
    ModemView,
    SlotView,
    best_for_gateway,
    plan,
    refusal_for,
)
from simbank.bank.usage import Usage, UsageKind

UTC = ZoneInfo("UTC")
NOW = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC
CALL = Action(UsageKind.CALL, max_duration_s=60)
SMS = Action(UsageKind.SMS)
LIMITS = Limits(
    calls_per_hour=10,
    calls_per_day=10,
    call_seconds_per_day=1000,
    sms_per_day=10,
    min_call_gap_s=30,
)


def used(calls: int = 0, sms: int = 0, last_end: float | None = None) -> Usage:
    return Usage(
        NOW, NOW - 3600, NOW + 3600, hour_calls=(NOW - 100,) * calls, calls_day=calls,
        call_seconds_day=60 * calls, sms_day=sms, last_call_end=last_end,
    )  # fmt: skip


def sim(
    slot: int, calls: int = 0, sms: int = 0, state: str = "available", **kw: object
) -> SlotView:
    return SlotView(slot, f"8986{slot:04d}", state, used(calls, sms, **kw), LIMITS)  # type: ignore[arg-type]


def test_stays_while_the_active_sim_may_act() -> None:
    result = plan(
        [sim(0, calls=9, state="active"), sim(1)],
        0,
        NOW - 3600,
        NOW,
        tz=UTC,
        action=CALL,
        min_dwell_s=60,
    )
    assert (result.decision, result.slot) == ("stay", 0)
    assert result.headroom == pytest.approx(0.1)


def test_switches_at_once_to_the_sim_with_most_headroom_when_the_active_one_may_not() -> None:
    slots = [
        sim(0, calls=10, state="active"),
        sim(1, calls=5),
        sim(2, calls=2),
        sim(3, state="blocked"),
        SlotView(4, None, "absent"),
    ]
    result = plan(
        slots, 0, NOW - 1, NOW, tz=UTC, action=CALL, min_dwell_s=600
    )  # dwell does not hold it
    assert (result.decision, result.slot) == ("switch", 2)
    assert result.refusals[0].limit == "calls_per_hour"
    assert result.unusable == {3: "blocked", 4: "empty"}


def test_headroom_is_judged_for_the_action() -> None:
    slots = [
        sim(0, calls=10, sms=9, state="active"),
        sim(1, calls=9, sms=0),
        sim(2, calls=0, sms=5),
    ]
    sms_plan = plan(slots, 0, NOW - 3600, NOW, tz=UTC, action=SMS, min_dwell_s=60)
    assert (sms_plan.decision, sms_plan.slot) == ("stay", 0)
    call_plan = plan(slots, 0, NOW - 3600, NOW, tz=UTC, action=CALL, min_dwell_s=60)
    assert (call_plan.decision, call_plan.slot) == ("switch", 2)


def test_ties_go_to_the_lowest_slot() -> None:
    result = plan([sim(3), sim(1), sim(2)], None, None, NOW, tz=UTC, action=CALL, min_dwell_s=60)
    assert (result.decision, result.slot) == ("switch", 1)


def test_none_eligible_carries_every_slot_refusal_and_the_earliest_release() -> None:
    slots = [sim(0, calls=10, state="active"), sim(1, last_end=NOW - 10), sim(2, state="locked")]
    result = plan(slots, 0, NOW - 3600, NOW, tz=UTC, action=CALL, min_dwell_s=60)
    assert (result.decision, result.slot) == ("none", None)
    assert {s: r.limit for s, r in result.refusals.items()} == {
        0: "calls_per_hour",
        1: "min_call_gap_s",
    }
    assert result.frees_at == NOW + 20
    assert result.unusable == {2: "locked"}
    assert result.error_code == "quota_exhausted"  # the locked card is no candidate


def test_a_gateway_wide_refusal_is_reported_as_itself() -> None:
    action = Action(UsageKind.CALL, max_duration_s=60, on_dnc=True)
    result = plan(
        [sim(0, state="active"), sim(1)], 0, NOW - 3600, NOW, tz=UTC, action=action, min_dwell_s=60
    )
    assert result.decision == "none"
    assert result.error_code == "do_not_call"


def test_quiet_hours_block_every_slot() -> None:
    quiet = Limits(quiet_hours=(QuietWindow.parse("20:00-08:00"),))
    slots = [SlotView(0, "89860000", "active", used(), quiet)]
    result = plan(slots, 0, NOW - 3600, NOW, tz=UTC, action=SMS, min_dwell_s=60)
    assert result.error_code == "quiet_hours"
    assert result.frees_at == 1_780_041_600.0  # 08:00 UTC the next morning


def test_rebalance_waits_for_the_minimum_dwell() -> None:
    slots = [sim(0, calls=8, state="active"), sim(1, calls=1)]
    early = plan(slots, 0, NOW - 30, NOW, tz=UTC, action=CALL, min_dwell_s=60, rebalance=True)
    assert (early.decision, early.slot) == ("stay", 0)
    later = plan(slots, 0, NOW - 90, NOW, tz=UTC, action=CALL, min_dwell_s=60, rebalance=True)
    assert (later.decision, later.slot) == ("switch", 1)
    no_better = plan(
        [sim(0, calls=1, state="active"), sim(1, calls=1)],
        0,
        NOW - 90,
        NOW,
        tz=UTC,
        action=CALL,
        min_dwell_s=60,
        rebalance=True,
    )
    assert no_better.decision == "stay"


def test_a_sim_without_known_usage_is_not_used() -> None:
    result = plan(
        [SlotView(0, "8986", "available")], None, None, NOW, tz=UTC, action=CALL, min_dwell_s=0
    )
    assert (result.decision, result.unusable) == ("none", {0: "unknown_usage"})


def test_ussd_only_stops_for_the_circuit_breaker() -> None:
    view = sim(0, calls=10, sms=10)
    assert refusal_for(view, Action(UsageKind.USSD), NOW, UTC) is None
    refusal = refusal_for(view, Action(UsageKind.USSD, circuit_open=True), NOW, UTC)
    assert refusal is not None
    assert refusal.code == "circuit_open"


def test_gateway_prefers_a_modem_that_needs_no_switch() -> None:
    switching = ModemView("m1", [sim(0, calls=10, state="active"), sim(1)], 0, NOW - 3600)
    ready = ModemView("m2", [sim(0, calls=7, state="active")], 0, NOW - 3600)
    roomy = ModemView("m3", [sim(0, calls=2, state="active")], 0, NOW - 3600)
    choice = best_for_gateway([switching, ready, roomy], NOW, tz=UTC, action=CALL, min_dwell_s=60)
    assert choice.modem == "m3"
    choice = best_for_gateway([switching, ready], NOW, tz=UTC, action=CALL, min_dwell_s=60)
    assert (choice.modem, choice.plan.decision) == ("m2", "stay")
    choice = best_for_gateway([switching], NOW, tz=UTC, action=CALL, min_dwell_s=60)
    assert (choice.modem, choice.plan.decision, choice.plan.slot) == ("m1", "switch", 1)


def test_gateway_with_nothing_eligible_says_why() -> None:
    full = ModemView("m1", [sim(0, calls=10, state="active")], 0, NOW)
    capped = Action(UsageKind.CALL, max_duration_s=60, destination_calls_today=5)
    choice = best_for_gateway(
        [full, ModemView("m2", [sim(0, state="active")], 0, NOW)],
        NOW,
        tz=UTC,
        action=capped,
        min_dwell_s=60,
    )
    assert choice.modem is None
    assert choice.plan.decision == "none"
    assert choice.error_code == "no_eligible_sim"  # one modem quota, the other the destination cap
    choice = best_for_gateway(
        [ModemView("m2", [sim(0, state="active")], 0, NOW)],
        NOW,
        tz=UTC,
        action=capped,
        min_dwell_s=60,
    )
    assert choice.error_code == "destination_cap"
    assert best_for_gateway([], NOW, tz=UTC, action=CALL, min_dwell_s=60).modem is None


slot_st = st.builds(
    lambda slot, calls, sms, state: sim(slot, calls=calls, sms=sms, state=state),
    st.integers(0, 7), st.integers(0, 12), st.integers(0, 12),
    st.sampled_from(["available", "active", "resting", "blocked", "locked", "disabled"]),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    slots=st.lists(slot_st, max_size=6, unique_by=lambda v: v.slot),
    active=st.none() | st.integers(0, 7),
    dwelt=st.floats(0, 600),
    kind=st.sampled_from([UsageKind.CALL, UsageKind.SMS]),
    rebalance=st.booleans(),
)
def test_a_plan_never_picks_a_slot_the_policy_refuses(
    slots: list[SlotView], active: int | None, dwelt: float, kind: UsageKind, rebalance: bool
) -> None:
    action = Action(kind, max_duration_s=60)
    result = plan(
        slots, active, NOW - dwelt, NOW, tz=UTC, action=action, min_dwell_s=120, rebalance=rebalance
    )
    by_slot = {v.slot: v for v in slots}
    allowed = {
        v.slot for v in slots
        if v.state in {"available", "active", "resting"} and refusal_for(v, action, NOW, UTC) is None
    }  # fmt: skip
    assert set(result.refusals) | set(result.unusable) | allowed == set(by_slot)
    if result.decision == "none":
        assert not allowed
        assert all(r.code for r in result.refusals.values())
    else:
        assert result.slot in allowed
        assert (result.decision == "stay") == (result.slot == active)
        if active not in allowed or (rebalance and dwelt >= 120):
            assert result.headroom == max(result.headroom, *(0.0,), *(
                plan([by_slot[s]], None, None, NOW, tz=UTC, action=action, min_dwell_s=0).headroom
                for s in allowed if s != active
            ))  # fmt: skip
        if active in allowed and not rebalance:
            assert result.decision == "stay"


def test_waits_for_an_active_sim_that_frees_up_soon_instead_of_switching() -> None:
    """The active SIM is only inside its 30 s gap: wait rather than re-register another."""
    views = [sim(0, calls=1, state="active", last_end=NOW - 10), sim(1)]
    waiting = plan(views, 0, NOW - 3600, NOW, tz=UTC, action=CALL, min_dwell_s=60, wait_limit_s=30)
    assert (waiting.decision, waiting.slot) == ("wait", 0)
    assert waiting.wait_until == pytest.approx(NOW + 20)
    # Too long a wait, or waiting switched off: switch as before.
    for limit in (10, 0):
        switched = plan(
            views, 0, NOW - 3600, NOW, tz=UTC, action=CALL, min_dwell_s=60, wait_limit_s=limit
        )
        assert (switched.decision, switched.slot) == ("switch", 1)


def test_gateway_prefers_a_modem_that_may_act_now_over_one_that_waits() -> None:
    waiting = ModemView("m1", [sim(0, calls=1, state="active", last_end=NOW - 10)], 0, NOW - 3600)
    ready = ModemView("m2", [sim(0, calls=5, state="active")], 0, NOW - 3600)
    choice = best_for_gateway(
        [waiting, ready], NOW, tz=UTC, action=CALL, min_dwell_s=60, wait_limit_s=30
    )
    assert choice.modem == "m2"
    alone = best_for_gateway([waiting], NOW, tz=UTC, action=CALL, min_dwell_s=60, wait_limit_s=30)
    assert (alone.modem, alone.plan.decision) == ("m1", "wait")
