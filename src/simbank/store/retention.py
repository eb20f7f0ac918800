"""Retention: usage rows and events older than a horizon are folded into per-SIM daily totals
and removed, so the ledger stops growing but for those totals (schema 8).

What stays exact, and why:

- **Quotas** never read a folded row. Every window a decision reads (the rolling hour, the
  local day, the billing month, a run of calls before a rest: :func:`~simbank.bank.usage.
  history_start`) is shorter than the horizon: the cutoff is the local midnight at or before
  ``now - max(horizon, keep_s)``, with ``horizon`` at least ``MIN_RETENTION_DAYS`` (35 days,
  longer than any billing month) and ``keep_s`` the longest look-back of the configured
  policies (:func:`quota_history_s`). The destination cap counts today only.
- **All-time counts** (``calls_booked(iccid, -inf)``, and calls since the SIM's last balance
  check, however old) add the folded totals: call totals are split at the SIM's last balance
  check as of the fold.
- **Billing months** and other periods bounded by local midnights (in the time zone of the
  fold) are whole days: :meth:`RetentionLedger.usage_totals` answers them exactly, folded or
  not, and says when a period cuts a folded day.
- ``sim/report`` lists 30 days, inside the horizon. Evidence and audit entries of a SIM in
  quarantine (blocked, suspected, locked) are kept whatever their age: they are its proof.
  Unread inbound SMS and SMS parts still waiting for their siblings are kept too.

A row with no outcome (never completed) is folded as charged in full, as
:attr:`~simbank.bank.usage.UsageRecord.charged_s` counts it. The newest row of each table is
never removed, so SQLite never hands its id out again (ids are booking tokens, message ids
and inbox paging cursors).

The fold runs in short write transactions of at most ``batch`` rows each, so bookings are
not held up for long on a big ledger. Freed pages go to SQLite's free list and are reused by
new rows: the file levels off once the horizon is reached, then grows only by the daily
totals (a few rows per SIM and day; ~3.5 % of the unfolded rate in ``bench/ledger_year.py``);
it does not shrink (no VACUUM, which would rewrite the whole file under the write lock).
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from simbank.bank.usage import local_day_bounds
from simbank.config.storage import MIN_RETENTION_DAYS
from simbank.store.core import LedgerCore

if TYPE_CHECKING:
    from simbank.bank.policy import Limits

DAY_S = 86400.0
#: The longest billing month (31 days) and the hour a clock change may add, with a day spare.
MONTH_LOOKBACK_S = 33 * DAY_S
#: Between two batches the fold lets the ledger go for this long: the lock is not fair, and
#: the daemon's own calls (a booking, a state read on the event loop) must get in.
BATCH_PAUSE_S = 0.005
#: Rows per write transaction (about 50 ms of the write lock on a 2-core box).
DEFAULT_BATCH = 2000
#: Sticky states whose evidence (and audit trail) is kept whatever its age.
QUARANTINED = ("blocked", "suspected", "locked")


@dataclass(frozen=True, slots=True)
class FoldResult:
    """What one fold did: rows folded (and removed) per table, how many distinct local days
    they came from, the cutoff (epoch seconds; rows before it were folded) and the number of
    write transactions."""

    cutoff: float
    rows: dict[str, int] = field(default_factory=dict)
    days: int = 0
    transactions: int = 0
    #: Asked to stop (the daemon stopping): the batches done are whole; the next fold goes on.
    stopped: bool = False

    @property
    def total(self) -> int:
        """Rows folded over every table."""
        return sum(self.rows.values())


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """A SIM's usage over a period: bookings by kind and the call seconds charged (a booking
    never completed charged its reservation). ``exact`` is False when a folded day straddles
    a bound of the period (it is then left out): ask for periods bounded by local midnights of
    the gateway's time zone (days, billing months) and it is always True."""

    calls: int = 0
    call_seconds: int = 0
    sms: int = 0
    ussd: int = 0
    exact: bool = True


def quota_history_s(limits: Iterable[Limits], max_call_s: int) -> float:
    """How far back any quota decision of these policies can read (seconds): the billing
    month, or a run of calls before a rest (``history_start``), whichever is longer. Pass it
    as :func:`fold`'s ``keep_s``."""
    longest = MONTH_LOOKBACK_S
    for each in limits:
        if each.rest_after_calls > 0:
            longest = max(longest, each.rest_after_calls * (each.rest_s + max_call_s) + DAY_S)
    return longest


def fold_cutoff(now: float, horizon_days: int, tz: ZoneInfo, keep_s: float = 0.0) -> float:
    """The local midnight (in ``tz``) at or before ``now - max(horizon, keep_s)``: rows
    before it are folded, so each local day is folded whole. Never closer than
    ``MIN_RETENTION_DAYS`` nor a billing month, whatever the caller asks; ``-inf`` (fold
    nothing) when the reach goes past what a date can hold (a rest of centuries)."""
    reach = max(max(horizon_days, MIN_RETENTION_DAYS) * DAY_S, keep_s, MONTH_LOOKBACK_S)
    try:
        return local_day_bounds(now - reach, tz)[0]
    except (ValueError, OverflowError, OSError):
        return -math.inf


class _Days:
    """Local day bounds of instants, cached for the run of rows in one day."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.start = self.end = math.nan
        self.label = ""
        self.seen: set[float] = set()

    def of(self, at: float) -> tuple[float, float, str]:
        if not self.start <= at < self.end:
            self.start, self.end = local_day_bounds(at, self.tz)
            self.label = dt.datetime.fromtimestamp(math.floor(at), self.tz).date().isoformat()
            self.seen.add(self.start)
        return self.start, self.end, self.label


@dataclass(frozen=True, slots=True)
class _Events:
    """One event table: where its time is, what its folded ``kind`` is, what must stay."""

    table: str
    at: str
    kind: str  # an SQL expression over the row
    keep: str = ""  # an SQL condition: rows it holds are never folded
    per_sim_protected: bool = False


_EVENTS = (
    _Events("evidence", "at", "kind", per_sim_protected=True),
    _Events("audit", "at", "action", per_sim_protected=True),
    _Events("inbound_sms", "received_at", "''", keep="acked_at IS NULL"),
    _Events("sms_sent", "sent_at", "status"),
    _Events("inbound_calls", "started_at", "outcome"),
)

_UPSERT_USAGE = (
    "INSERT INTO usage_daily (iccid, day_start, kind, after_check, day, count,"
    " completed, reserved_s, charged_s, duration_s, first_at, last_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (iccid, day_start, kind, after_check) DO UPDATE SET"
    " count = usage_daily.count + excluded.count,"
    " completed = usage_daily.completed + excluded.completed,"
    " reserved_s = usage_daily.reserved_s + excluded.reserved_s,"
    " charged_s = usage_daily.charged_s + excluded.charged_s,"
    " duration_s = usage_daily.duration_s + excluded.duration_s,"
    " first_at = MIN(usage_daily.first_at, excluded.first_at),"
    " last_at = MAX(usage_daily.last_at, excluded.last_at)"
)
_UPSERT_EVENTS = (
    "INSERT INTO event_daily (day_start, iccid, source, kind, day, count)"
    " VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (day_start, iccid, source, kind) DO UPDATE SET"
    " count = event_daily.count + excluded.count"
)


class RetentionLedger(LedgerCore):
    """The fold and the readers of folded totals (schema 8)."""

    def fold(
        self,
        now: float,
        horizon_days: int,
        tz: ZoneInfo,
        *,
        keep_s: float = 0.0,
        batch: int = DEFAULT_BATCH,
        stop: Callable[[], bool] = lambda: False,
    ) -> FoldResult:
        """Fold usage rows and events from before :func:`fold_cutoff` into daily totals and
        remove them, ``batch`` rows per write transaction (blocking: run it in a worker
        thread). ``horizon_days`` 0 folds nothing. ``stop`` is asked before each batch: once
        it says True, the fold returns (``stopped``) with every batch done whole."""
        if horizon_days <= 0:
            return FoldResult(cutoff=-math.inf)
        if batch < 1:
            raise ValueError("batch must be at least 1")
        cutoff = fold_cutoff(now, horizon_days, tz, keep_s)
        days = _Days(tz)
        rows: dict[str, int] = {}
        transactions = 0
        marks = {r[0]: float(r[1]) for r in self._read("SELECT iccid, checked_at FROM sim_balance")}
        count, used = self._fold_usage(cutoff, days, marks, batch, stop)
        rows["usage"] = count
        transactions += used
        for spec in _EVENTS:
            count, used = self._fold_events(spec, cutoff, days, batch, stop)
            rows[spec.table] = count
            transactions += used
        if stop():
            return FoldResult(cutoff, rows, len(days.seen), transactions, stopped=True)
        with self._write() as conn:
            parts = conn.execute(
                "SELECT iccid, received_at FROM sms_parts"
                " WHERE message_id IS NOT NULL AND received_at < ?",
                (cutoff,),
            ).fetchall()
            conn.executemany(_UPSERT_EVENTS, _event_totals("sms_parts", parts, days))
            conn.execute(
                "DELETE FROM sms_parts WHERE message_id IS NOT NULL AND received_at < ?",
                (cutoff,),
            )
        rows["sms_parts"] = len(parts)
        return FoldResult(
            cutoff=cutoff, rows=rows, days=len(days.seen), transactions=transactions + 1
        )

    def _fold_usage(
        self,
        cutoff: float,
        days: _Days,
        marks: dict[str, float],
        batch: int,
        stop: Callable[[], bool],
    ) -> tuple[int, int]:
        """Usage rows, SIM by SIM along the ``(iccid, booked_at)`` index."""
        if stop():
            return 0, 0
        keep = self._newest_id("usage")
        if keep is None:
            return 0, 0
        folded = transactions = 0
        walk = _SimWalk("usage")
        while not walk.done and not stop():
            with self._write() as conn:
                conn.execute("INSERT INTO fold_in_progress (id, cutoff) VALUES (1, ?)", (cutoff,))
                totals: dict[tuple[Any, ...], list[Any]] = {}
                ids: list[tuple[int]] = []
                for sim, room in walk.batch(conn, batch):
                    assert sim is not None  # usage rows always name their SIM
                    found = conn.execute(
                        "SELECT id, kind, booked_at, reserved_s, completed_at, duration_s"
                        " FROM usage WHERE iccid = ? AND booked_at < ? AND id < ?"
                        " ORDER BY booked_at, id LIMIT ?",
                        (sim, cutoff, keep, room),
                    ).fetchall()
                    walk.took(len(found))
                    mark = marks.get(sim, -math.inf)
                    for row_id, kind, booked_at, reserved_s, completed_at, duration_s in found:
                        start, _, label = days.of(booked_at)
                        done = completed_at is not None
                        key = (sim, start, kind, int(booked_at > mark))
                        total = totals.setdefault(key, [label, 0, 0, 0, 0, 0, booked_at, 0])
                        total[1] += 1
                        total[2] += done
                        total[3] += reserved_s
                        total[4] += duration_s if done else reserved_s
                        total[5] += duration_s
                        total[6] = min(total[6], booked_at)
                        total[7] = max(total[7], booked_at)
                        ids.append((row_id,))
                conn.executemany(_UPSERT_USAGE, [(*key, *total) for key, total in totals.items()])
                conn.executemany("DELETE FROM usage WHERE id = ?", ids)
                conn.execute("DELETE FROM fold_in_progress")
            transactions += 1
            folded += len(ids)
            time.sleep(BATCH_PAUSE_S)
        return folded, transactions

    def _fold_events(
        self, spec: _Events, cutoff: float, days: _Days, batch: int, stop: Callable[[], bool]
    ) -> tuple[int, int]:
        """One event table, SIM by SIM along its ``(iccid, <time>)`` index (audit entries
        about no SIM last)."""
        if stop():
            return 0, 0
        keep = self._newest_id(spec.table)
        if keep is None:
            return 0, 0
        keep_clause = f" AND NOT ({spec.keep})" if spec.keep else ""
        select = (
            f"SELECT id, {spec.at}, {spec.kind} FROM {spec.table}"  # noqa: S608 (constants)
            f" WHERE iccid {{}} AND {spec.at} < ? AND id < ?{keep_clause}"
            f" ORDER BY {spec.at}, id LIMIT ?"
        )
        one_sim, no_sim = select.format("= ?"), select.format("IS NULL")
        folded = transactions = 0
        walk = _SimWalk(spec.table, with_none=spec.table == "audit")
        while not walk.done and not stop():
            with self._write() as conn:
                quarantined = {  # read in the transaction: a verdict may have just come
                    r[0]
                    for r in conn.execute(
                        "SELECT iccid FROM sim_state WHERE state IN (?, ?, ?)", QUARANTINED
                    )
                }
                found_rows: list[tuple[str, float, str]] = []
                ids: list[tuple[int]] = []
                for sim, room in walk.batch(conn, batch):
                    if sim is None:
                        found = conn.execute(no_sim, (cutoff, keep, room)).fetchall()
                    elif spec.per_sim_protected and sim in quarantined:
                        found = []
                    else:
                        found = conn.execute(one_sim, (sim, cutoff, keep, room)).fetchall()
                    walk.took(len(found))
                    found_rows += [(sim or "", at, kind) for _, at, kind in found]
                    ids += [(r[0],) for r in found]
                conn.executemany(_UPSERT_EVENTS, _event_totals(spec.table, found_rows, days))
                conn.executemany(f"DELETE FROM {spec.table} WHERE id = ?", ids)  # noqa: S608
            transactions += 1
            folded += len(ids)
            time.sleep(BATCH_PAUSE_S)
        return folded, transactions

    def _newest_id(self, table: str) -> int | None:
        rows = self._read(f"SELECT MAX(id) FROM {table}")  # noqa: S608 (a constant)
        return None if rows[0][0] is None else int(rows[0][0])

    # -- readers of the folded totals -------------------------------------------------------

    def newest_booking_at(self) -> float | None:
        """When the newest usage row was booked (the ledger's own idea of "now")."""
        rows = self._read("SELECT MAX(booked_at) FROM usage")
        return None if rows[0][0] is None else float(rows[0][0])

    def folded_calls(self, iccid: str, since: float) -> int:
        """Folded calls of this SIM booked after ``since``: exact when ``since`` is before
        every folded day, or the SIM's last balance check as of the fold; a folded day that
        ``since`` cuts otherwise counts whole."""
        rows = self._read(
            "SELECT COALESCE(SUM(count), 0) FROM usage_daily"
            " WHERE iccid = ? AND kind = 'call' AND last_at > ?",
            (iccid, since),
        )
        return int(rows[0][0])

    def usage_totals(self, iccid: str, start: float, end: float) -> UsageTotals:
        """The SIM's bookings in ``[start, end)``, live rows and folded days together."""
        counts: Counter[str] = Counter()
        seconds = 0
        for kind, n, charged in self._read(
            "SELECT kind, COUNT(*), SUM(CASE WHEN completed_at IS NULL THEN reserved_s"
            " ELSE duration_s END) FROM usage WHERE iccid = ? AND booked_at >= ?"
            " AND booked_at < ? GROUP BY kind",
            (iccid, start, end),
        ):
            counts[kind] += n
            seconds += int(charged) if kind == "call" else 0
        exact = True
        for kind, n, charged, first_at, last_at in self._read(
            "SELECT kind, count, charged_s, first_at, last_at FROM usage_daily"
            " WHERE iccid = ? AND last_at >= ? AND first_at < ?",
            (iccid, start, end),
        ):
            if first_at >= start and last_at < end:
                counts[kind] += n
                seconds += charged if kind == "call" else 0
            else:
                exact = False
        return UsageTotals(
            calls=counts["call"],
            call_seconds=seconds,
            sms=counts["sms"],
            ussd=counts["ussd"],
            exact=exact,
        )

    def folded_events(self, iccid: str, source: str) -> dict[str, int]:
        """Folded event counts of one SIM ('' for audit entries about no SIM) from one
        source table, by kind."""
        rows = self._read(
            "SELECT kind, SUM(count) FROM event_daily WHERE iccid = ? AND source = ?"
            " GROUP BY kind ORDER BY kind",
            (iccid, source),
        )
        return {kind: int(n) for kind, n in rows}


class _SimWalk:
    """The SIMs of one table in ICCID order, each by an index seek, cut into batches of at
    most ``batch`` rows: a SIM whose rows fill a batch starts the next one (then ``None``,
    for rows about no SIM, when ``with_none``)."""

    def __init__(self, table: str, *, with_none: bool = False) -> None:
        self.table = table
        self.after = ""
        self.again = False  # the next batch starts at ``after`` itself (it had more rows)
        self.with_none = with_none
        self.done = False
        self._room = 0

    def batch(self, conn: sqlite3.Connection, batch: int) -> Iterator[tuple[str | None, int]]:
        """(SIM, rows it may still take) until the batch is full or the table walked; the
        caller reports what it took with :meth:`took`."""
        self._room = batch
        while self._room > 0 and not self.done:
            op = ">=" if self.again else ">"
            row = conn.execute(
                f"SELECT iccid FROM {self.table} WHERE iccid {op} ?"  # noqa: S608 (constants)
                " ORDER BY iccid LIMIT 1",
                (self.after,),
            ).fetchone()
            if row is None:
                if self.with_none:
                    room = self._room
                    yield None, room
                    if self._room > 0:  # it took less than it could: no more such rows
                        self.done = True
                else:
                    self.done = True
                continue
            sim = str(row[0])
            room = self._room
            yield sim, room
            self.after, self.again = sim, self._room == 0

    def took(self, rows: int) -> None:
        self._room -= rows


def _event_totals(
    source: str, rows: Sequence[tuple[str, float] | tuple[str, float, str]], days: _Days
) -> list[tuple[object, ...]]:
    totals: Counter[tuple[float, str, str, str]] = Counter()
    for row in rows:
        iccid, at = row[0], row[1]
        kind = str(row[2]) if len(row) > 2 else ""
        start, _, label = days.of(at)
        totals[(start, iccid, kind, label)] += 1
    return [
        (start, iccid, source, kind, label, n)
        for (start, iccid, kind, label), n in sorted(totals.items())
    ]
