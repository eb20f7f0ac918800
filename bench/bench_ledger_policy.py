"""Ledger and policy figures: durable bookings per second, and the time of one call decision
(fetch the SIM's recent rows, summarise, count the destination, check) with 1,000 SIMs and
1,000,000 usage rows.

    .venv/bin/python bench/bench_ledger_policy.py [--dir DIR] [--rows N] [--sims N]

Prints one JSON object per figure, then a table. ``--dir`` should be on the disk the
state_dir will live on: bookings/s is bounded by that disk's fsync.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from simbank.bank.policy import Limits, check_call
from simbank.bank.usage import UsageKind, history_start, summarise
from simbank.store.ledger import Ledger

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 5, 28, 23, 0, tzinfo=TZ).timestamp()  # late in the day: most rows to read
DAY = 86400.0


def bench_bookings(state_dir: Path, count: int) -> dict[str, object]:
    """Sequential book() calls with the real settings (WAL, synchronous=FULL)."""
    with Ledger.open(state_dir) as ledger:
        sync = ledger._conn.execute("PRAGMA synchronous").fetchone()[0]
        started = time.perf_counter()
        for n in range(count):
            ledger.book(
                "8986000000000000000",
                UsageKind.CALL,
                NOW + n,
                reserved_s=60,
                destination="+8613800138000",
            )
        booked = time.perf_counter() - started
        ids = [
            ledger.book("8986000000000000001", UsageKind.CALL, NOW + n, reserved_s=60)
            for n in range(count // 2)
        ]
        started = time.perf_counter()
        for booking in ids:
            ledger.complete(booking, NOW + 30, "answered", 25)
        completed = time.perf_counter() - started
    return {
        "figure": "durable_bookings",
        "synchronous": {2: "FULL", 3: "EXTRA"}.get(sync, str(sync)),
        "journal_mode": "wal",
        "count": count,
        "bookings_per_s": round(count / booked),
        "book_ms_mean": round(booked / count * 1000, 3),
        "completes_per_s": round(len(ids) / completed),
    }


def populate(ledger: Ledger, sims: list[str], rows: int, rng: random.Random) -> float:
    """``rows`` completed usage rows over the last 30 days, spread over ``sims``."""
    numbers = [ledger.hasher.hash(f"+86138{n:08d}") for n in range(20_000)]
    started = time.perf_counter()
    conn = ledger._conn
    batch: list[tuple[object, ...]] = []
    conn.execute("BEGIN IMMEDIATE")
    for n in range(rows):
        iccid = sims[n % len(sims)]
        booked = NOW - rng.random() * 30 * DAY
        if rng.random() < 0.8:
            duration = rng.randrange(0, 300)
            batch.append(
                (
                    iccid,
                    "call",
                    booked,
                    300,
                    booked + duration + 5,
                    "answered",
                    duration,
                    rng.choice(numbers),
                    "m1",
                )
            )
        else:
            batch.append(
                (iccid, "sms", booked, 0, booked + 2, "sent", 0, rng.choice(numbers), "m1")
            )
        if len(batch) == 50_000:
            conn.executemany(
                "INSERT INTO usage (iccid, kind, booked_at, reserved_s, completed_at, outcome,"
                " duration_s, destination, modem) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
            batch.clear()
    conn.executemany(
        "INSERT INTO usage (iccid, kind, booked_at, reserved_s, completed_at, outcome,"
        " duration_s, destination, modem) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        batch,
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_decisions(
    state_dir: Path, sim_count: int, rows: int, decisions: int
) -> list[dict[str, object]]:
    rng = random.Random(7)
    sims = [f"89860{n:015d}" for n in range(sim_count)]
    limits = Limits(
        calls_per_hour=20,
        calls_per_day=100,
        call_seconds_per_day=7200,
        rest_after_calls=5,
        rest_s=600,
    )
    with Ledger.open(state_dir) as ledger:
        fill_s = populate(ledger, sims, rows, rng)
        total = ledger._conn.execute("SELECT COUNT(*) FROM usage").fetchone()[0]
        plan = ledger._conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM usage WHERE iccid = ? AND booked_at >= ? ORDER BY booked_at, id",
            ("x", 0.0),
        ).fetchall()
        whole: list[float] = []
        pure: list[float] = []
        fetched: list[int] = []
        allowed = 0
        for _ in range(decisions):
            iccid = rng.choice(sims)
            destination = ledger.hasher.hash(f"+86138{rng.randrange(20_000):08d}")
            now = NOW + rng.random() * 600
            started = time.perf_counter()
            since = history_start(
                now,
                TZ,
                rest_after_calls=limits.rest_after_calls,
                rest_s=limits.rest_s,
                max_call_s=3600,
            )
            records = ledger.usage_records(iccid, since)
            usage = summarise(records, now, TZ, rest_s=limits.rest_s)
            dest_today = ledger.destination_calls(destination, usage.day_start)
            middle = time.perf_counter()
            refusal = check_call(
                limits, usage, now, TZ, max_duration_s=300, destination_calls_today=dest_today,
                on_dnc=False, circuit_open=False,
            )  # fmt: skip
            ended = time.perf_counter()
            whole.append(ended - started)
            pure.append(ended - middle)
            fetched.append(len(records))
            allowed += refusal is None
    base = {"sims": sim_count, "rows": total, "decisions": decisions}
    return [
        {"figure": "populate", "rows": total, "seconds": round(fill_s, 2), "query_plan": " | ".join(str(r[3]) for r in plan)},
        {
            "figure": "call_decision_with_ledger", **base,
            "p50_us": round(statistics.median(whole) * 1e6, 1),
            "p99_us": round(percentile(whole, 0.99) * 1e6, 1),
            "max_us": round(max(whole) * 1e6, 1),
            "rows_fetched_mean": round(statistics.mean(fetched), 1),
            "allowed_share": round(allowed / decisions, 3),
        },
        {
            "figure": "call_decision_pure", **base,
            "p50_us": round(statistics.median(pure) * 1e6, 1),
            "p99_us": round(percentile(pure, 0.99) * 1e6, 1),
        },
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="where to put the scratch ledgers")
    parser.add_argument("--bookings", type=int, default=5000)
    parser.add_argument("--sims", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--decisions", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        figures = [bench_bookings(Path(scratch) / "bookings", args.bookings)]
        figures += bench_decisions(
            Path(scratch) / "decisions", args.sims, args.rows, args.decisions
        )
    for figure in figures:
        print(json.dumps(figure))
    booking, _, with_ledger, pure = figures
    print()
    print(f"{'figure':<38} {'value':>14}")
    print(f"{'durable bookings/s (WAL, FULL)':<38} {booking['bookings_per_s']:>14}")
    print(f"{'durable completes/s':<38} {booking['completes_per_s']:>14}")
    print(f"{'call decision p50 (ledger+policy) us':<38} {with_ledger['p50_us']:>14}")
    print(f"{'call decision p99 (ledger+policy) us':<38} {with_ledger['p99_us']:>14}")
    print(f"{'check_call alone p50 / p99 us':<38} {pure['p50_us']!s:>6} / {pure['p99_us']!s:<5}")
    print(f"{'rows (SIMs)':<38} {with_ledger['rows']!s:>8} ({with_ledger['sims']})")


if __name__ == "__main__":
    main()
