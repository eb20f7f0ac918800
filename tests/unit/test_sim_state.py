"""The SIM lifecycle rules of ``bank/sim_state.py``, pure: the state the contract shows, the
state the planner sees, rest, recovery and the operator's moves."""

from __future__ import annotations

import dataclasses
from typing import get_args
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.bank.policy import Limits, QuietWindow, check_call
from simbank.bank.sim_state import (
    QUARANTINE_STATES,
    STICKY_STATES,
    Operation,
    announces_quota_exhausted,
    contract_state,
    is_resting,
    operator_transition,
    plan_state,
    recovered,
    shown_state,
    sticky,
    ussd_refusal,
)
from simbank.bank.usage import Usage
from simbank.contract import SimStateName
from simbank.drivers.types import SimStatus
from simbank.errors import Refused

UTC = ZoneInfo("UTC")
NOW = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC
ICCID = "89990100000000000013"
STATES: tuple[SimStateName, ...] = get_args(SimStateName)
LEDGER_STATES = [None, "available", "blocked", "suspected", "locked", "disabled"]


def usage(**kw: object) -> Usage:
    return Usage(NOW, NOW - 3600, NOW + 3600, **kw)  # type: ignore[arg-type]


# -- the state the contract shows -------------------------------------------------------------
@pytest.mark.parametrize(
    ("ledger", "placed", "serving", "registered", "expected"),
    [
        ("blocked", True, True, True, "blocked"),
        ("suspected", False, False, False, "suspected"),
        ("locked", True, False, False, "locked"),
        ("disabled", True, True, True, "disabled"),
        (None, False, False, False, "absent"),
        ("available", False, True, True, "absent"),
        (None, True, True, True, "active"),
        ("available", True, True, False, "available"),
        (None, True, False, True, "available"),
        (None, True, False, False, "available"),
    ],
)
def test_contract_state(
    ledger: str | None, placed: bool, serving: bool, registered: bool, expected: str
) -> None:
    got = contract_state(ledger, placed=placed, serving=serving, registered=registered)
    assert got == expected


@pytest.mark.parametrize(
    ("ledger", "status", "expected"),
    [(None, "pin", "locked"), (None, "puk", "locked"), (None, "ready", "available"),
     (None, None, "available"), ("blocked", "pin", "blocked"), ("disabled", "puk", "disabled")],
)  # fmt: skip
def test_a_card_that_wants_its_pin_shows_locked(
    ledger: str | None, status: str | None, expected: str
) -> None:
    got = contract_state(ledger, placed=True, serving=False, registered=False, status=status)
    assert got == expected


@given(st.sampled_from(LEDGER_STATES), st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_sticky_states_override_what_modems_show(
    ledger: str | None, placed: bool, serving: bool, registered: bool, resting: bool
) -> None:
    state = contract_state(ledger, placed=placed, serving=serving, registered=registered)
    assert state in STATES
    if ledger in STICKY_STATES:
        assert state == ledger
        assert shown_state(state, resting=resting) == ledger  # a rest never hides it
    else:
        assert state in {"absent", "available", "active"}


@pytest.mark.parametrize(
    ("state", "resting", "expected"),
    [
        ("available", True, "resting"),
        ("active", True, "resting"),
        ("available", False, "available"),
        ("absent", True, "absent"),
        ("blocked", True, "blocked"),
        ("disabled", True, "disabled"),
    ],
)
def test_shown_state(state: SimStateName, resting: bool, expected: str) -> None:
    assert shown_state(state, resting=resting) == expected


# -- the state the planner sees ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("ledger", "status", "expected"),
    [
        ("blocked", SimStatus.READY, "blocked"),
        ("disabled", None, "disabled"),
        (None, None, "available"),
        (None, SimStatus.READY, "available"),
        ("available", SimStatus.PIN, "locked"),
        (None, SimStatus.PUK, "locked"),
        (None, SimStatus.ABSENT, "absent"),
        (None, SimStatus.NOT_READY, "absent"),
        (None, SimStatus.ERROR, "absent"),
        ("suspected", SimStatus.PIN, "suspected"),
    ],
)
def test_plan_state(ledger: str | None, status: SimStatus | None, expected: str) -> None:
    assert plan_state(ledger, status) == expected


def test_sticky_is_typed_by_the_contract() -> None:
    assert set(STATES) >= STICKY_STATES
    assert QUARANTINE_STATES < STICKY_STATES
    assert sticky("available") is None and sticky(None) is None and sticky("nonsense") is None
    assert sticky("blocked") == "blocked"


# -- rest ------------------------------------------------------------------------------------
LIMITS = Limits(
    calls_per_hour=3, calls_per_day=5, call_seconds_per_day=600, min_call_gap_s=30,
    rest_after_calls=2, rest_s=900, calls_per_destination_per_day=0,
)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "used", "expected"),
    [
        ("fresh", usage(), False),
        ("inside the call gap", usage(last_call_end=NOW - 10), True),
        ("gap over", usage(last_call_end=NOW - 31), False),
        ("rest after calls", usage(last_call_end=NOW - 100, calls_since_rest=2), True),
        ("hour full", usage(hour_calls=(NOW - 10, NOW - 20, NOW - 30)), True),
        ("day full", usage(calls_day=5), True),
        ("day's seconds used", usage(call_seconds_day=600), True),
        ("one second left", usage(call_seconds_day=599), False),
        # A destination cap of 0 refuses every call, but it is not the SIM's own quota.
        ("destination cap only", usage(calls_day=1), False),
    ],
)
def test_is_resting(name: str, used: Usage, expected: bool) -> None:
    assert is_resting(LIMITS, used, NOW, UTC) is expected, name


def test_quiet_hours_are_nobody_s_rest() -> None:
    quiet = Limits(calls_per_day=0, quiet_hours=(QuietWindow(0, 0),))  # quiet all day
    assert not is_resting(quiet, usage(), NOW, UTC)
    assert is_resting(Limits(calls_per_day=0), usage(), NOW, UTC)


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    """Consistent usage: calls since a rest imply a last call."""
    last_call_end = draw(st.one_of(st.none(), st.floats(NOW - 2000, NOW)))
    return usage(
        hour_calls=tuple(draw(st.lists(st.floats(NOW - 3599, NOW), max_size=5))),
        calls_day=draw(st.integers(0, 8)),
        call_seconds_day=draw(st.integers(0, 800)),
        last_call_end=last_call_end,
        calls_since_rest=0 if last_call_end is None else draw(st.integers(0, 4)),
    )


@given(usages(), st.integers(1, 600), st.integers(0, 3))
def test_a_resting_sim_may_place_no_call_at_all(
    used: Usage, duration: int, destination_calls: int
) -> None:
    """Rest means any call, of any length, to any destination, is refused for quota."""
    if is_resting(LIMITS, used, NOW, UTC):
        refusal = check_call(
            LIMITS, used, NOW, UTC, max_duration_s=duration,
            destination_calls_today=destination_calls, on_dnc=False, circuit_open=False,
        )  # fmt: skip
        assert refusal is not None and refusal.code == "quota_exhausted"


@given(usages())
def test_a_sim_not_resting_may_place_a_short_call(used: Usage) -> None:
    limits = dataclasses.replace(LIMITS, calls_per_destination_per_day=9)
    if not is_resting(limits, used, NOW, UTC):
        refusal = check_call(
            limits, used, NOW, UTC, max_duration_s=1,
            destination_calls_today=0, on_dnc=False, circuit_open=False,
        )  # fmt: skip
        assert refusal is None


@pytest.mark.parametrize(
    ("state", "reason", "announced", "expected"),
    [("available", "calls_per_hour", None, True), ("active", "calls_per_day", None, True),
     ("blocked", "calls_per_hour", None, False), ("available", None, None, False),
     ("suspected", "calls_per_hour", None, True),
     # Once per rest: the same limit again (an SMS while calls rest) is not news.
     ("active", "calls_per_hour", "calls_per_hour", False),
     ("active", "calls_per_day", "calls_per_hour", True),
     # The gap between two calls is no quota running out.
     ("active", "min_call_gap_s", None, False)],
)  # fmt: skip
def test_announces_quota_exhausted(
    state: SimStateName, reason: str | None, announced: str | None, expected: bool
) -> None:
    assert announces_quota_exhausted(state, reason=reason, announced=announced) is expected


# -- recovery --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "reason", "detector", "expected"),
    [
        ("suspected", "stuck_searching", None, True),
        ("suspected", "stuck_searching", "suspected", False),
        ("suspected", "reject_cause", None, False),
        ("blocked", "stuck_searching", None, False),
        (None, None, None, False),
    ],
)
def test_recovered(
    state: str | None, reason: str | None, detector: str | None, expected: bool
) -> None:
    assert recovered(state, reason, detector) is expected


# -- the operator's moves ---------------------------------------------------------------------
ALLOWED: dict[tuple[str, Operation], str] = {
    **{(s, "disable"): "disabled" for s in STATES if s != "blocked"},
    ("disabled", "enable"): "available",
    **{(s, "release"): "available" for s in ("blocked", "suspected", "locked")},
}


@pytest.mark.parametrize("operation", get_args(Operation))
@pytest.mark.parametrize("state", STATES)
def test_operator_transition_table(state: SimStateName, operation: Operation) -> None:
    expected = ALLOWED.get((state, operation))
    if expected is None:
        with pytest.raises(Refused) as caught:
            operator_transition(ICCID, state, operation)
        assert caught.value.reason == "not_permitted"
    else:
        assert operator_transition(ICCID, state, operation) == expected


@pytest.mark.parametrize(
    ("state", "operation", "message"),
    [
        ("blocked", "disable", "a blocked SIM stays quarantined until released"),
        ("active", "enable", f"SIM {ICCID} is active, not disabled"),
        ("resting", "release", f"SIM {ICCID} is resting: nothing to release"),
    ],
)
def test_operator_transition_messages(
    state: SimStateName, operation: Operation, message: str
) -> None:
    with pytest.raises(Refused, match=message):
        operator_transition(ICCID, state, operation)


@given(st.lists(st.sampled_from(get_args(Operation)), max_size=20), st.sampled_from(STATES))
def test_no_operator_command_takes_a_blocked_sim_anywhere_but_release(
    operations: list[Operation], start: SimStateName
) -> None:
    state = start
    for operation in operations:
        before = state
        try:
            state = operator_transition(ICCID, state, operation)
        except Refused:
            continue
        assert state in STATES
        if before == "blocked":
            assert operation == "release" and state == "available"


@pytest.mark.parametrize("state", STATES)
def test_ussd_refusal(state: SimStateName) -> None:
    refusal = ussd_refusal(ICCID, state)
    if state in {"blocked", "disabled"}:
        assert refusal is not None and refusal.reason == "not_permitted"
        assert str(refusal) == f"SIM {ICCID} is {state}"
    else:
        assert refusal is None
