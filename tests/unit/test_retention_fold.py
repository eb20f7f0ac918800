"""The retention fold (schema 8): usage rows and events older than the horizon become per-SIM
daily totals, and no quota decision, all-time count or billing month changes — checked by a
property test of a folded ledger against an unfolded copy of the same file."""

from __future__ import annotations

import datetime as dt
import math
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from simbank.bank.policy import Limits, check_call, check_sms
from simbank.bank.usage import (
    UsageKind,
    billing_period_bounds,
    history_start,
    local_day_bounds,
    summarise,
)
from simbank.errors import LedgerError
from simbank.store.ledger import Ledger
from simbank.store.retention import DAY_S, fold_cutoff, quota_history_s

T0 = dt.datetime(2026, 1, 3, 9, 0, tzinfo=dt.UTC).timestamp()
MAX_CALL_S = 3600
SIMS = ("89440000000000000011", "89440000000000000029", "89440000000000000037")
NUMBERS = ("+15550100", "+15550101", "+447700900123", "+442079460123")
ZONES = tuple(
    ZoneInfo(name)
    for name in ("UTC", "Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
)


# -- the property -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Booking:
    sim: int
    kind: UsageKind
    at: float
    reserved_s: int
    destination: int | None
    #: (seconds after booking, duration) when completed; None: never completed.
    done: tuple[int, int] | None


def bookings(
    start: float, span: float, size: int, least: int = 0
) -> st.SearchStrategy[list[Booking]]:
    one = st.builds(
        Booking,
        sim=st.integers(0, len(SIMS) - 1),
        kind=st.sampled_from(list(UsageKind)),
        at=st.floats(start, start + span, allow_nan=False).map(round),
        reserved_s=st.integers(0, MAX_CALL_S),
        destination=st.none() | st.integers(0, len(NUMBERS) - 1),
        done=st.none() | st.tuples(st.integers(0, 4000), st.integers(0, MAX_CALL_S)),
    )
    return st.lists(one, min_size=least, max_size=size)


def limits_st() -> st.SearchStrategy[Limits]:
    return st.builds(
        Limits,
        calls_per_hour=st.integers(0, 4),
        calls_per_day=st.integers(0, 6),
        call_seconds_per_day=st.integers(0, 4 * MAX_CALL_S),
        sms_per_day=st.integers(0, 4),
        min_call_gap_s=st.integers(0, 600),
        calls_per_destination_per_day=st.integers(0, 2),
        rest_after_calls=st.integers(0, 12),
        # A long rest after many calls reaches back past the horizon (the fold's keep_s).
        rest_s=st.sampled_from([0, 600, 6 * 86400, 15 * 86400]) | st.integers(0, 20 * 86400),
        billing_day=st.integers(1, 28),
        calls_per_month=st.none() | st.integers(0, 30),
        call_seconds_per_month=st.none() | st.integers(0, 30 * MAX_CALL_S),
        sms_per_month=st.none() | st.integers(0, 30),
    )


def book_all(ledger: Ledger, rows: list[Booking]) -> None:
    for row in rows:
        booking = ledger.book(
            SIMS[row.sim],
            row.kind,
            row.at,
            reserved_s=row.reserved_s if row.kind is UsageKind.CALL else 0,
            destination=None if row.destination is None else NUMBERS[row.destination],
        )
        if row.done is not None:
            after, duration = row.done
            ledger.complete(booking, row.at + after, "answered", duration)


def decisions(ledger: Ledger, limits: Limits, tz: ZoneInfo, t: float) -> list[object]:
    """Everything a quota decision at ``t`` reads from the ledger, and the decisions."""
    seen: list[object] = []
    billing = limits.counted_billing_day
    day_start, _ = local_day_bounds(t, tz)
    for iccid in SIMS:
        since = history_start(
            t,
            tz,
            rest_after_calls=limits.rest_after_calls,
            rest_s=limits.rest_s,
            max_call_s=MAX_CALL_S,
            billing_day=billing,
        )
        usage = summarise(
            ledger.usage_records(iccid, since), t, tz, rest_s=limits.rest_s, billing_day=billing
        )
        seen.append(usage)
        for number in NUMBERS:
            today = ledger.destination_calls(ledger.hasher.hash(number), day_start)
            seen.append(today)
            seen.append(
                check_call(
                    limits,
                    usage,
                    t,
                    tz,
                    max_duration_s=600,
                    destination_calls_today=today,
                    on_dnc=False,
                    circuit_open=False,
                )
            )
        seen.append(check_sms(limits, usage, t, tz, on_dnc=False, circuit_open=False, segments=2))
        seen.append(ledger.calls_booked(iccid, -math.inf))
        balance = ledger.balances().get(iccid)
        if balance is not None:
            seen.append(ledger.calls_booked(iccid, balance.checked_at))
    return seen


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    tz=st.sampled_from(ZONES),
    limits=st.lists(limits_st(), min_size=1, max_size=2),
    extra_days=st.integers(1, 250),
    horizon=st.integers(35, 120),
)
def test_the_fold_changes_no_quota_decision(
    scratch: Path,
    data: st.DataObject,
    tz: ZoneInfo,
    limits: list[Limits],
    extra_days: int,
    horizon: int,
) -> None:
    keep_s = quota_history_s(limits, MAX_CALL_S)
    reach = max(horizon * DAY_S, keep_s)  # the fold keeps this much before it
    fold_at = T0 + reach + extra_days * DAY_S + data.draw(st.integers(0, 86399), label="second")
    before = data.draw(bookings(T0, fold_at - T0, 60, 5), label="before")
    # Some traffic just before the fold, so that the quota windows hold rows.
    recent = data.draw(bookings(fold_at - 3 * DAY_S, 3 * DAY_S, 15), label="recent")
    after = data.draw(bookings(fold_at, 40 * DAY_S, 25), label="after")
    checks = data.draw(
        st.lists(st.tuples(st.integers(0, len(SIMS) - 1), st.floats(T0, fold_at)), max_size=3),
        label="balance_checks",
    )
    times = data.draw(
        st.lists(st.floats(fold_at, fold_at + 45 * DAY_S), min_size=1, max_size=6),
        label="decision_times",
    )
    with tempfile.TemporaryDirectory(dir=scratch) as name:
        plain_dir, folded_dir = Path(name) / "plain", Path(name) / "folded"
        with Ledger.open(plain_dir, durable=False) as ledger:
            book_all(ledger, before + sorted(recent, key=lambda b: b.at))
            for sim, at in sorted(checks, key=lambda c: c[1]):
                calls = ledger.calls_booked(SIMS[sim], -math.inf)
                ledger.record_balance(
                    SIMS[sim], Decimal(5), low=False, now=at, calls_at_check=calls, detail={}
                )
        shutil.copytree(plain_dir, folded_dir)
        with (
            Ledger.open(plain_dir, durable=False) as plain,
            Ledger.open(folded_dir, durable=False) as folded,
        ):
            rows = plain.usage_records
            cutoff = fold_cutoff(fold_at, horizon, tz, keep_s)
            newest = max((r.id for s in SIMS for r in rows(s, -math.inf)), default=0)
            old = sum(
                r.booked_at < cutoff and r.id != newest for s in SIMS for r in rows(s, -math.inf)
            )
            result = folded.fold(fold_at, horizon, tz, keep_s=keep_s, batch=7)
            assert result.cutoff == cutoff
            assert result.rows["usage"] == old
            event(f"rows folded: {'0' if not old else '1-19' if old < 20 else '20+'}")
            for ledger in (plain, folded):
                book_all(ledger, sorted(after, key=lambda b: b.at))
            for t in sorted(times):
                for each in limits:
                    assert decisions(folded, each, tz, t) == decisions(plain, each, tz, t)
            # Billing months wholly before the cutoff: answered from the daily totals.
            for each in limits:
                start, end = billing_period_bounds(T0, tz, each.billing_day)
                while end <= cutoff:
                    for iccid in SIMS:
                        was = plain.usage_totals(iccid, start, end)
                        now = folded.usage_totals(iccid, start, end)
                        assert now == was
                        assert now.exact
                    start, end = end, billing_period_bounds(end, tz, each.billing_day)[1]


# -- the rules around it ----------------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "state", durable=False) as opened:
        yield opened


UTC = ZoneInfo("UTC")


def test_usage_stays_append_only_outside_the_fold(ledger: Ledger) -> None:
    for n in range(3):
        ledger.book(SIMS[0], UsageKind.CALL, T0 + n, reserved_s=60)
    conn = ledger._conn
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM usage WHERE id = 1")
    # A marker lets the fold remove rows older than its cutoff, and only those.
    conn.execute("BEGIN")
    conn.execute("INSERT INTO fold_in_progress (id, cutoff) VALUES (1, ?)", (T0 + 1,))
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM usage WHERE id = 2")
    conn.execute("DELETE FROM usage WHERE id = 1")
    conn.execute("ROLLBACK")
    assert len(ledger.usage_records(SIMS[0], -math.inf)) == 3


def test_the_fold_moves_old_rows_into_daily_totals_and_leaves_no_marker(ledger: Ledger) -> None:
    day = DAY_S
    # Day 0: two calls (one never completed: charged its reservation) and one SMS.
    first = ledger.book(SIMS[0], UsageKind.CALL, T0, reserved_s=300, destination=NUMBERS[0])
    ledger.complete(first, T0 + 100, "answered", 90)
    ledger.book(SIMS[0], UsageKind.CALL, T0 + 3600, reserved_s=120)
    ledger.book(SIMS[0], UsageKind.SMS, T0 + 7200)
    ledger.book(SIMS[1], UsageKind.USSD, T0 + day)
    recent = ledger.book(SIMS[0], UsageKind.CALL, T0 + 60 * day, reserved_s=60)
    result = ledger.fold(T0 + 60 * day, 35, UTC, batch=2)
    assert result.rows["usage"] == 4
    assert result.days == 2
    assert result.transactions > 2  # batches of two rows
    assert [r.id for r in ledger.usage_records(SIMS[0], -math.inf)] == [recent]
    assert ledger._read("SELECT COUNT(*) FROM fold_in_progress") == [(0,)]
    start, end = local_day_bounds(T0, UTC)
    totals = ledger.usage_totals(SIMS[0], start, end)
    assert (totals.calls, totals.call_seconds, totals.sms, totals.exact) == (2, 210, 1, True)
    assert ledger.calls_booked(SIMS[0], -math.inf) == 3
    assert ledger.usage_totals(SIMS[1], -math.inf, math.inf).ussd == 1
    # A period that cuts a folded day says so.
    assert not ledger.usage_totals(SIMS[0], T0 + 1800, end).exact
    # Folding again finds nothing more; a horizon of 0 never folds.
    assert ledger.fold(T0 + 60 * day, 35, UTC).total == 0
    assert ledger.fold(T0 + 900 * day, 0, UTC).total == 0
    with pytest.raises(LedgerError, match="append-only"), ledger._write() as conn:
        conn.execute("DELETE FROM usage")
    with pytest.raises(LedgerError, match="kept for good"), ledger._write() as conn:
        conn.execute("DELETE FROM usage_daily")


def test_a_fold_told_to_stop_ends_between_batches_and_the_next_one_goes_on(
    ledger: Ledger,
) -> None:
    for n in range(7):
        ledger.book(SIMS[n % 2], UsageKind.CALL, T0 + n * 600, reserved_s=60)
        ledger.audit(T0 + n * 600, "test", "note", {"iccid": SIMS[n % 2]})
    ledger.book(SIMS[0], UsageKind.SMS, T0 + 60 * DAY_S)
    asked = 0

    def stop() -> bool:  # the daemon stops after the fold's second batch
        nonlocal asked
        asked += 1
        return asked > 3  # the start of the usage walk, then two batches

    first = ledger.fold(T0 + 60 * DAY_S, 35, UTC, batch=2, stop=stop)
    assert first.stopped
    assert first.rows["usage"] == 4  # two whole batches; no event table touched
    assert first.total == 4
    assert ledger._read("SELECT COUNT(*) FROM fold_in_progress") == [(0,)]
    rest = ledger.fold(T0 + 60 * DAY_S, 35, UTC, batch=2)
    assert not rest.stopped
    assert rest.rows["usage"] == 3 and rest.rows["audit"] == 6  # the newest row stays
    assert ledger.calls_booked(SIMS[0], -math.inf) == 4
    assert ledger.calls_booked(SIMS[1], -math.inf) == 3


def test_calls_since_an_old_balance_check_stay_exact(ledger: Ledger) -> None:
    for hour in range(6):
        ledger.book(SIMS[0], UsageKind.CALL, T0 + hour * 3600, reserved_s=60)
    checked = T0 + 2.5 * 3600  # mid-day, between calls 3 and 4
    ledger.record_balance(SIMS[0], Decimal(1), low=False, now=checked, calls_at_check=3, detail={})
    ledger.book(SIMS[0], UsageKind.CALL, T0 + 100 * DAY_S, reserved_s=60)
    ledger.fold(T0 + 100 * DAY_S, 35, UTC)
    assert ledger.usage_records(SIMS[0], -math.inf)[0].booked_at == T0 + 100 * DAY_S
    assert ledger.calls_booked(SIMS[0], checked) == 4
    assert ledger.calls_booked(SIMS[0], -math.inf) == 7


def test_the_newest_row_is_kept_so_its_id_is_never_reused(ledger: Ledger) -> None:
    ids = [ledger.book(SIMS[0], UsageKind.SMS, T0 + n) for n in range(3)]
    ledger.fold(T0 + 400 * DAY_S, 35, UTC)
    assert [r.id for r in ledger.usage_records(SIMS[0], -math.inf)] == ids[-1:]
    assert ledger.book(SIMS[0], UsageKind.SMS, T0 + 400 * DAY_S) > ids[-1]


def test_events_are_folded_but_a_quarantined_sims_proof_and_unread_sms_stay(
    ledger: Ledger,
) -> None:
    blocked, healthy = SIMS[0], SIMS[1]
    for sim in (blocked, healthy):
        for n in range(3):
            ledger.add_evidence(sim, T0 + n, "registration", {"stat": 3})
            ledger.audit(T0 + n, "rotation", "sim_switch", {"iccid": sim})
    ledger.audit(T0, "operator", "traffic_pause", {})
    ledger.record_verdict(blocked, "blocked", T0 + 10, "reject_cause", [])
    read = ledger.store_inbound_sms(healthy, T0, "+447700900123", "hello", 1)
    unread = ledger.store_inbound_sms(healthy, T0 + 1, "+447700900123", "still unread", 2)
    assert read is not None
    assert unread is not None
    ledger.ack_inbound(T0 + 5, ids=[read])
    ledger.record_sent(
        99, transaction=None, iccid=healthy, modem="m1", references=[1, 2], now=T0,
        report_requested=False,
    )  # fmt: skip
    ledger.record_inbound_call(
        iccid=healthy, modem="m1", started_at=T0, ended_at=T0 + 9, caller="+15550101",
        shown_caller="+1555…01", rings=2, action="ignore", reason="policy", outcome="missed",
    )  # fmt: skip
    # Something newer in each table (the newest row is never folded).
    ledger.add_evidence(healthy, T0 + 50 * DAY_S, "registration", {"stat": 1})
    ledger.audit(T0 + 50 * DAY_S, "operator", "traffic_resume", {})
    ledger.store_inbound_sms(healthy, T0 + 50 * DAY_S, "Vodafone", "hi", 3)
    ledger.record_sent(
        100, transaction=None, iccid=healthy, modem="m1", references=[3], now=T0 + 50 * DAY_S,
        report_requested=False,
    )  # fmt: skip
    ledger.record_inbound_call(
        iccid=healthy, modem="m1", started_at=T0 + 50 * DAY_S, ended_at=T0 + 50 * DAY_S + 5,
        caller=None, shown_caller="withheld", rings=1, action="ignore", reason="policy",
        outcome="missed",
    )  # fmt: skip

    result = ledger.fold(T0 + 50 * DAY_S, 35, UTC)

    assert result.rows == {
        "usage": 0,
        "evidence": 3,
        "audit": 4,
        "inbound_sms": 1,
        "sms_sent": 2,
        "inbound_calls": 1,
        "sms_parts": 0,
    }
    assert len(ledger.evidence(blocked)) == 3  # the proof of its quarantine
    assert len(ledger.audit_trail(blocked)) == 3
    assert [e.at for e in ledger.evidence(healthy)] == [T0 + 50 * DAY_S]
    assert ledger.folded_events(healthy, "evidence") == {"registration": 3}
    assert ledger.folded_events(healthy, "audit") == {"sim_switch": 3}
    assert ledger.folded_events("", "audit") == {"traffic_pause": 1}
    assert ledger.folded_events(healthy, "sms_sent") == {"sent": 2}
    assert ledger.folded_events(healthy, "inbound_calls") == {"missed": 1}
    assert ledger.folded_events(healthy, "inbound_sms") == {"": 1}
    assert [m.text for m in ledger.inbound_sms(healthy)] == ["still unread", "hi"]


def test_quota_history_covers_the_longest_rest() -> None:
    assert quota_history_s([Limits()], MAX_CALL_S) == 33 * DAY_S
    long_rest = Limits(rest_after_calls=10, rest_s=5 * 86400)
    assert quota_history_s([Limits(), long_rest], MAX_CALL_S) == 10 * (5 * DAY_S + 3600) + DAY_S
    # The cutoff is a local midnight before both the horizon and that look-back.
    tz = ZoneInfo("Asia/Kolkata")
    now = T0 + 400 * DAY_S
    cutoff = fold_cutoff(now, 35, tz, 60 * DAY_S)
    assert cutoff <= now - 60 * DAY_S
    assert local_day_bounds(cutoff, tz)[0] == cutoff


def test_a_run_of_calls_longer_than_the_horizon_is_kept_whole(tmp_path: Path) -> None:
    """A policy resting after 20 calls spaced 10 days apart reads 200 days back: the fold
    keeps that (``keep_s``), and without it the run would be cut short."""
    limits = Limits(rest_after_calls=20, rest_s=15 * 86400, min_call_gap_s=0)
    now = T0 + 150 * DAY_S

    def usage(ledger: Ledger) -> object:
        since = history_start(
            now, UTC, rest_after_calls=20, rest_s=limits.rest_s, max_call_s=MAX_CALL_S
        )
        return summarise(ledger.usage_records(SIMS[0], since), now, UTC, rest_s=limits.rest_s)

    results = []
    for keep_s in (quota_history_s([limits], MAX_CALL_S), 0.0):
        with Ledger.open(tmp_path / f"keep{keep_s:.0f}", durable=False) as ledger:
            for n in range(16):
                ledger.book(SIMS[0], UsageKind.CALL, T0 + n * 10 * DAY_S, reserved_s=60)
            before = usage(ledger)
            folded = ledger.fold(now, 35, UTC, keep_s=keep_s).rows["usage"]
            results.append((folded, usage(ledger) == before))
    assert results == [(0, True), (12, False)]  # calls on days 0..110 of 150
