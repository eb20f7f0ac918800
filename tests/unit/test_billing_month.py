"""Billing-month quotas: the cycle's bounds (tables across DST changes and month ends, and
the property that cycles tile time), the month counted in the summary, the refusals naming
the month's limits, rest and rotation following them, and the config and payloads."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from simbank.bank.policy import Limits, check_call, check_sms, headroom
from simbank.bank.rotation import Action, SlotView, plan
from simbank.bank.sim_state import is_resting
from simbank.bank.usage import (
    UsageKind,
    UsageRecord,
    billing_period_bounds,
    history_start,
    summarise,
)
from simbank.config.models import PolicyConfig
from simbank.contract import Usage as UsagePayload
from simbank.daemon.publication import limits_payload, usage_payload

UTC = ZoneInfo("UTC")
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
HAVANA = ZoneInfo("America/Havana")  # clocks change at local midnight
SANTIAGO = ZoneInfo("America/Santiago")
ZONES = [UTC, LONDON, NEW_YORK, HAVANA, SANTIAGO, ZoneInfo("Asia/Shanghai")]
GENEROUS = Limits(calls_per_hour=100, calls_per_day=100, call_seconds_per_day=10**6,
                  sms_per_day=100, min_call_gap_s=0)  # fmt: skip


def at(tz: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0, fold: int = 0) -> float:
    return dt.datetime(y, mo, d, h, mi, tzinfo=tz, fold=fold).timestamp()


def call(booked_at: float, reserved: int = 60, dur: int | None = 60) -> UsageRecord:
    done = None if dur is None else booked_at + dur
    return UsageRecord(0, "89001", UsageKind.CALL, booked_at, reserved, done, "ok", dur or 0)


def sms(booked_at: float) -> UsageRecord:
    return UsageRecord(0, "89001", UsageKind.SMS, booked_at)


# -- the cycle's bounds -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "now", "day", "start", "end"),
    [
        # London: spring forward inside the cycle (31 days less an hour)
        (LONDON, (2026, 3, 29, 12), 1, (2026, 3, 1), (2026, 4, 1)),
        # London: fall back inside the cycle (30 days and an hour)
        (LONDON, (2026, 10, 25, 1, 30), 28, (2026, 9, 28), (2026, 10, 28)),
        (LONDON, (2026, 10, 28), 28, (2026, 10, 28), (2026, 11, 28)),
        # New York: the cycle starts on the day clocks go forward
        (NEW_YORK, (2026, 3, 8, 1, 30), 8, (2026, 3, 8), (2026, 4, 8)),
        (NEW_YORK, (2026, 3, 8, 3, 30), 8, (2026, 3, 8), (2026, 4, 8)),
        (NEW_YORK, (2026, 3, 7, 23, 59), 8, (2026, 2, 8), (2026, 3, 8)),
        # New York: the repeated hour when clocks go back belongs to its day
        (NEW_YORK, (2026, 11, 1, 1, 30), 1, (2026, 11, 1), (2026, 12, 1)),
        # month ends, the year's end, a leap day
        (UTC, (2026, 2, 28), 28, (2026, 2, 28), (2026, 3, 28)),
        (UTC, (2026, 2, 27, 23, 59), 28, (2026, 1, 28), (2026, 2, 28)),
        (UTC, (2026, 1, 31, 23, 59), 1, (2026, 1, 1), (2026, 2, 1)),
        (UTC, (2026, 12, 20), 15, (2026, 12, 15), (2027, 1, 15)),
        (UTC, (2027, 1, 10), 15, (2026, 12, 15), (2027, 1, 15)),
        (UTC, (2028, 2, 29, 12), 1, (2028, 2, 1), (2028, 3, 1)),
    ],
)
def test_billing_period_bounds(
    tz: ZoneInfo,
    now: tuple[int, ...],
    day: int,
    start: tuple[int, int, int],
    end: tuple[int, int, int],
) -> None:
    assert billing_period_bounds(at(tz, *now), tz, day) == (at(tz, *start), at(tz, *end))


def test_cycles_are_as_long_as_their_local_days() -> None:
    start, end = billing_period_bounds(at(LONDON, 2026, 3, 15), LONDON, 1)
    assert end - start == 31 * 86400 - 3600
    start, end = billing_period_bounds(at(NEW_YORK, 2026, 10, 15), NEW_YORK, 2)
    assert end - start == 31 * 86400 + 3600


def test_a_skipped_midnight_starts_the_cycle_when_the_clocks_change() -> None:
    # Havana 2026-03-08: 00:00 becomes 01:00 at once; the cycle starts at that moment.
    start, _ = billing_period_bounds(at(HAVANA, 2026, 3, 20), HAVANA, 8)
    assert dt.datetime.fromtimestamp(start, HAVANA).replace(tzinfo=None) == dt.datetime(
        2026, 3, 8, 1, 0
    )
    assert billing_period_bounds(start - 1, HAVANA, 8)[1] == start


@pytest.mark.parametrize("day", [0, 29, 31, -1])
def test_billing_day_outside_1_to_28_is_an_error(day: int) -> None:
    with pytest.raises(ValueError, match="billing_day"):
        billing_period_bounds(0.0, UTC, day)


@settings(max_examples=300, deadline=None)
@given(
    now=st.floats(min_value=946_684_800, max_value=2_208_988_800, allow_nan=False),
    tz=st.sampled_from(ZONES),
    day=st.integers(min_value=1, max_value=28),
)
# Half a microsecond before midnight: datetime.fromtimestamp rounds it up to the next day.
@example(now=2_208_988_799.9999995, tz=ZoneInfo("UTC"), day=1)
def test_now_is_inside_its_cycle_and_cycles_tile(now: float, tz: ZoneInfo, day: int) -> None:
    start, end = billing_period_bounds(now, tz, day)
    assert start <= now < end
    assert 27 * 86400 < end - start < 32 * 86400
    assert billing_period_bounds(start, tz, day)[0] == start
    assert billing_period_bounds(start - 0.001, tz, day)[1] == start
    assert billing_period_bounds(end, tz, day)[0] == end
    assert dt.datetime.fromtimestamp(start, tz).day == day


# -- the month in the summary -----------------------------------------------------------------


def test_summary_counts_the_month_only_when_asked() -> None:
    now = at(LONDON, 2026, 6, 20, 12)
    rows = [sms(at(LONDON, 2026, 6, 14, 23, 59)), sms(at(LONDON, 2026, 6, 15)), call(now - 7200)]
    plain = summarise(rows, now, LONDON)
    assert (plain.calls_month, plain.call_seconds_month, plain.sms_month) == (None, None, None)
    assert (plain.month_start, plain.month_end) == (None, None)
    usage = summarise(rows, now, LONDON, billing_day=15)
    assert (usage.calls_month, usage.call_seconds_month, usage.sms_month) == (1, 60, 1)
    assert (usage.month_start, usage.month_end) == (
        at(LONDON, 2026, 6, 15),
        at(LONDON, 2026, 7, 15),
    )
    assert usage.sms_day == 0


def test_month_charges_unfinished_calls_their_reservation_and_counts_the_future() -> None:
    now = at(UTC, 2026, 6, 20)
    rows = [call(at(UTC, 2026, 6, 2), reserved=600, dur=None), call(now + 3600, dur=30)]
    usage = summarise(rows, now, UTC, billing_day=1)
    assert (usage.calls_month, usage.call_seconds_month) == (2, 630)


def test_history_reaches_back_to_the_cycle_start_only_for_the_month() -> None:
    now = at(NEW_YORK, 2026, 6, 20, 12)
    assert history_start(now, NEW_YORK) == at(NEW_YORK, 2026, 6, 20)
    assert history_start(now, NEW_YORK, billing_day=25) == at(NEW_YORK, 2026, 5, 25)


# -- the refusals ------------------------------------------------------------------------------


def month_limits(**kw: int | None) -> Limits:
    return replace(GENEROUS, **kw)  # type: ignore[arg-type]


NOW = at(LONDON, 2026, 3, 20, 12)
NEXT_CYCLE = at(LONDON, 2026, 4, 5)


def may_sms(limits: Limits, rows: list[UsageRecord]) -> tuple[str, float | None] | None:
    usage = summarise(rows, NOW, LONDON, billing_day=limits.counted_billing_day)
    refusal = check_sms(limits, usage, NOW, LONDON, on_dnc=False, circuit_open=False)
    if refusal is None:
        return None
    assert refusal.code == "quota_exhausted"
    return str(refusal.limit), refusal.frees_at


def may_call(
    limits: Limits, rows: list[UsageRecord], max_s: int = 60
) -> tuple[str, float | None] | None:
    usage = summarise(rows, NOW, LONDON, billing_day=limits.counted_billing_day)
    refusal = check_call(limits, usage, NOW, LONDON, max_duration_s=max_s,
                         destination_calls_today=0, on_dnc=False, circuit_open=False)  # fmt: skip
    return None if refusal is None else (str(refusal.limit), refusal.frees_at)


EARLIER = at(LONDON, 2026, 3, 10)  # this cycle (from 5 March), not today


@pytest.mark.parametrize(
    ("limits", "rows", "refused"),
    [
        (month_limits(billing_day=5, sms_per_month=2), [sms(EARLIER)], None),
        (month_limits(billing_day=5, sms_per_month=2), [sms(EARLIER)] * 2,
         ("sms_per_month", NEXT_CYCLE)),
        (month_limits(billing_day=5, sms_per_month=0), [], ("sms_per_month", None)),
        # the previous cycle does not count
        (month_limits(billing_day=5, sms_per_month=2), [sms(at(LONDON, 2026, 3, 4))] * 2, None),
        # over both the day and the month: the month (it frees last) is named
        (month_limits(billing_day=5, sms_per_month=1, sms_per_day=1), [sms(NOW - 60)],
         ("sms_per_month", NEXT_CYCLE)),
        (month_limits(billing_day=5, sms_per_day=1), [sms(NOW - 60)],
         ("sms_per_day", at(LONDON, 2026, 3, 21))),
        (month_limits(billing_day=5), [sms(EARLIER)] * 500, None),
    ],
)  # fmt: skip
def test_sms_per_month(
    limits: Limits, rows: list[UsageRecord], refused: tuple[str, float | None] | None
) -> None:
    assert may_sms(limits, rows) == refused


@pytest.mark.parametrize(
    ("limits", "rows", "max_s", "refused"),
    [
        (month_limits(billing_day=5, calls_per_month=2), [call(EARLIER)], 60, None),
        (month_limits(billing_day=5, calls_per_month=2), [call(EARLIER)] * 2, 60,
         ("calls_per_month", NEXT_CYCLE)),
        (month_limits(billing_day=5, calls_per_month=0), [], 60, ("calls_per_month", None)),
        (month_limits(billing_day=5, call_seconds_per_month=120), [call(EARLIER)], 60, None),
        (month_limits(billing_day=5, call_seconds_per_month=120), [call(EARLIER)], 61,
         ("call_seconds_per_month", NEXT_CYCLE)),
        # a call longer than the whole month's seconds never fits
        (month_limits(billing_day=5, call_seconds_per_month=120), [], 121,
         ("call_seconds_per_month", None)),
        # the month is named before the call gap, whose end would not free the SIM
        (month_limits(billing_day=5, calls_per_month=1, min_call_gap_s=3600), [call(NOW - 120)],
         60, ("calls_per_month", NEXT_CYCLE)),
    ],
)  # fmt: skip
def test_calls_per_month(
    limits: Limits, rows: list[UsageRecord], max_s: int, refused: tuple[str, float | None] | None
) -> None:
    assert may_call(limits, rows, max_s) == refused


def test_a_sim_over_its_month_rests_and_has_no_headroom() -> None:
    limits = month_limits(billing_day=5, calls_per_month=2, sms_per_month=4)
    usage = summarise([call(EARLIER)] * 2 + [sms(EARLIER)], NOW, LONDON, billing_day=5)
    assert is_resting(limits, usage, NOW, LONDON)
    assert headroom(limits, usage, UsageKind.CALL) == 0.0
    assert headroom(limits, usage, UsageKind.SMS) == pytest.approx(0.75)
    fresh = summarise([], NOW, LONDON, billing_day=5)
    assert not is_resting(limits, fresh, NOW, LONDON)


def test_a_monthly_limit_without_a_counted_month_refuses() -> None:
    """Fail closed: a summary that skipped the month cannot vouch for room in it."""
    limits = month_limits(sms_per_month=10)
    usage = summarise([], NOW, LONDON)
    refusal = check_sms(limits, usage, NOW, LONDON, on_dnc=False, circuit_open=False)
    assert refusal is not None
    assert refusal.limit == "sms_per_month"


def test_rotation_leaves_a_sim_over_its_month() -> None:
    limits = month_limits(billing_day=5, sms_per_month=2)
    over = summarise([sms(EARLIER)] * 2, NOW, LONDON, billing_day=5)
    fresh = summarise([], NOW, LONDON, billing_day=5)
    slots = [SlotView(1, "8900001", "active", over, limits),
             SlotView(2, "8900002", "available", fresh, limits)]  # fmt: skip
    result = plan(slots, 1, NOW - 86400, NOW, tz=LONDON, action=Action(UsageKind.SMS),
                  min_dwell_s=60, wait_limit_s=30)  # fmt: skip
    assert (result.decision, result.slot) == ("switch", 2)
    both = [SlotView(1, "8900001", "active", over, limits),
            SlotView(2, "8900002", "available", over, limits)]  # fmt: skip
    none = plan(both, 1, NOW - 86400, NOW, tz=LONDON, action=Action(UsageKind.SMS), min_dwell_s=60)
    assert (none.decision, none.error_code, none.frees_at) == (
        "none",
        "quota_exhausted",
        NEXT_CYCLE,
    )


@settings(max_examples=100, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0, max_value=4 * 86400), min_size=1, max_size=80),
    day=st.integers(min_value=1, max_value=28),
    cap=st.integers(min_value=0, max_value=5),
)
def test_no_sequence_of_sms_exceeds_a_cycle(gaps: list[float], day: int, cap: int) -> None:
    limits = month_limits(billing_day=day, sms_per_month=cap)
    now = at(NEW_YORK, 2026, 1, 1)
    sent: list[UsageRecord] = []
    for gap in gaps:
        now += gap
        since = history_start(now, NEW_YORK, billing_day=limits.counted_billing_day)
        rows = [r for r in sent if r.booked_at >= since]
        usage = summarise(rows, now, NEW_YORK, billing_day=limits.counted_billing_day)
        if check_sms(limits, usage, now, NEW_YORK, on_dnc=False, circuit_open=False) is None:
            sent.append(sms(now))
    per_cycle: dict[float, int] = {}
    for record in sent:
        start = billing_period_bounds(record.booked_at, NEW_YORK, day)[0]
        per_cycle[start] = per_cycle.get(start, 0) + 1
    assert all(n <= cap for n in per_cycle.values())


# -- config and payloads ----------------------------------------------------------------------


def test_policy_config_defaults_leave_the_month_unlimited() -> None:
    config = PolicyConfig()
    assert (config.billing_day, config.calls_per_month, config.sms_per_month) == (1, None, None)
    limits = Limits.from_config(config)
    assert limits.counted_billing_day is None
    monthly = Limits.from_config(PolicyConfig(billing_day=12, call_seconds_per_month=9000))
    assert (monthly.counted_billing_day, monthly.call_seconds_per_month) == (12, 9000)


@pytest.mark.parametrize("bad", [{"billing_day": 0}, {"billing_day": 29}, {"sms_per_month": -1}])
def test_policy_config_refuses_bad_month_keys(bad: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        PolicyConfig(**bad)  # type: ignore[arg-type]


def test_payloads_show_the_month() -> None:
    limits = month_limits(billing_day=5, sms_per_month=2)
    shown = limits_payload(limits)
    assert shown["billing_day"] == 5
    assert (shown["sms_per_month"], shown["calls_per_month"]) == (2, None)
    usage = usage_payload(summarise([sms(EARLIER)], NOW, LONDON, billing_day=5))
    assert (usage.sms_month, usage.calls_month, usage.call_seconds_month) == (1, 0, 0)
    assert usage.month_start is not None
    assert usage.month_start.timestamp() == at(LONDON, 2026, 3, 5)
    assert usage.month_end is not None
    assert usage.month_end.timestamp() == NEXT_CYCLE
    assert UsagePayload.model_validate_json(usage.to_json()) == usage
    plain = usage_payload(summarise([], NOW, LONDON))
    assert plain.sms_month is None
    assert plain.month_end is None
