"""Quota policy: pure functions of (limits, usage summary, clock) that allow or refuse.

Every refusal names its reason (an MQTT error code, DESIGN §5), the limit concerned and,
when it can know, the epoch second at which the refusal lifts. Checks run from the widest
scope to the narrowest: the gateway (circuit breaker, do-not-call), the time of day (quiet
hours), the SIM's own quota, then the destination's gateway-wide daily cap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from simbank.bank.usage import HOUR_S, Usage, UsageKind
from simbank.config.models import PolicyConfig
from simbank.errors import Refused

RefusalCode = Literal[
    "quota_exhausted", "quiet_hours", "do_not_call", "destination_cap", "circuit_open"
]
DEFAULT_POLICY = "default"
_DAY_MIN = 24 * 60


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an action may not happen now, and (if known) when it may."""

    code: RefusalCode
    message: str
    limit: str | None = None
    frees_at: float | None = None
    #: An SMS quota refusal: the segments the text needs and the ones the SIM has left.
    segments_needed: int | None = None
    segments_remaining: int | None = None

    def as_error(self) -> Refused:
        """The refusal as the error the daemon turns into an MQTT error response."""
        return Refused(
            self.code,
            self.message,
            limit=self.limit,
            frees_at=self.frees_at,
            segments_needed=self.segments_needed,
            segments_remaining=self.segments_remaining,
        )


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """A local-time window [start, end) in minutes after midnight; wraps if end <= start."""

    start_min: int
    end_min: int

    @classmethod
    def parse(cls, text: str) -> QuietWindow:
        """Parse 'HH:MM-HH:MM' (as validated by the config)."""
        start, end = text.split("-")
        return cls(_minutes(start), _minutes(end))

    def contains(self, minute: int) -> bool:
        """Whether a minute of the day falls inside (start == end means the whole day)."""
        if self.start_min < self.end_min:
            return self.start_min <= minute < self.end_min
        return minute >= self.start_min or minute < self.end_min


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True, slots=True)
class Limits:
    """A policy's numbers, ready for the checks."""

    calls_per_hour: int = 20
    calls_per_day: int = 100
    call_seconds_per_day: int = 7200
    sms_per_day: int = 50
    min_call_gap_s: int = 30
    quiet_hours: tuple[QuietWindow, ...] = ()
    calls_per_destination_per_day: int = 2
    rest_after_calls: int = 0
    rest_s: int = 0
    billing_day: int = 1
    calls_per_month: int | None = None
    call_seconds_per_month: int | None = None
    sms_per_month: int | None = None
    #: A SIM whose last balance check read less than this rests (``balance_low``).
    balance_floor: Decimal | None = None

    @property
    def counted_billing_day(self) -> int | None:
        """The billing day whose month the checks need counted; None when no monthly limit
        is set (the summary then skips the month and its longer history)."""
        monthly = (self.calls_per_month, self.call_seconds_per_month, self.sms_per_month)
        return None if all(m is None for m in monthly) else self.billing_day

    @classmethod
    def from_config(cls, config: PolicyConfig) -> Limits:
        """The limits of one configured policy."""
        return cls(
            calls_per_hour=config.calls_per_hour,
            calls_per_day=config.calls_per_day,
            call_seconds_per_day=config.call_seconds_per_day,
            sms_per_day=config.sms_per_day,
            min_call_gap_s=config.min_call_gap_s,
            quiet_hours=tuple(QuietWindow.parse(w) for w in config.quiet_hours),
            calls_per_destination_per_day=config.calls_per_destination_per_day,
            rest_after_calls=config.rest_after_calls,
            rest_s=config.rest_s,
            billing_day=config.billing_day,
            calls_per_month=config.calls_per_month,
            call_seconds_per_month=config.call_seconds_per_month,
            sms_per_month=config.sms_per_month,
            balance_floor=None
            if config.balance_floor is None
            else Decimal(str(config.balance_floor)),
        )


def quiet_until(windows: tuple[QuietWindow, ...], now: float, tz: ZoneInfo) -> float | None:
    """If ``now`` is in quiet hours, when they end (epoch s; ``inf`` if never); else None."""
    local = dt.datetime.fromtimestamp(now, tz)
    minute = local.hour * 60 + local.minute
    if not any(w.contains(minute) for w in windows):
        return None
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    for step in range(1, 2 * _DAY_MIN + 1):  # walk to the first quiet-free minute
        later = minute + step
        if not any(w.contains(later % _DAY_MIN) for w in windows):
            wall = day + dt.timedelta(minutes=later)
            ends = wall.replace(tzinfo=tz).timestamp()
            if ends <= now:  # the repeated hour when clocks go back: its second pass
                ends = wall.replace(tzinfo=tz, fold=1).timestamp()
            return max(ends, now + 1)
    return float("inf")


def quiet_flips_at(windows: tuple[QuietWindow, ...], now: float, tz: ZoneInfo) -> float | None:
    """When quiet hours next begin (``now`` outside them) or end (inside): the first local
    minute whose quietness differs from now's, in epoch seconds; None when it never changes
    (no windows, or ones that cover the whole day). Only a window's start or end can change
    it, so only those minutes are looked at."""
    if not windows:
        return None
    local = dt.datetime.fromtimestamp(now, tz)
    minute = local.hour * 60 + local.minute
    quiet = any(w.contains(minute) for w in windows)
    bounds = {b for w in windows for b in (w.start_min, w.end_min)}
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    for step in sorted((b - minute) % _DAY_MIN or _DAY_MIN for b in bounds):
        later = minute + step
        if any(w.contains(later % _DAY_MIN) for w in windows) != quiet:
            wall = day + dt.timedelta(minutes=later)
            flips = wall.replace(tzinfo=tz).timestamp()
            if flips <= now:  # the repeated hour when clocks go back: its second pass
                flips = wall.replace(tzinfo=tz, fold=1).timestamp()
            return max(flips, now + 1)
    return None


def check_quota(limits: Limits, usage: Usage, now: float, *, max_duration_s: int) -> Refusal | None:
    """The SIM's *own* call quota: its prepaid balance under the floor, the billing month's
    calls and call seconds, its call gap, its rest, the rolling hour, the day's calls and call
    seconds. None if a call of
    ``max_duration_s`` fits. Gateway-wide stops (quiet hours, circuit, do-not-call) and the
    per-destination cap are :func:`check_call`'s.

    The month comes first: while it is used up nothing shorter-lived matters, and its refusal
    must say when the SIM may really call again (the next cycle)."""
    if usage.balance_low:
        return _balance_low()
    refusal = _month_calls(limits, usage, max_duration_s)
    if refusal is not None:
        return refusal
    if usage.last_call_end is not None and now < usage.last_call_end + limits.min_call_gap_s:
        gap_end = usage.last_call_end + limits.min_call_gap_s
        return _quota(
            "min_call_gap_s", gap_end, f"{limits.min_call_gap_s} s must pass between calls"
        )
    if limits.rest_after_calls and usage.calls_since_rest >= limits.rest_after_calls:
        assert usage.last_call_end is not None
        rest_end = usage.last_call_end + limits.rest_s
        return _quota(
            "rest_after_calls",
            rest_end,
            f"the SIM rests {limits.rest_s} s after {limits.rest_after_calls} calls",
        )
    if usage.calls_hour >= limits.calls_per_hour:
        frees = None
        if limits.calls_per_hour > 0:
            frees = usage.hour_calls[usage.calls_hour - limits.calls_per_hour] + HOUR_S
        return _quota("calls_per_hour", frees, f"{limits.calls_per_hour} calls per rolling hour")
    if usage.calls_day >= limits.calls_per_day:
        frees = _next_day(limits.calls_per_day, usage)
        return _quota("calls_per_day", frees, f"{limits.calls_per_day} calls per day")
    if usage.call_seconds_day + max_duration_s > limits.call_seconds_per_day:
        fits = max_duration_s <= limits.call_seconds_per_day
        text = f"{usage.call_seconds_day} of {limits.call_seconds_per_day} call seconds used today"
        return _quota("call_seconds_per_day", usage.day_end if fits else None, text)
    return None


def check_call(
    limits: Limits,
    usage: Usage,
    now: float,
    tz: ZoneInfo,
    *,
    max_duration_s: int,
    destination_calls_today: int,
    on_dnc: bool,
    circuit_open: bool,
) -> Refusal | None:
    """May this SIM place a call of up to ``max_duration_s`` now? None if it may."""
    refusal = _gateway(limits, now, tz, on_dnc=on_dnc, circuit_open=circuit_open)
    if refusal is None:
        refusal = check_quota(limits, usage, now, max_duration_s=max_duration_s)
    if refusal is not None:
        return refusal
    if destination_calls_today >= limits.calls_per_destination_per_day:
        return Refusal(
            "destination_cap",
            f"this destination had {destination_calls_today} call(s) today, the cap is "
            f"{limits.calls_per_destination_per_day}",
            limit="calls_per_destination_per_day",
            frees_at=usage.day_end if limits.calls_per_destination_per_day > 0 else None,
        )
    return None


def check_sms(
    limits: Limits,
    usage: Usage,
    now: float,
    tz: ZoneInfo,
    *,
    on_dnc: bool,
    circuit_open: bool,
    segments: int = 1,
) -> Refusal | None:
    """May this SIM send a text of ``segments`` SMS now? None if it may.

    Every segment is one SMS against the quota, so a text fits only whole: a SIM with fewer
    segments left than the text needs is refused, and the refusal says how many it needed and
    how many remain (when the text alone exceeds the limit, it never frees: ``frees_at`` None).
    """
    refusal = _gateway(limits, now, tz, on_dnc=on_dnc, circuit_open=circuit_open)
    if refusal is not None:
        return refusal
    if usage.balance_low:
        return _balance_low()
    month = limits.sms_per_month
    if month is not None and _used(usage.sms_month) + segments > month:
        frees = _next_month(month, usage) if segments <= month else None
        rule = f"{month} SMS per billing month"
        return _sms_quota("sms_per_month", frees, rule, segments, sms_remaining(limits, usage))
    if usage.sms_day + segments > limits.sms_per_day:
        frees = _next_day(limits.sms_per_day, usage) if segments <= limits.sms_per_day else None
        rule = f"{limits.sms_per_day} SMS per day"
        return _sms_quota("sms_per_day", frees, rule, segments, sms_remaining(limits, usage))
    return None


def sms_remaining(limits: Limits, usage: Usage) -> int:
    """How many more SMS (segments) the SIM may send: the tightest of its day and its billing
    month (a month the summary did not count leaves none); none while the prepaid balance is
    under the floor; never below zero."""
    if usage.balance_low:
        return 0
    left = limits.sms_per_day - usage.sms_day
    if limits.sms_per_month is not None:
        left = min(left, limits.sms_per_month - _used(usage.sms_month))
    return max(0, left)


def headroom(limits: Limits, usage: Usage, kind: UsageKind | None = None) -> float:
    """How much quota is left, 0..1: the smallest remaining fraction among the limits that
    matter for ``kind`` (calls, SMS, or both when None). A zero limit leaves no headroom."""
    call_pairs: tuple[tuple[int, int], ...] = (
        (usage.calls_hour, limits.calls_per_hour),
        (usage.calls_day, limits.calls_per_day),
        (usage.call_seconds_day, limits.call_seconds_per_day),
    )
    sms_pairs: tuple[tuple[int, int], ...] = ((usage.sms_day, limits.sms_per_day),)
    month_calls = (
        (usage.calls_month, limits.calls_per_month),
        (usage.call_seconds_month, limits.call_seconds_per_month),
    )
    call_pairs += tuple((_used(u), m) for u, m in month_calls if m is not None)
    if limits.sms_per_month is not None:
        sms_pairs += ((_used(usage.sms_month), limits.sms_per_month),)
    pairs = call_pairs if kind is UsageKind.CALL else sms_pairs if kind is UsageKind.SMS else ()
    if not pairs:
        pairs = call_pairs + sms_pairs
    return min(max(0.0, 1.0 - used / limit) if limit > 0 else 0.0 for used, limit in pairs)


def select_policy(policies: Mapping[str, PolicyConfig], iccid: str, imsi: str | None) -> str:
    """The policy for a SIM: the longest ICCID or IMSI prefix that matches wins (ties: the
    ICCID match, then the policy name in order); no match → 'default'."""
    best: tuple[int, int, str] | None = None
    for name in sorted(policies):
        config = policies[name]
        candidates = [(len(p), 1) for p in config.iccid_prefixes if p and iccid.startswith(p)]
        if imsi is not None:
            candidates += [(len(p), 0) for p in config.imsi_prefixes if p and imsi.startswith(p)]
        for length, by_iccid in candidates:
            if best is None or (length, by_iccid) > best[:2]:
                best = (length, by_iccid, name)
    return DEFAULT_POLICY if best is None else best[2]


def _gateway(
    limits: Limits, now: float, tz: ZoneInfo, *, on_dnc: bool, circuit_open: bool
) -> Refusal | None:
    if circuit_open:
        return Refusal("circuit_open", "outbound traffic is paused until an operator resumes it")
    if on_dnc:
        return Refusal("do_not_call", "the number is on the do-not-call list")
    until = quiet_until(limits.quiet_hours, now, tz)
    if until is not None:
        frees = until if until != float("inf") else None
        return Refusal("quiet_hours", "no outbound traffic in quiet hours", "quiet_hours", frees)
    return None


def _month_calls(limits: Limits, usage: Usage, max_duration_s: int) -> Refusal | None:
    if limits.calls_per_month is not None and _used(usage.calls_month) >= limits.calls_per_month:
        frees = _next_month(limits.calls_per_month, usage)
        return _quota("calls_per_month", frees, f"{limits.calls_per_month} calls per billing month")
    cap = limits.call_seconds_per_month
    if cap is not None and _used(usage.call_seconds_month) + max_duration_s > cap:
        fits = max_duration_s <= cap
        text = f"{usage.call_seconds_month} of {cap} call seconds used this billing month"
        return _quota("call_seconds_per_month", usage.month_end if fits else None, text)
    return None


def _used(month_count: int | None) -> int:
    """A month's count; a summary that did not count the month cannot vouch for any room."""
    return month_count if month_count is not None else 1 << 62


def _next_day(limit: int, usage: Usage) -> float | None:
    return usage.day_end if limit > 0 else None


def _next_month(limit: int, usage: Usage) -> float | None:
    return usage.month_end if limit > 0 else None


def _quota(limit: str, frees_at: float | None, rule: str) -> Refusal:
    when = "" if frees_at is None else f" (frees at {_iso(frees_at)})"
    return Refusal(
        "quota_exhausted", f"quota {limit}: {rule}{when}", limit=limit, frees_at=frees_at
    )


def _balance_low() -> Refusal:
    """The SIM's prepaid balance is under its floor: it rests until a check shows it above
    (when is not known, so no ``frees_at``)."""
    return _quota("balance_low", None, "the prepaid balance is under the policy's floor")


def _sms_quota(
    limit: str, frees_at: float | None, rule: str, needed: int, remaining: int
) -> Refusal:
    refusal = _quota(limit, frees_at, f"{rule}; {needed} segment(s) needed, {remaining} left")
    return replace(refusal, segments_needed=needed, segments_remaining=remaining)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds")
