"""Quota policy: tables for each rule, and the property that no sequence of requests, clock
jumps and restarts lets a SIM exceed any limit, with every refusal carrying its reason."""

from __future__ import annotations

import datetime as dt
import itertools
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from simbank.bank.policy import (
    Limits,
    QuietWindow,
    Refusal,
    check_call,
    check_sms,
    headroom,
    quiet_until,
    select_policy,
)
from simbank.bank.usage import Usage, UsageKind, UsageRecord, history_start, summarise
from simbank.config.models import PolicyConfig
from simbank.store.ledger import Ledger

UTC = ZoneInfo("UTC")
SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp()  # 20:00 in Shanghai
CODES = {"quota_exhausted", "quiet_hours", "do_not_call", "destination_cap", "circuit_open"}


def call(
    booked_at: float, reserved: int = 60, done: float | None = None, dur: int = 0
) -> UsageRecord:
    return UsageRecord(0, "89001", UsageKind.CALL, booked_at, reserved, done, "ok", dur)


def sms(booked_at: float) -> UsageRecord:
    return UsageRecord(0, "89001", UsageKind.SMS, booked_at)


def may_call(
    limits: Limits, records: list[UsageRecord], now: float, **kw: object
) -> Refusal | None:
    args: dict[str, object] = {"max_duration_s": 60, "destination_calls_today": 0}
    args.update(kw)
    return check_call(
        limits,
        summarise(records, now, UTC, rest_s=limits.rest_s),
        now,
        UTC,
        max_duration_s=int(args["max_duration_s"]),  # type: ignore[call-overload]
        destination_calls_today=int(args["destination_calls_today"]),  # type: ignore[call-overload]
        on_dnc=bool(args.get("on_dnc", False)),
        circuit_open=bool(args.get("circuit_open", False)),
    )


# -- tables -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "records", "now_offset", "limit", "frees_offset"),
    [
        (Limits(calls_per_hour=2, min_call_gap_s=0), [call(0, 10, 10, 10), call(100, 10, 110, 10)], 200, "calls_per_hour", 3600),
        (Limits(calls_per_hour=0), [], 0, "calls_per_hour", None),
        (Limits(min_call_gap_s=30), [call(0, 60, 20, 20)], 40, "min_call_gap_s", 50),
        (Limits(min_call_gap_s=30), [call(0, 60)], 70, "min_call_gap_s", 90),  # never completed
        (Limits(min_call_gap_s=0, rest_after_calls=2, rest_s=600), [call(0, 10, 10, 10), call(20, 10, 30, 10)], 100, "rest_after_calls", 630),
        (Limits(call_seconds_per_day=100), [call(-3600, 60, -3590, 10), call(-1800, 50)], 0, "call_seconds_per_day", 12 * 3600),
        (Limits(call_seconds_per_day=50), [], 0, "call_seconds_per_day", None),
        (Limits(calls_per_day=1, calls_per_hour=5), [call(-7200, 10, -7190, 10)], 0, "calls_per_day", 12 * 3600),
    ],
)  # fmt: skip
def test_quota_refusals_name_the_limit_and_when_it_frees(
    limits: Limits,
    records: list[UsageRecord],
    now_offset: float,
    limit: str,
    frees_offset: float | None,
) -> None:
    shifted = [
        replace(
            r,
            booked_at=r.booked_at + T0,
            completed_at=None if r.completed_at is None else r.completed_at + T0,
        )
        for r in records
    ]
    refusal = may_call(limits, shifted, T0 + now_offset)
    assert refusal is not None
    assert refusal.code == "quota_exhausted"
    assert refusal.limit == limit
    assert refusal.message
    if frees_offset is None:
        assert refusal.frees_at is None
    else:
        assert refusal.frees_at == pytest.approx(T0 + frees_offset, abs=1e-6)


def test_a_call_is_allowed_when_nothing_is_used() -> None:
    assert may_call(Limits(), [], T0) is None


def test_gateway_wide_refusals_come_first() -> None:
    full = Limits(calls_per_hour=0, quiet_hours=(QuietWindow.parse("00:00-23:59"),))
    assert may_call(full, [], T0, circuit_open=True, on_dnc=True).code == "circuit_open"  # type: ignore[union-attr]
    assert may_call(full, [], T0, on_dnc=True).code == "do_not_call"  # type: ignore[union-attr]
    assert may_call(full, [], T0).code == "quiet_hours"  # type: ignore[union-attr]


def test_destination_cap_frees_at_local_midnight() -> None:
    limits = Limits(calls_per_destination_per_day=2)
    now = T0  # 20:00 in Shanghai
    usage = summarise([], now, SHANGHAI)
    refusal = check_call(
        limits, usage, now, SHANGHAI, max_duration_s=60, destination_calls_today=2,
        on_dnc=False, circuit_open=False,
    )  # fmt: skip
    assert refusal is not None
    assert refusal.code == "destination_cap"
    assert refusal.frees_at == dt.datetime(2026, 6, 2, tzinfo=SHANGHAI).timestamp()
    assert refusal.as_error().reason == "destination_cap"


def test_sms_per_day_counts_the_local_calendar_day() -> None:
    limits = Limits(sms_per_day=1)
    yesterday = dt.datetime(2026, 6, 1, 23, 30, tzinfo=SHANGHAI).timestamp()
    today = dt.datetime(2026, 6, 2, 0, 30, tzinfo=SHANGHAI).timestamp()
    usage = summarise([sms(yesterday)], today, SHANGHAI)
    assert check_sms(limits, usage, today, SHANGHAI, on_dnc=False, circuit_open=False) is None
    usage = summarise([sms(yesterday)], yesterday + 60, SHANGHAI)
    refusal = check_sms(limits, usage, yesterday + 60, SHANGHAI, on_dnc=False, circuit_open=False)
    assert refusal is not None
    assert (refusal.limit, refusal.frees_at) == ("sms_per_day", today - 1800)


def test_day_bounds_follow_daylight_saving() -> None:
    spring = dt.datetime(2026, 3, 8, 12, 0, tzinfo=NEW_YORK).timestamp()
    usage = summarise([], spring, NEW_YORK)
    assert usage.day_end - usage.day_start == 23 * 3600


@pytest.mark.parametrize(
    ("windows", "local", "until"),
    [
        (["21:00-09:00"], "22:30", "1 09:00"),
        (["21:00-09:00"], "08:59", "0 09:00"),
        (["21:00-09:00"], "09:00", None),
        (["21:00-09:00"], "20:59", None),
        (["12:00-13:00", "13:00-14:00"], "12:10", "0 14:00"),
        (["23:00-01:00", "01:00-02:00"], "23:30", "1 02:00"),
    ],
)
def test_quiet_hours_wrap_midnight_and_chain(
    windows: list[str], local: str, until: str | None
) -> None:
    hour, minute = map(int, local.split(":"))
    now = dt.datetime(2026, 6, 1, hour, minute, tzinfo=SHANGHAI).timestamp()
    parsed = tuple(QuietWindow.parse(w) for w in windows)
    got = quiet_until(parsed, now, SHANGHAI)
    if until is None:
        assert got is None
    else:
        days, hhmm = until.split()
        h, m = map(int, hhmm.split(":"))
        expected = dt.datetime(2026, 6, 1 + int(days), h, m, tzinfo=SHANGHAI).timestamp()
        assert got == expected


def test_whole_day_quiet_window_never_frees() -> None:
    limits = Limits(quiet_hours=(QuietWindow.parse("10:00-10:00"),))
    refusal = may_call(limits, [], T0)
    assert refusal is not None
    assert (refusal.code, refusal.frees_at) == ("quiet_hours", None)


def test_headroom_is_the_scarcest_quota() -> None:
    limits = Limits(calls_per_hour=10, calls_per_day=100, call_seconds_per_day=1000, sms_per_day=4)
    usage = Usage(
        T0, T0 - 1, T0 + 1, hour_calls=(T0,) * 5, calls_day=5, call_seconds_day=100, sms_day=3
    )
    assert headroom(limits, usage, UsageKind.CALL) == pytest.approx(0.5)
    assert headroom(limits, usage, UsageKind.SMS) == pytest.approx(0.25)
    assert headroom(limits, usage) == pytest.approx(0.25)
    assert headroom(Limits(sms_per_day=0), usage, UsageKind.SMS) == 0.0
    empty = Usage(T0, T0 - 1, T0 + 1)
    assert headroom(limits, empty) == 1.0


@pytest.mark.parametrize(
    ("iccid", "imsi", "expected"),
    [
        ("8986001234", "460001234", "cm_long"),
        ("8986009999", "460001234", "cm"),
        ("8944000000", "460011111", "unicom_imsi"),
        ("8944000000", None, "default"),
        ("8986001234", None, "cm_long"),
    ],
)
def test_select_policy_longest_prefix_wins(iccid: str, imsi: str | None, expected: str) -> None:
    policies = {
        "default": PolicyConfig(),
        "cm": PolicyConfig(iccid_prefixes=["898600"]),
        "cm_long": PolicyConfig(iccid_prefixes=["89860012"]),
        "unicom_imsi": PolicyConfig(imsi_prefixes=["46001"]),
    }
    assert select_policy(policies, iccid, imsi) == expected


def test_history_reaches_back_far_enough_for_a_rest_run_across_midnight() -> None:
    limits = Limits(min_call_gap_s=0, rest_after_calls=2, rest_s=3600)
    late = dt.datetime(2026, 6, 1, 23, 0, tzinfo=SHANGHAI).timestamp()
    rows = [call(late, 60, late + 60, 60), call(late + 2400, 60, late + 2460, 60)]
    now = late + 5400  # 00:30 the next day, 49 min after the second call ended
    since = history_start(now, SHANGHAI, rest_after_calls=2, rest_s=3600, max_call_s=60)
    usage = summarise([r for r in rows if r.booked_at >= since], now, SHANGHAI, rest_s=3600)
    assert usage.calls_since_rest == 2
    refusal = check_call(
        limits, usage, now, SHANGHAI, max_duration_s=60, destination_calls_today=0,
        on_dnc=False, circuit_open=False,
    )  # fmt: skip
    assert refusal is not None
    assert (refusal.limit, refusal.frees_at) == ("rest_after_calls", late + 2460 + 3600)


def test_limits_from_config() -> None:
    limits = Limits.from_config(
        PolicyConfig(quiet_hours=["21:00-09:00"], rest_after_calls=3, rest_s=60)
    )
    assert limits.quiet_hours == (QuietWindow(21 * 60, 9 * 60),)
    assert (limits.rest_after_calls, limits.rest_s, limits.calls_per_hour) == (3, 60, 20)


# -- the property -----------------------------------------------------------------------------

SIMS = ("8986000000000000001", "8986000000000000002")
NUMBERS = tuple(f"+86 138 0000 000{n}" for n in range(8))
DNC = NUMBERS[0]
MAX_CALL_S = 300


class MemoryStore:
    """The ledger's contract, in memory (destinations kept as given)."""

    def __init__(self) -> None:
        self.rows: list[UsageRecord] = []

    def book(self, iccid: str, kind: UsageKind, now: float, reserved: int, dest: str | None) -> int:
        self.rows.append(
            UsageRecord(len(self.rows) + 1, iccid, kind, now, reserved, destination=dest)
        )
        return len(self.rows)

    def complete(self, booking: int, now: float, duration: int) -> None:
        old = self.rows[booking - 1]
        self.rows[booking - 1] = UsageRecord(
            old.id,
            old.iccid,
            old.kind,
            old.booked_at,
            old.reserved_s,
            now,
            "ok",
            duration,
            old.destination,
        )

    def records(self, iccid: str, since: float) -> list[UsageRecord]:
        return [r for r in self.rows if r.iccid == iccid and r.booked_at >= since]

    def dest_key(self, number: str) -> str:
        return number

    def destination_calls(self, key: str, since: float) -> int:
        return sum(
            r.kind is UsageKind.CALL and r.destination == key and r.booked_at >= since
            for r in self.rows
        )

    def all_rows(self) -> list[UsageRecord]:
        return list(self.rows)

    def restart(self) -> None:
        """Nothing is cached; a restart only loses the pending completions."""


class LedgerStore(MemoryStore):
    """The same through a real SQLite ledger, closed and reopened on restart."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.ledger = Ledger.open(state_dir, durable=False)

    def book(self, iccid: str, kind: UsageKind, now: float, reserved: int, dest: str | None) -> int:
        return self.ledger.book(iccid, kind, now, reserved_s=reserved, destination=dest)

    def complete(self, booking: int, now: float, duration: int) -> None:
        self.ledger.complete(booking, now, "ok", duration)

    def records(self, iccid: str, since: float) -> list[UsageRecord]:
        return self.ledger.usage_records(iccid, since)

    def dest_key(self, number: str) -> str:
        return self.ledger.hasher.hash(number)

    def destination_calls(self, key: str, since: float) -> int:
        return self.ledger.destination_calls(key, since)

    def all_rows(self) -> list[UsageRecord]:
        return [r for sim in SIMS for r in self.ledger.usage_records(sim, float("-inf"))]

    def restart(self) -> None:
        self.ledger.close()
        self.ledger = Ledger.open(self.state_dir, durable=False)


@dataclass
class World:
    limits: Limits
    tz: ZoneInfo
    now: float
    store: MemoryStore
    circuit_open: bool = False
    clock_went_back: bool = False
    pending: list[tuple[int, float, int, int]] = field(default_factory=list)

    def usage(self, iccid: str) -> Usage:
        since = history_start(
            self.now, self.tz, rest_after_calls=self.limits.rest_after_calls,
            rest_s=self.limits.rest_s, max_call_s=MAX_CALL_S,
        )  # fmt: skip
        return summarise(
            self.store.records(iccid, since), self.now, self.tz, rest_s=self.limits.rest_s
        )

    def try_call(self, sim: int, number: str, max_s: int, finish: int | None) -> Refusal | None:
        iccid = SIMS[sim]
        usage = self.usage(iccid)
        key = self.store.dest_key(number)
        day_start = usage.day_start
        refusal = check_call(
            self.limits, usage, self.now, self.tz, max_duration_s=max_s,
            destination_calls_today=self.store.destination_calls(key, day_start),
            on_dnc=number == DNC, circuit_open=self.circuit_open,
        )  # fmt: skip
        if refusal is None:
            booking = self.store.book(iccid, UsageKind.CALL, self.now, max_s, number)
            if finish is not None:
                self.pending.append((booking, self.now, max_s, min(finish, max_s)))
        return refusal

    def try_sms(self, sim: int, number: str) -> Refusal | None:
        iccid = SIMS[sim]
        usage = self.usage(iccid)
        refusal = check_sms(
            self.limits,
            usage,
            self.now,
            self.tz,
            on_dnc=number == DNC,
            circuit_open=self.circuit_open,
        )
        if refusal is None:
            self.store.book(iccid, UsageKind.SMS, self.now, 0, number)
        return refusal

    def complete_one(self) -> None:
        if self.pending:
            booking, booked_at, reserved, duration = self.pending.pop(0)
            # A call never outlasts its reservation: the daemon hangs up at max_duration_s.
            done = max(booked_at, min(self.now, booked_at + reserved))
            self.store.complete(booking, done, min(duration, int(done - booked_at)))


def assert_refusal_is_explained(refusal: Refusal, world: World, max_s: int) -> None:
    event(f"refused {refusal.code} {refusal.limit}")
    assert refusal.code in CODES
    assert refusal.message
    if world.circuit_open:
        assert refusal.code == "circuit_open"
    if refusal.code != "quota_exhausted":
        return
    assert refusal.limit is not None
    if refusal.frees_at is None:  # only a limit that can never allow it
        never = getattr(world.limits, refusal.limit) == 0 or (
            refusal.limit == "call_seconds_per_day" and max_s > world.limits.call_seconds_per_day
        )
        assert never, refusal
    else:
        assert refusal.frees_at > world.now


def assert_no_limit_exceeded(world: World) -> None:
    limits, tz = world.limits, world.tz
    rows = world.store.all_rows()

    def local_day(epoch: float) -> dt.date:
        return dt.datetime.fromtimestamp(epoch, tz).date()

    per_dest: dict[tuple[str | None, dt.date], int] = defaultdict(int)
    for iccid in SIMS:
        mine = [r for r in rows if r.iccid == iccid]
        calls = sorted(
            (r for r in mine if r.kind is UsageKind.CALL), key=lambda r: (r.booked_at, r.id)
        )
        assert [c.id for c in calls] == sorted(c.id for c in calls)  # booked in clock order
        for c in calls:
            in_hour = sum(c.booked_at <= o.booked_at < c.booked_at + 3600 for o in calls)
            assert in_hour <= limits.calls_per_hour
            per_dest[(c.destination, local_day(c.booked_at))] += 1
        count: dict[dt.date, int] = defaultdict(int)
        seconds: dict[dt.date, int] = defaultdict(int)
        for c in calls:  # an uncompleted booking costs its whole reservation
            count[local_day(c.booked_at)] += 1
            seconds[local_day(c.booked_at)] += (
                c.reserved_s if c.completed_at is None else c.duration_s
            )
        assert all(n <= limits.calls_per_day for n in count.values())
        assert all(s <= limits.call_seconds_per_day for s in seconds.values())
        texts: dict[dt.date, int] = defaultdict(int)
        for r in mine:
            if r.kind is UsageKind.SMS:
                texts[local_day(r.booked_at)] += 1
        assert all(n <= limits.sms_per_day for n in texts.values())
        run = 1
        for earlier, later in itertools.pairwise(calls):
            ended = earlier.booked_at + earlier.reserved_s
            if earlier.completed_at is not None:
                ended = max(earlier.booked_at, earlier.completed_at)
            assert later.booked_at - ended >= limits.min_call_gap_s
            run = run + 1 if later.booked_at - ended < limits.rest_s else 1
            if limits.rest_after_calls:
                assert run <= limits.rest_after_calls
    assert all(n <= limits.calls_per_destination_per_day for n in per_dest.values())
    for r in rows:
        local = dt.datetime.fromtimestamp(r.booked_at, tz)
        assert not any(w.contains(local.hour * 60 + local.minute) for w in limits.quiet_hours)
        assert r.destination != world.store.dest_key(DNC)


windows = st.builds(
    lambda a, n: f"{a // 60:02d}:{a % 60:02d}-{(a + n) % 1440 // 60:02d}:{(a + n) % 60:02d}",
    st.integers(0, 95).map(lambda q: q * 15),
    st.integers(1, 24).map(lambda q: q * 15),
)
few = st.sampled_from([0, *[1, 2, 3, 4, 5] * 4])  # a zero limit now and then
limits_st = st.builds(
    Limits,
    calls_per_hour=few,
    calls_per_day=few.map(lambda n: 2 * n),
    call_seconds_per_day=st.sampled_from([0, 200, 600, 1500, 1500]),
    sms_per_day=few,
    min_call_gap_s=st.sampled_from([0, 10, 60, 120]),
    quiet_hours=st.lists(windows, max_size=1).map(
        lambda ws: tuple(QuietWindow.parse(w) for w in ws)
    ),
    calls_per_destination_per_day=few,
    rest_after_calls=st.sampled_from([0, 1, 2, 3]),
    rest_s=st.sampled_from([0, 600, 1800, 3600]),
)
call_st = st.tuples(
    st.just("call"),
    st.integers(0, 1),
    st.sampled_from([*NUMBERS[1:] * 2, DNC]),
    st.integers(1, MAX_CALL_S),
    st.none() | st.integers(0, MAX_CALL_S),
)
sms_st = st.tuples(st.just("sms"), st.integers(0, 1), st.sampled_from([*NUMBERS[1:] * 2, DNC]))
wait_st = st.tuples(st.just("wait"), st.integers(0, 900) | st.sampled_from([3600, 6 * 3600, 86400]))
steps_st = st.lists(
    st.one_of(
        call_st, call_st, call_st, call_st, sms_st, sms_st, wait_st, wait_st, wait_st,
        st.tuples(st.just("back"), st.integers(1, 300)),
        st.tuples(st.just("complete")), st.tuples(st.just("complete")),
        st.tuples(st.just("restart")),
    ),
    min_size=25,
    max_size=100,
)  # fmt: skip
starts = st.sampled_from(
    [T0, dt.datetime(2026, 3, 8, 1, 0, tzinfo=NEW_YORK).timestamp(),
     dt.datetime(2026, 10, 31, 23, 30, tzinfo=NEW_YORK).timestamp()]
)  # fmt: skip
zones = st.sampled_from([UTC, SHANGHAI, NEW_YORK, ZoneInfo("Australia/Lord_Howe")])


def run(world: World, steps: list[tuple[object, ...]]) -> None:
    for index, step in enumerate(steps):
        world.circuit_open = index % 11 == 10  # the breaker trips now and then
        match step:
            case ("call", int(sim), str(number), int(max_s), finish):
                refusal = world.try_call(
                    sim, number, max_s, finish if isinstance(finish, int) else None
                )
                if refusal is not None:
                    assert_refusal_is_explained(refusal, world, max_s)
            case ("sms", int(sim), str(number)):
                refusal = world.try_sms(sim, number)
                if refusal is not None:
                    assert_refusal_is_explained(refusal, world, 0)
            case ("wait", int(seconds)):
                world.now += seconds
            case ("back", int(seconds)):
                world.now -= seconds
                world.clock_went_back = True
            case ("complete",):
                world.complete_one()
            case ("restart",):
                world.pending.clear()  # the daemon died: those bookings never get an outcome
                world.store.restart()
            case _:
                raise AssertionError(step)
        assert_no_limit_exceeded(world)
    booked = len(world.store.all_rows())
    event(
        f"bookings: {'0' if not booked else '1-4' if booked < 5 else '5-9' if booked < 10 else '10+'}"
    )


@settings(max_examples=150, deadline=None)
@given(limits=limits_st, tz=zones, start=starts, steps=steps_st)
def test_no_sequence_exceeds_any_limit(
    limits: Limits, tz: ZoneInfo, start: float, steps: list[tuple[object, ...]]
) -> None:
    run(World(limits, tz, start, MemoryStore()), steps)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(limits=limits_st, tz=zones, steps=steps_st)
def test_no_sequence_exceeds_any_limit_through_the_sqlite_ledger(
    scratch: Path, limits: Limits, tz: ZoneInfo, steps: list[tuple[object, ...]]
) -> None:
    with tempfile.TemporaryDirectory(dir=scratch) as name:
        store = LedgerStore(Path(name) / "state")
        try:
            run(World(limits, tz, T0, store), steps)
        finally:
            store.ledger.close()


def test_frees_at_is_when_the_limit_lets_go() -> None:
    """Jumping to ``frees_at`` lifts that very limit (nothing else changed)."""
    limits = Limits(calls_per_hour=4, min_call_gap_s=10, rest_after_calls=3, rest_s=900)
    rows: list[UsageRecord] = []
    now = T0
    seen: set[str] = set()
    for _ in range(40):
        refusal = may_call(limits, rows, now)
        if refusal is None:
            rows.append(call(now, 60, now + 30, 30))
            now += 1
            continue
        assert refusal.frees_at is not None
        assert refusal.limit is not None
        seen.add(refusal.limit)
        now = refusal.frees_at
        again = may_call(limits, rows, now)
        assert again is None or again.limit != refusal.limit
    assert seen == {"calls_per_hour", "min_call_gap_s", "rest_after_calls"}
