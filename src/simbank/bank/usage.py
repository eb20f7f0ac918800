"""Usage records and their summary: what a SIM has used in the windows the policy looks at.

Windows (DESIGN §4): a rolling hour, the calendar day in the gateway's time zone and, when
a policy limits it, the billing month: a cycle from local midnight of a billing day (1..28)
to the same day of the next month. A booking with no outcome (the daemon died before completing it) counts in full: a call is
charged its reserved seconds and is taken to have lasted until ``booked_at + reserved_s``.
Records booked "in the future" (the clock went backwards) always count, so a clock jump
back can never reopen a window that is already full.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

HOUR_S = 3600.0


class UsageKind(StrEnum):
    """What a booking is for."""

    CALL = "call"
    SMS = "sms"
    USSD = "ussd"


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One row of the ledger's usage table (a booking and, once known, its outcome)."""

    id: int
    iccid: str
    kind: UsageKind
    booked_at: float
    reserved_s: int = 0
    completed_at: float | None = None
    outcome: str | None = None
    duration_s: int = 0
    destination: str | None = None
    modem: str | None = None
    transaction: str | None = None

    @property
    def completed(self) -> bool:
        """Whether the outcome is known."""
        return self.completed_at is not None

    @property
    def charged_s(self) -> int:
        """Call seconds this record costs: the duration if known, else the whole reservation."""
        return self.duration_s if self.completed else self.reserved_s

    @property
    def ends_at(self) -> float:
        """When the call was (or, not completed, may still be) over."""
        if self.completed_at is None:
            return self.booked_at + self.reserved_s
        return max(self.booked_at, self.completed_at)


@dataclass(frozen=True, slots=True)
class Usage:
    """A SIM's usage as the policy sees it at ``now``."""

    now: float
    day_start: float
    day_end: float
    hour_calls: tuple[float, ...] = ()
    calls_day: int = 0
    call_seconds_day: int = 0
    sms_day: int = 0
    last_call_end: float | None = None
    calls_since_rest: int = 0
    #: The billing month, counted only when the summary was asked for it (else all None).
    month_start: float | None = None
    month_end: float | None = None
    calls_month: int | None = None
    call_seconds_month: int | None = None
    sms_month: int | None = None
    #: The SIM's last prepaid-balance check found it under its policy's floor (set by the
    #: caller from that check; the ledger's usage rows do not know it).
    balance_low: bool = False

    @property
    def calls_hour(self) -> int:
        """Calls booked in the rolling hour (and any booked after ``now``)."""
        return len(self.hour_calls)


def local_day_bounds(now: float, tz: ZoneInfo) -> tuple[float, float]:
    """Epoch seconds of the start and the end of ``now``'s calendar day in ``tz``."""
    today = dt.datetime.fromtimestamp(math.floor(now), tz).date()
    start = dt.datetime.combine(today, dt.time(), tz).timestamp()
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tz).timestamp()
    return start, end


def billing_period_bounds(now: float, tz: ZoneInfo, billing_day: int) -> tuple[float, float]:
    """Epoch seconds of the start and the end of the billing cycle holding ``now``.

    A cycle starts at local midnight (in ``tz``) of day ``billing_day`` (1..28, so every month
    has it) and ends where the next one starts. Midnight is taken like the day's bounds: its
    first occurrence when clocks go back, the moment of the change when they skip it.
    """
    if not 1 <= billing_day <= 28:
        raise ValueError(f"billing_day {billing_day} is not 1..28")
    today = dt.datetime.fromtimestamp(math.floor(now), tz).date()
    year, month = today.year, today.month
    if today.day < billing_day:
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    first = dt.date(year, month, billing_day)
    following = dt.date(year + month // 12, month % 12 + 1, billing_day)
    start = dt.datetime.combine(first, dt.time(), tz).timestamp()
    end = dt.datetime.combine(following, dt.time(), tz).timestamp()
    return start, end


def history_start(
    now: float,
    tz: ZoneInfo,
    *,
    rest_after_calls: int = 0,
    rest_s: float = 0,
    max_call_s: int = 0,
    billing_day: int | None = None,
) -> float:
    """The earliest ``booked_at`` a summary at ``now`` can depend on (fetch rows since then).

    A run of calls before a rest spans at most ``rest_after_calls`` times (call + gap); a
    summary counting the billing month (``billing_day`` given) reaches back to its start.
    """
    day_start, _ = local_day_bounds(now, tz)
    start = min(day_start, now - HOUR_S)
    if billing_day is not None:
        start = min(start, billing_period_bounds(now, tz, billing_day)[0])
    if rest_after_calls > 0:
        start = min(start, now - rest_after_calls * (rest_s + max_call_s) - 1)
    return start


def summarise(
    records: Iterable[UsageRecord],
    now: float,
    tz: ZoneInfo,
    *,
    rest_s: float = 0,
    billing_day: int | None = None,
) -> Usage:
    """Summarise one SIM's records at ``now``.

    ``calls_since_rest`` counts the trailing run of calls in which each call began less than
    ``rest_s`` after the previous one ended; it is 0 once ``rest_s`` has passed since the last.
    With ``billing_day`` the billing month is counted too (the records must reach back to
    its start: :func:`history_start` with the same ``billing_day``).
    """
    day_start, day_end = local_day_bounds(now, tz)
    month: tuple[float, float] | None = None
    if billing_day is not None:
        month = billing_period_bounds(now, tz, billing_day)
    month_start = float("inf") if month is None else month[0]
    hour_calls: list[float] = []
    calls: list[UsageRecord] = []
    calls_day = seconds_day = sms_day = 0
    calls_month = seconds_month = sms_month = 0
    for record in records:
        if record.kind is UsageKind.CALL:
            calls.append(record)
            if record.booked_at > now - HOUR_S:
                bisect.insort(hour_calls, record.booked_at)
            if record.booked_at >= day_start:
                calls_day += 1
                seconds_day += record.charged_s
            if record.booked_at >= month_start:
                calls_month += 1
                seconds_month += record.charged_s
        elif record.kind is UsageKind.SMS:
            if record.booked_at >= day_start:
                sms_day += 1
            if record.booked_at >= month_start:
                sms_month += 1
    calls.sort(key=lambda r: (r.booked_at, r.id))
    last_end = max((r.ends_at for r in calls), default=None)
    run = 0
    if last_end is not None and now - last_end < rest_s:
        run = 1
        for earlier, later in zip(reversed(calls[:-1]), reversed(calls[1:]), strict=True):
            if later.booked_at - earlier.ends_at >= rest_s:
                break
            run += 1
    return Usage(
        now=now,
        day_start=day_start,
        day_end=day_end,
        hour_calls=tuple(hour_calls),
        calls_day=calls_day,
        call_seconds_day=seconds_day,
        sms_day=sms_day,
        last_call_end=last_end,
        calls_since_rest=run,
        month_start=None if month is None else month[0],
        month_end=None if month is None else month[1],
        calls_month=None if month is None else calls_month,
        call_seconds_month=None if month is None else seconds_month,
        sms_month=None if month is None else sms_month,
    )
