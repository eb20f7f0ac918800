"""Quota utilisation: a virtual-clock week of the REAL policy and rotation planner.

    .venv/bin/python bench/bench_utilisation.py [--days N] [--modems N] [--seed N] [--quick]

32 modems x 4 SIM slots, each modem offered far more calls than its SIMs may make (a request
every ``--interarrival`` seconds on average, Poisson; each call lasts 30-180 s, uniform; a SIM
switch takes 20 s during which the modem does nothing). Three strategies run on the same
demand model in the same run:

* ``planner``: ``simbank.bank.rotation.plan`` (stay while allowed, else the most headroom);
* ``every_5``: round-robin to the next slot after 5 calls, regardless of headroom;
* ``when_refused``: stay until the active SIM is refused, then the next slot in order.

Every decision is the real ``check_call`` on a real ``summarise`` of in-memory
``UsageRecord`` s (no I/O, no asyncio, no ledger). Like the daemon (policy -> rotation ->
switch -> book -> act), a call is booked when it starts, after any switch. Quota violations
are counted afterwards by an independent check of every window. Served calls are compared
with the bound the quotas allow, printed with its derivation.

The clock steps event by event. A modem busy in a call or a switch drops the requests that
arrive meanwhile, so the next request is drawn after it is free (Poisson arrivals are
memoryless). After a refusal, requests that cannot be served are skipped the same way: none
before the earliest ``frees_at`` of the refusals concerned, and before that only requests
short enough for the call seconds still left (a thinned Poisson stream). The skip only uses
what the real policy returned; it can only lose calls, never add one.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from simbank.bank.policy import Limits, Refusal, check_call
from simbank.bank.rotation import Action, SlotView, plan
from simbank.bank.usage import UsageKind, UsageRecord, history_start, local_day_bounds, summarise

TZ = ZoneInfo("Asia/Shanghai")
START = dt.datetime(2026, 6, 1, tzinfo=TZ).timestamp()  # local midnight, no DST in the week
DAY_S = 86400.0
HOUR_S = 3600.0
SLOTS = 4
SWITCH_S = 20.0
WAIT_FOR_ACTIVE_S = 30.0  # the daemon's default [rotation] wait_for_active_s
MIN_CALL_S = 30
MAX_CALL_S = 180
EVERY_N = 5
TARGET = 0.95
LIMITS = Limits(
    calls_per_hour=20,
    calls_per_day=100,
    call_seconds_per_day=7200,
    min_call_gap_s=30,
    calls_per_destination_per_day=1_000_000,
    quiet_hours=(),
)


@dataclass(slots=True)
class Sim:
    """One SIM's records: all of them (for the audit) and where the policy's window starts."""

    iccid: str
    records: list[UsageRecord] = field(default_factory=list)
    first: int = 0  # records before this index are older than any window the policy reads

    def view(self, slot: int, active: bool, now: float) -> SlotView:
        since = history_start(now, TZ)
        while self.first < len(self.records) and self.records[self.first].booked_at < since:
            self.first += 1
        usage = summarise(self.records[self.first :], now, TZ)
        return SlotView(slot, self.iccid, "active" if active else "available", usage, LIMITS)


@dataclass(slots=True)
class Modem:
    name: str
    sims: list[Sim]
    active: int = 0
    active_since: float = START
    free_at: float = START  # end of the current call or switch
    calls_on_active: int = 0
    switches: int = 0
    decisions: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class Skip:
    """After a refusal: no request before ``until`` can be served unless it lasts at most
    ``max_d`` seconds (``max_d`` below MIN_CALL_S: none can)."""

    until: float
    max_d: int


@dataclass(frozen=True, slots=True)
class Decision:
    slot: int | None  # None: refused
    skip: Skip | None = None
    start_at: float = 0.0  # a "wait for the active SIM" plan: the call starts then


Strategy = Callable[[Modem, float, int], Decision]
_next_id = iter(range(1, 1 << 62))


def refusal_skip(refusals: list[tuple[Refusal, SlotView]], now: float) -> Skip:
    """The earliest time any of these refused slots may act, and until then, the longest
    call that one refused only for its call seconds could still take."""
    until = min((r.frees_at for r, _ in refusals if r.frees_at is not None), default=now + DAY_S)
    max_d = 0
    for refusal, view in refusals:
        if refusal.limit == "call_seconds_per_day":
            assert view.usage is not None
            max_d = max(max_d, LIMITS.call_seconds_per_day - view.usage.call_seconds_day)
    return Skip(max(until, now), max_d)


def check(view: SlotView, now: float, duration: int) -> Refusal | None:
    assert view.usage is not None
    return check_call(
        LIMITS,
        view.usage,
        now,
        TZ,
        max_duration_s=duration,
        destination_calls_today=0,
        on_dnc=False,
        circuit_open=False,
    )


def planner(modem: Modem, now: float, duration: int) -> Decision:
    """The real rotation planner; a "wait" plan is planned again when the SIM frees up,
    as the daemon's handler does."""
    at = now
    for _ in range(4):
        views = [s.view(i, i == modem.active, at) for i, s in enumerate(modem.sims)]
        decision = plan(
            views,
            modem.active,
            modem.active_since,
            at,
            tz=TZ,
            action=Action(UsageKind.CALL, max_duration_s=duration),
            min_dwell_s=300,
            wait_limit_s=WAIT_FOR_ACTIVE_S,
        )
        if decision.decision != "wait" or decision.wait_until is None:
            break
        at = decision.wait_until
    if decision.decision in {"none", "wait"}:
        refused = [(decision.refusals[v.slot], v) for v in views if v.slot in decision.refusals]
        return Decision(None, refusal_skip(refused, at))
    return Decision(decision.slot, start_at=at)


def every_n(modem: Modem, now: float, duration: int) -> Decision:
    """Next slot after N calls, whatever its headroom; a refused request is dropped."""
    slot = modem.active
    if modem.calls_on_active >= EVERY_N:
        slot = (slot + 1) % SLOTS
    view = modem.sims[slot].view(slot, slot == modem.active, now)
    refusal = check(view, now, duration)
    if refusal is None:
        return Decision(slot)
    if slot != modem.active:  # it rotates anyway; the request is lost
        modem_switch(modem, slot, now)
        return Decision(None)
    return Decision(None, refusal_skip([(refusal, view)], now))


def when_refused(modem: Modem, now: float, duration: int) -> Decision:
    """Stay until refused, then try the next slot in order (after switching to it)."""
    active = modem.active
    view = modem.sims[active].view(active, True, now)
    if check(view, now, duration) is None:
        return Decision(active)
    slot = (active + 1) % SLOTS
    if check(modem.sims[slot].view(slot, False, now), now, duration) is None:
        return Decision(slot)
    modem_switch(modem, slot, now)
    # nothing for this request; skip while no slot at all could serve one
    views = [s.view(i, i == slot, now) for i, s in enumerate(modem.sims)]
    refused = [(r, v) for v in views if (r := check(v, now, MIN_CALL_S)) is not None]
    if len(refused) < SLOTS:
        return Decision(None)
    return Decision(None, refusal_skip(refused, now))


STRATEGIES: dict[str, Strategy] = {
    "planner": planner,
    "every_5": every_n,
    "when_refused": when_refused,
}


def modem_switch(modem: Modem, slot: int, now: float) -> None:
    modem.active = slot
    modem.active_since = now
    modem.calls_on_active = 0
    modem.switches += 1
    modem.free_at = now + SWITCH_S


def next_request(
    rng: random.Random, after: float, rate: float, max_d: int = MAX_CALL_S
) -> tuple[float, int]:
    """The first Poisson arrival after ``after`` whose duration is at most ``max_d``."""
    max_d = min(max_d, MAX_CALL_S)
    share = (max_d - MIN_CALL_S + 1) / (MAX_CALL_S - MIN_CALL_S + 1)
    return after + rng.expovariate(rate * share), rng.randint(MIN_CALL_S, max_d)


def run_modem(
    modem: Modem, strategy: Strategy, end: float, rng: random.Random, rate: float
) -> None:
    now, duration = next_request(rng, START, rate)
    while now < end:
        modem.decisions += 1
        decision = strategy(modem, now, duration)
        if decision.slot is not None:
            if decision.slot != modem.active:
                modem_switch(modem, decision.slot, now)
            start = max(now, modem.free_at, decision.start_at)
            sim = modem.sims[modem.active]
            sim.records.append(
                UsageRecord(
                    next(_next_id), sim.iccid, UsageKind.CALL, start, reserved_s=duration,
                    completed_at=start + duration, outcome="answered", duration_s=duration,
                    modem=modem.name,
                )
            )  # fmt: skip
            modem.calls_on_active += 1
            modem.free_at = start + duration
        else:
            modem.dropped += 1
        after = max(now, modem.free_at)
        skip = decision.skip
        if skip is None or skip.until <= after:
            now, duration = next_request(rng, after, rate)
            continue
        candidate: tuple[float, int] | None = None
        if skip.max_d >= MIN_CALL_S:  # a short enough request before the refusals lift?
            candidate = next_request(rng, after, rate, skip.max_d)
        if candidate is not None and candidate[0] < skip.until:
            now, duration = candidate
        else:
            now, duration = next_request(rng, skip.until, rate)


def audit(sims: list[Sim], modems: list[Modem]) -> dict[str, int]:
    """Count every quota breach, window by window, without the policy code."""
    breaches = {"calls_per_hour": 0, "calls_per_day": 0, "call_seconds_per_day": 0}
    breaches |= {"min_call_gap_s": 0, "overlap_on_modem": 0, "call_during_switch": 0}
    for sim in sims:
        starts = [r.booked_at for r in sim.records]
        lo = 0
        for hi, t in enumerate(starts):  # every rolling hour that ends at a booking
            while starts[lo] <= t - HOUR_S:
                lo += 1
            breaches["calls_per_hour"] += hi - lo + 1 > LIMITS.calls_per_hour
        per_day: dict[float, list[UsageRecord]] = {}
        for record in sim.records:
            per_day.setdefault(local_day_bounds(record.booked_at, TZ)[0], []).append(record)
        for day in per_day.values():
            breaches["calls_per_day"] += len(day) > LIMITS.calls_per_day
            seconds = sum(r.charged_s for r in day)
            breaches["call_seconds_per_day"] += seconds > LIMITS.call_seconds_per_day
        for earlier, later in itertools.pairwise(sim.records):
            breaches["min_call_gap_s"] += later.booked_at < earlier.ends_at + LIMITS.min_call_gap_s
    for modem in modems:
        calls = sorted(
            (r for s in modem.sims for r in s.records), key=lambda r: (r.booked_at, r.id)
        )
        for earlier, later in itertools.pairwise(calls):
            breaches["overlap_on_modem"] += later.booked_at < earlier.ends_at
            switched = earlier.iccid != later.iccid
            breaches["call_during_switch"] += (
                switched and later.booked_at < earlier.ends_at + SWITCH_S
            )
    return breaches


@dataclass(frozen=True, slots=True)
class Bound:
    per_sim_day: float
    per_modem_day: float
    total: float
    seconds_total: float
    lines: tuple[str, ...]


def theoretical_bound(modems: int, days: int) -> Bound:
    mean_d = (MIN_CALL_S + MAX_CALL_S) / 2
    terms = {
        "calls_per_day": float(LIMITS.calls_per_day),
        "24 * calls_per_hour": 24.0 * LIMITS.calls_per_hour,
        f"call_seconds_per_day / mean duration ({mean_d:g} s)": LIMITS.call_seconds_per_day
        / mean_d,
        f"86400 / (mean duration + min_call_gap_s {LIMITS.min_call_gap_s})": DAY_S
        / (mean_d + LIMITS.min_call_gap_s),
    }
    binding = min(terms, key=lambda k: terms[k])
    per_sim = terms[binding]
    physical = DAY_S / mean_d
    per_modem = min(SLOTS * per_sim, physical)
    total = per_modem * modems * days
    lines = [f"per SIM per day = min({', '.join(f'{k} = {v:.2f}' for k, v in terms.items())})"]
    lines.append(f"                = {per_sim:.2f} (binding: {binding})")
    lines.append(
        f"per modem per day = min({SLOTS} SIMs x {per_sim:.2f} = {SLOTS * per_sim:.2f}, "
        f"one call at a time 86400 / {mean_d:g} = {physical:.2f}) = {per_modem:.2f}"
    )
    lines.append(f"bound = {per_modem:.2f} x {modems} modems x {days} days = {total:.0f} calls")
    seconds = float(LIMITS.call_seconds_per_day * SLOTS * modems * days)
    lines.append(
        f"call seconds bound = {LIMITS.call_seconds_per_day} x {SLOTS * modems} SIMs x {days} days"
        f" = {seconds:.0f} s"
    )
    return Bound(per_sim, per_modem, total, seconds, tuple(lines))


@dataclass(frozen=True, slots=True)
class Result:
    strategy: str
    served_calls: int
    bound_calls: int
    of_bound: float
    call_seconds: int
    seconds_of_bound: float
    mean_call_s: float
    violations: int
    violations_by_limit: dict[str, int]
    switches: int
    decisions: int
    seconds: float


def run_strategy(
    name: str, modems: int, days: int, interarrival: float, seed: int, bound: Bound
) -> Result:
    strategy = STRATEGIES[name]
    fleet = [
        Modem(f"m{m:02d}", [Sim(f"8986{m:02d}{s:013d}") for s in range(SLOTS)])
        for m in range(modems)
    ]
    end = START + days * DAY_S
    started = time.perf_counter()
    for m, modem in enumerate(fleet):
        run_modem(modem, strategy, end, random.Random(seed * 1000 + m), 1 / interarrival)
    elapsed = time.perf_counter() - started
    sims = [s for m in fleet for s in m.sims]
    served = sum(len(s.records) for s in sims)
    seconds = sum(r.duration_s for s in sims for r in s.records)
    breaches = audit(sims, fleet)
    return Result(
        strategy=name,
        served_calls=served,
        bound_calls=round(bound.total),
        of_bound=round(served / bound.total, 4),
        call_seconds=seconds,
        seconds_of_bound=round(seconds / bound.seconds_total, 4),
        mean_call_s=round(seconds / served, 1) if served else 0.0,
        violations=sum(breaches.values()),
        violations_by_limit=breaches,
        switches=sum(m.switches for m in fleet),
        decisions=sum(m.decisions for m in fleet),
        seconds=round(elapsed, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--modems", type=int, default=32)
    parser.add_argument("--interarrival", type=float, default=5.0, help="mean s between requests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="1 day, 4 modems")
    args = parser.parse_args()
    if args.quick:
        args.days, args.modems = 1, 4
    started = time.perf_counter()
    bound = theoretical_bound(args.modems, args.days)
    print(json.dumps({
        "figure": "utilisation_bound", "per_sim_day": round(bound.per_sim_day, 3),
        "per_modem_day": round(bound.per_modem_day, 3), "bound_calls": round(bound.total),
        "bound_call_seconds": bound.seconds_total, "derivation": list(bound.lines),
    }))  # fmt: skip
    rows = [
        run_strategy(name, args.modems, args.days, args.interarrival, args.seed, bound)
        for name in STRATEGIES
    ]
    for row in rows:
        print(
            json.dumps(
                {"figure": "utilisation", "modems": args.modems, "slots": SLOTS, "days": args.days}
                | dataclasses.asdict(row)
            )
        )
    elapsed = time.perf_counter() - started
    print()
    print(
        f"{args.modems} modems x {SLOTS} slots, {args.days} day(s), a request every "
        f"{args.interarrival:g} s per modem (mean), calls {MIN_CALL_S}-{MAX_CALL_S} s, "
        f"switch {SWITCH_S:g} s"
    )
    for line in bound.lines:
        print(line)
    print()
    header = f"{'strategy':<14} {'served':>8} {'bound':>8} {'of bound':>9} {'call s':>10}"
    print(header + f" {'of s bound':>10} {'violations':>10} {'switches':>9} {'run s':>6}")
    for row in rows:
        print(
            f"{row.strategy:<14} {row.served_calls:>8} {row.bound_calls:>8} {row.of_bound:>9.2%}"
            f" {row.call_seconds:>10} {row.seconds_of_bound:>10.2%} {row.violations:>10}"
            f" {row.switches:>9} {row.seconds:>6.2f}"
        )
    ours = rows[0]
    met = ours.of_bound >= TARGET and ours.violations == 0
    print(
        f"target planner >= {TARGET:.0%} of bound, 0 violations: {'met' if met else 'MISSED'}"
        f" ({ours.of_bound:.2%}, {ours.violations}); {elapsed:.1f} s"
    )


if __name__ == "__main__":
    main()
