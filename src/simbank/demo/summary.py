"""What the demo's day came to: the dialer's answers, the blocks found, and a check that no SIM
went over a quota — the policy's or the carrier's hidden one.

Pure: tallies and records in, text out. The runner feeds it the dialer's answers, the events
read from MQTT, the ledger's usage records and the simulated carrier's own account.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simbank.bank.usage import UsageKind, UsageRecord

HOUR = 3600.0
DAY = 86400.0
#: Carrier block reasons that mean a SIM went over one of the carrier's hidden limits.
CARRIER_LIMIT_REASONS = frozenset(
    {"calls_per_hour", "calls_per_day", "min_call_gap", "sms_per_day"}
)
#: Slack for comparing two timestamps of one clock (float rounding only).
EPSILON_S = 1e-3


@dataclass
class Tally:
    """The dialer's answers, by kind and outcome."""

    #: ``call`` answered ok: by outcome (completed, busy, no_answer, failed).
    calls: Counter[str] = field(default_factory=Counter)
    #: ``call`` refused: by error code (quota_exhausted, do_not_call, circuit_open, …).
    calls_refused: Counter[str] = field(default_factory=Counter)
    sms_sent: int = 0
    sms_refused: Counter[str] = field(default_factory=Counter)
    #: Requests that got no answer in time.
    no_answer: int = 0
    #: When (simulated epoch) the first call was served.
    first_served_at: float | None = None

    def record(self, command: str, answer: Mapping[str, Any], at: float | None = None) -> None:
        """One answer of the gateway to a ``call`` or ``sms/send`` request (answered at
        ``at``, simulated epoch, if known)."""
        ok = answer.get("status") == "ok"
        data = answer.get("data") or {}
        if command == "call":
            if ok:
                outcome = str(data.get("outcome"))
                self.calls[outcome] += 1
                if outcome != "failed" and self.first_served_at is None:
                    self.first_served_at = at
            else:
                self.calls_refused[str(answer.get("code"))] += 1
        elif ok:
            self.sms_sent += 1
        else:
            self.sms_refused[str(answer.get("code"))] += 1

    @property
    def calls_served(self) -> int:
        """Calls that reached the network and got an answer from the far end."""
        return sum(n for outcome, n in self.calls.items() if outcome != "failed")


@dataclass(frozen=True)
class CarrierBlock:
    """A block the simulated carrier imposed during the day (``at``: simulated epoch)."""

    iccid: str
    reason: str
    at: float


@dataclass(frozen=True)
class BlockFound:
    """A ``sim_blocked`` (or ``sim_locked``) verdict the daemon published (``at``: simulated
    epoch when it was seen)."""

    iccid: str
    state: str
    reason: str
    modem: str | None
    at: float
    evidence: int


@dataclass(frozen=True)
class Limits:
    """The limits a SIM's usage is checked against (``None``: no such limit)."""

    calls_per_hour: int | None = None
    calls_per_day: int | None = None
    #: Rolling 24 h (the carrier) instead of the calendar day (the policy).
    rolling_day: bool = False
    call_seconds_per_day: int | None = None
    sms_per_day: int | None = None
    #: The policy's gap runs from a call's end; the carrier's between two call attempts.
    min_call_gap_s: float | None = None
    gap_from_end: bool = True
    calls_per_destination_per_day: int | None = None


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).date().isoformat()


def violations(records: Sequence[UsageRecord], limits: Limits) -> list[str]:
    """Every way one SIM's usage records (all its records, in booking order) broke
    ``limits``; empty when none did. Counted from the records themselves, not from the
    daemon's own usage summary."""
    found: list[str] = []
    calls = sorted((r for r in records if r.kind is UsageKind.CALL), key=lambda r: r.booked_at)
    sms = [r for r in records if r.kind is UsageKind.SMS]
    if limits.calls_per_hour is not None:
        for r in calls:
            n = sum(1 for c in calls if r.booked_at - HOUR < c.booked_at <= r.booked_at)
            if n > limits.calls_per_hour:
                found.append(f"calls_per_hour: {n} > {limits.calls_per_hour}")
                break
    if limits.calls_per_day is not None:
        if limits.rolling_day:
            counts = [
                sum(1 for c in calls if r.booked_at - DAY < c.booked_at <= r.booked_at)
                for r in calls
            ]
        else:
            counts = list(Counter(_day(c.booked_at) for c in calls).values())
        worst = max(counts, default=0)
        if worst > limits.calls_per_day:
            found.append(f"calls_per_day: {worst} > {limits.calls_per_day}")
    if limits.call_seconds_per_day is not None:
        seconds: Counter[str] = Counter()
        for c in calls:
            seconds[_day(c.booked_at)] += c.charged_s
        worst = max(seconds.values(), default=0)
        if worst > limits.call_seconds_per_day:
            found.append(f"call_seconds_per_day: {worst} > {limits.call_seconds_per_day}")
    if limits.sms_per_day is not None:
        if limits.rolling_day:
            counts = [
                sum(1 for s in sms if r.booked_at - DAY < s.booked_at <= r.booked_at) for r in sms
            ]
        else:
            counts = list(Counter(_day(s.booked_at) for s in sms).values())
        worst = max(counts, default=0)
        if worst > limits.sms_per_day:
            found.append(f"sms_per_day: {worst} > {limits.sms_per_day}")
    if limits.min_call_gap_s is not None:
        for before, after in itertools.pairwise(calls):
            since = before.ends_at if limits.gap_from_end else before.booked_at
            gap = after.booked_at - since
            if gap + EPSILON_S < limits.min_call_gap_s:
                found.append(f"min_call_gap_s: {gap:.0f} s < {limits.min_call_gap_s:.0f} s")
                break
    if limits.calls_per_destination_per_day is not None:
        per = Counter((c.destination, _day(c.booked_at)) for c in calls if c.destination)
        worst = max(per.values(), default=0)
        if worst > limits.calls_per_destination_per_day:
            found.append(
                f"calls_per_destination_per_day: {worst} > {limits.calls_per_destination_per_day}"
            )
    return found


@dataclass(frozen=True)
class QuotaCheck:
    """The quota check of the whole bank: every SIM against the policy and the carrier."""

    sims: int
    problems: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.problems)


def check_quotas(
    records: Mapping[str, Sequence[UsageRecord]],
    policy: Limits,
    carrier: Limits,
    carrier_blocks: Iterable[CarrierBlock] = (),
) -> QuotaCheck:
    """Each SIM's records against ``policy`` and ``carrier`` (the hidden limits), and every
    block the carrier imposed for going over a limit (its own count, which sees every
    attempt that reached the network)."""
    problems: list[str] = []
    for iccid, rows in sorted(records.items()):
        problems += [f"{iccid} policy {p}" for p in violations(rows, policy)]
        problems += [f"{iccid} carrier {p}" for p in violations(rows, carrier)]
    problems += [
        f"{b.iccid} blocked by the carrier for {b.reason}"
        for b in carrier_blocks
        if b.reason in CARRIER_LIMIT_REASONS
    ]
    return QuotaCheck(len(records), tuple(problems))


def clock_text(t: float) -> str:
    """``09:14`` (simulated time of day, UTC as the demo gateway keeps it)."""
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M")


def duration_text(seconds: float) -> str:
    """``42 s``, ``3 min 20 s``, ``2 h 05 min``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < HOUR:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // HOUR)} h {int(seconds % HOUR // 60):02d} min"


def find_times(
    found: Sequence[BlockFound], carrier_blocks: Sequence[CarrierBlock], started: float
) -> list[tuple[BlockFound, str]]:
    """Each block found with how long finding it took: from the carrier's block when the
    carrier blocked the SIM during the day, else (a SIM that was blocked before the day
    began, found when first put in service) from the start."""
    blocked_at = {b.iccid: b.at for b in carrier_blocks}
    out: list[tuple[BlockFound, str]] = []
    for verdict in found:
        if verdict.iccid in blocked_at:
            took = verdict.at - blocked_at[verdict.iccid]
            how = (
                f"the carrier blocked it at {clock_text(blocked_at[verdict.iccid])}; "
                f"found {duration_text(took)} later"
            )
        else:
            how = (
                f"out of service before the day began; found at {clock_text(verdict.at)}, "
                f"{duration_text(verdict.at - started)} after the start"
            )
        out.append((verdict, how))
    return out


@dataclass(frozen=True)
class DayReport:
    """Everything the summary says."""

    started: float
    ended: float
    scale: float
    tally: Tally
    switches: Counter[str]
    found: tuple[BlockFound, ...]
    carrier_blocks: tuple[CarrierBlock, ...]
    circuit: tuple[str, ...]
    sms_received: int
    quotas: QuotaCheck
    #: The first of each thing that matters (label, simulated epoch), for the timeline.
    firsts: tuple[tuple[str, float | None], ...] = ()


def summary_text(report: DayReport) -> str:
    """The summary printed when the demo ends."""
    t = report.tally
    outcomes = ", ".join(
        f"{n} {o.replace('_', ' ')}" for o, n in sorted(t.calls.items()) if o != "failed"
    )
    refused = ", ".join(f"{code} {n}" for code, n in t.calls_refused.most_common()) or "none"
    sms_refused = ", ".join(f"{code} {n}" for code, n in t.sms_refused.most_common()) or "none"
    span = report.ended - report.started
    lines = [
        "",
        "=== simbank demo: summary ===",
        f"simulated day: {clock_text(report.started)} -> {clock_text(report.ended)} "
        f"({duration_text(span)} at x{report.scale:g}, {duration_text(span / report.scale)} "
        "of wall time)",
        f"calls served: {t.calls_served} ({outcomes or 'none'})",
        f"calls failed: {t.calls.get('failed', 0)}",
        f"calls refused: {sum(t.calls_refused.values())} ({refused})",
        f"sms sent: {t.sms_sent}; refused: {sum(t.sms_refused.values())} ({sms_refused}); "
        f"received: {report.sms_received}",
        f"sim switches: {sum(report.switches.values())} "
        f"({', '.join(f'{why} {n}' for why, n in sorted(report.switches.items())) or 'none'})",
    ]
    blocked = [f for f in report.found if f.state == "blocked"]
    lines.append(f"blocks found: {len(blocked)}")
    for verdict, how in find_times(blocked, report.carrier_blocks, report.started):
        lines.append(
            f"  {verdict.iccid} ({verdict.modem or '-'}) {verdict.reason}, "
            f"{verdict.evidence} evidence item(s): {how}"
        )
    locked = [f for f in report.found if f.state == "locked"]
    lines.append(f"locked SIMs quarantined: {len(locked)}")
    lines.extend(f"  {v.iccid} ({v.modem or '-'}) {v.reason}" for v in locked)
    missed = sorted({b.iccid for b in report.carrier_blocks} - {f.iccid for f in blocked})
    if missed:
        lines.append(f"carrier blocks not found (yet): {', '.join(missed)}")
    lines.append("circuit breaker: " + ("; ".join(report.circuit) or "stayed closed"))
    if report.firsts:
        lines.append("timeline (wall seconds from the start):")
        for label, at in report.firsts:
            when = (
                "never"
                if at is None
                else f"{clock_text(at)} simulated, {(at - report.started) / report.scale:.1f} s"
            )
            lines.append(f"  first {label}: {when}")
    q = report.quotas
    lines.append(
        f"quota violations: {q.count} (every SIM's ledger usage checked against the policy "
        f"and the carrier's hidden limits: {q.sims} SIMs)"
    )
    lines.extend(f"  {p}" for p in q.problems)
    return "\n".join(lines)
