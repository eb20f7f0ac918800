"""When a SIM's payload changes by the clock alone (``bank.sim_state.next_refresh``): its day's
counts at local midnight, its rolling hour as calls leave it, its rest when it ends, quiet
hours when they begin or end. The property: nothing the payload shows changes before the
refresh time, so the daemon publishing again then is never late."""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.bank.policy import Limits, QuietWindow, quiet_flips_at
from simbank.bank.sim_state import REFRESH_MAX_S, next_refresh, rest_reason
from simbank.bank.usage import HOUR_S, UsageKind, UsageRecord, local_day_bounds, summarise

UTC = ZoneInfo("UTC")
KOLKATA = ZoneInfo("Asia/Kolkata")  # +5:30: its midnight is 18:30 UTC
LONDON = ZoneInfo("Europe/London")
NOW = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC
ICCID = "89990100000000000013"


def _call(booked_at: float, duration_s: int = 60, *, done: bool = True) -> UsageRecord:
    return UsageRecord(
        1,
        ICCID,
        UsageKind.CALL,
        booked_at,
        reserved_s=120,
        completed_at=booked_at + duration_s if done else None,
        duration_s=duration_s if done else 0,
    )


def _sms(booked_at: float) -> UsageRecord:
    return UsageRecord(2, ICCID, UsageKind.SMS, booked_at)


def _shown(records: list[UsageRecord], limits: Limits, now: float, tz: ZoneInfo) -> object:
    """What ``sim/<iccid>`` shows of the SIM's usage and rest at ``now``."""
    u = summarise(records, now, tz, rest_s=limits.rest_s, billing_day=limits.counted_billing_day)
    counts = (u.calls_hour, u.calls_day, u.call_seconds_day, u.sms_day)
    month = (u.calls_month, u.call_seconds_month, u.sms_month, u.month_start, u.month_end)
    return counts, month, rest_reason(limits, u, now, tz)


def _refresh(records: list[UsageRecord], limits: Limits, now: float, tz: ZoneInfo) -> float:
    u = summarise(records, now, tz, rest_s=limits.rest_s, billing_day=limits.counted_billing_day)
    return next_refresh(limits, u, now, tz)


def test_the_day_s_counts_are_looked_at_again_at_local_midnight() -> None:
    records = [_sms(NOW - 60), _call(NOW - 7200)]
    limits = Limits(min_call_gap_s=0)
    at = _refresh(records, limits, NOW, KOLKATA)
    _, midnight = local_day_bounds(NOW, KOLKATA)
    assert at == min(midnight, NOW + REFRESH_MAX_S)
    # 20:26:40 UTC is 01:56:40 in Kolkata: the next midnight is a day away, the cap comes first.
    assert at == NOW + REFRESH_MAX_S
    late = midnight - 90  # a minute and a half before Kolkata's midnight
    assert _refresh(records, limits, late, KOLKATA) == midnight
    before, after = (_shown(records, limits, t, KOLKATA) for t in (midnight - 0.001, midnight))
    assert before[0][3] == 1 and after[0][3] == 0  # sms_day starts again


def test_a_call_leaving_the_rolling_hour_and_a_rest_ending_are_foreseen() -> None:
    limits = Limits(calls_per_hour=2, min_call_gap_s=30)
    records = [_call(NOW - 3500), _call(NOW - 100)]
    # Two calls in the hour: resting (calls_per_hour) until the older one leaves it.
    assert _shown(records, limits, NOW, UTC)[2] == "calls_per_hour"
    assert _refresh(records, limits, NOW, UTC) == NOW - 3500 + HOUR_S
    # A call that just ended: the gap is the first thing to change.
    records = [_call(NOW - 40, 30)]
    assert _refresh(records, limits, NOW, UTC) == NOW - 10 + 30


def test_quiet_hours_beginning_and_ending_are_foreseen() -> None:
    windows = (QuietWindow.parse("21:00-08:00"),)
    # 20:26:40 UTC: quiet hours begin at 21:00, then end at 08:00 the next morning.
    starts = quiet_flips_at(windows, NOW, UTC)
    assert starts == local_day_bounds(NOW, UTC)[0] + 21 * 3600
    assert starts is not None
    assert quiet_flips_at(windows, starts, UTC) == local_day_bounds(NOW, UTC)[1] + 8 * 3600
    assert quiet_flips_at((QuietWindow.parse("00:00-00:00"),), NOW, UTC) is None
    assert quiet_flips_at((), NOW, UTC) is None


def _walked(windows: tuple[QuietWindow, ...], now: float, tz: ZoneInfo) -> float | None:
    """The same answer, found by walking minute by minute over two days."""
    local = dt.datetime.fromtimestamp(now, tz)
    minute = local.hour * 60 + local.minute
    quiet = any(w.contains(minute) for w in windows)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    for step in range(1, 2 * 1440 + 1):
        if any(w.contains((minute + step) % 1440) for w in windows) != quiet:
            wall = day + dt.timedelta(minutes=minute + step)
            flips = wall.replace(tzinfo=tz).timestamp()
            if flips <= now:
                flips = wall.replace(tzinfo=tz, fold=1).timestamp()
            return max(flips, now + 1)
    return None


@settings(max_examples=300, deadline=None)
@given(
    windows=st.lists(st.tuples(st.integers(0, 1439), st.integers(0, 1439)), max_size=3),
    now_shift=st.floats(min_value=0, max_value=365 * 86400, allow_nan=False),
    tz=st.sampled_from([UTC, KOLKATA, LONDON]),
)
def test_quiet_flips_are_found_at_window_edges_as_a_minute_walk_finds_them(
    windows: list[tuple[int, int]], now_shift: float, tz: ZoneInfo
) -> None:
    quiet = tuple(QuietWindow(a, b) for a, b in windows)
    now = NOW + now_shift
    assert quiet_flips_at(quiet, now, tz) == (_walked(quiet, now, tz) if quiet else None)


_OFFSETS = st.floats(min_value=0, max_value=2 * 86400, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    calls=st.lists(st.tuples(_OFFSETS, st.integers(0, 600), st.booleans()), max_size=12),
    texts=st.lists(_OFFSETS, max_size=6),
    calls_per_hour=st.integers(0, 4),
    calls_per_day=st.integers(0, 8),
    seconds_per_day=st.integers(0, 1200),
    gap=st.integers(0, 900),
    rest=st.tuples(st.integers(0, 3), st.integers(0, 3600)),
    monthly=st.one_of(st.none(), st.integers(0, 10)),
    quiet=st.lists(
        st.tuples(st.integers(0, 23), st.integers(0, 23)).filter(lambda w: w[0] != w[1]),
        max_size=2,
    ),
    tz=st.sampled_from([UTC, KOLKATA, LONDON, ZoneInfo("Australia/Lord_Howe")]),
    now_shift=st.floats(min_value=0, max_value=365 * 86400, allow_nan=False),
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True, allow_nan=False),
)
def test_nothing_shown_changes_before_the_refresh(
    calls: list[tuple[float, int, bool]],
    texts: list[float],
    calls_per_hour: int,
    calls_per_day: int,
    seconds_per_day: int,
    gap: int,
    rest: tuple[int, int],
    monthly: int | None,
    quiet: list[tuple[int, int]],
    tz: ZoneInfo,
    now_shift: float,
    fraction: float,
) -> None:
    now = NOW + now_shift
    records = [_call(now - ago, d, done=done) for ago, d, done in calls]
    records += [_sms(now - ago) for ago in texts]
    limits = Limits(
        calls_per_hour=calls_per_hour,
        calls_per_day=calls_per_day,
        call_seconds_per_day=seconds_per_day,
        min_call_gap_s=gap,
        rest_after_calls=rest[0],
        rest_s=rest[1],
        calls_per_month=monthly,
        billing_day=5,
        quiet_hours=tuple(QuietWindow(a * 60, b * 60) for a, b in quiet),
    )
    at = _refresh(records, limits, now, tz)
    assert now < at <= now + REFRESH_MAX_S
    later = min(now + (at - now) * fraction, math.nextafter(at, 0))  # strictly before
    assert _shown(records, limits, later, tz) == _shown(records, limits, now, tz)
