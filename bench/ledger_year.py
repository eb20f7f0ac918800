"""The ledger's size after a simulated year of a 256-modem gateway, with and without the
retention fold (schema 8), and the fold's time per day.

    .venv/bin/python bench/ledger_year.py [--days 365] [--modems 256] [--horizons 0,35]
    .venv/bin/python bench/ledger_year.py --quick          # 16 modems, 60 days
    .venv/bin/python bench/ledger_year.py --horizons 90 --plain-days 30   # the default horizon

A day of one modem (its two SIMs in use that day, of four slots: 1,024 SIMs in all) is
60 calls (80 % answered, talk 0..180 s, 120 s reserved; one in 200 never completed), 20 SMS
sent (one segment each) and one USSD balance check — within the default policy (100 calls,
7,200 call seconds, 50 SMS a day, 20 calls an hour) — plus 4 inbound SMS (read), 2 inbound
calls, 2 audit entries (rotations) and, on one modem in four, one piece of block evidence.
That is 20,736 usage rows and about 7,300 event rows a day.

Rows are written with ``executemany`` straight into the ledger's tables (one transaction a
simulated day; the booking path's fsyncs would take hours, and the file's contents are the
same), into a ``durable=False`` ledger. Horizon 0 is the unfolded ledger; any other runs
:meth:`simbank.store.ledger.Ledger.fold` after each simulated day, as the daemon does once
a day. Prints one JSON object per figure, then a table. The unfolded ledger grows linearly
(7.8 MB a day here), so by default it is simulated for 60 days and its size extrapolated
(``--plain-days 0`` simulates the whole year: 2,849.0 MB measured against 2,849.4
extrapolated).

Figures (2-core box, ``--dir /dev/shm``; the default run takes about 7 minutes, nearly all
of it the folded year, whose 9.2 million deletions are SQLite b-tree work):

    horizon   size after 365 days   kept             fold per day (mean / max)
    none      2,849 MB              every row        -
    90        804 MB                90 days of rows  696 / 2,061 ms  (the default horizon)
    35        375 MB                35 days of rows  632 / 1,525 ms  (28,000 rows a day)

With a 35-day horizon the file is 292 MB once the horizon is reached (day 60) and then
grows only by the daily totals: 0.27 MB a day (1,024 SIMs: ~1,280 usage and ~2,140 event
totals a day), 3.5 % of the unfolded rate. With the default horizon (90 days) it holds
709 MB at day 90 and 804 MB after a year (that run took 503 s).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from simbank.store.ledger import Ledger

TZ = ZoneInfo("Europe/London")
START = 1_767_225_600.0  # 2026-01-01T00:00Z
DAY = 86400.0
CALLS, SMS, USSD = 60, 20, 1
INBOUND_SMS, INBOUND_CALLS, AUDIT = 4, 2, 2


def simulate(state_dir: Path, modems: int, days: int, horizon: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    ledger = Ledger.open(state_dir, durable=False)
    conn = ledger._conn
    conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: speed only, the file is the same
    numbers = [ledger.hasher.hash(f"+44207946{n:04d}") for n in range(10_000)]
    sims = [[f"8944{m:06d}{s:09d}0"[:20] for s in range(4)] for m in range(modems)]
    fold_s: list[float] = []
    folded = 0
    sizes: dict[int, int] = {}
    written = 0
    started = time.perf_counter()
    for day in range(days):
        base = START + day * DAY
        usage: list[tuple[object, ...]] = []
        sent: list[tuple[object, ...]] = []
        inbound: list[tuple[object, ...]] = []
        calls_in: list[tuple[object, ...]] = []
        audit: list[tuple[object, ...]] = []
        evidence: list[tuple[object, ...]] = []
        for m in range(modems):
            modem = f"m{m:03d}"
            active = sims[m][(2 * day) % 4], sims[m][(2 * day + 1) % 4]
            for n in range(CALLS):
                at = base + 8 * 3600 + rng.random() * 12 * 3600
                talk = rng.randrange(181) if rng.random() < 0.8 else 0
                done = None if rng.random() < 0.005 else at + talk + 20
                usage.append(
                    (
                        active[n % 2], "call", at, 120, done,
                        None if done is None else ("answered" if talk else "no_answer"),
                        talk if done else 0, rng.choice(numbers), modem,
                        f"req-{rng.getrandbits(48):012x}",
                    )
                )  # fmt: skip
            for n in range(SMS + USSD):
                at = base + 8 * 3600 + rng.random() * 12 * 3600
                kind = "sms" if n < SMS else "ussd"
                usage.append(
                    (
                        active[n % 2], kind, at, 0, at + 2, "sent", 0,
                        rng.choice(numbers) if kind == "sms" else None, modem,
                        f"req-{rng.getrandbits(48):012x}",
                    )
                )  # fmt: skip
                if kind == "sms":
                    sent.append((n, None, active[n % 2], modem, n % 256, 1, 1, at, 0))
            for n in range(INBOUND_SMS):
                at = base + rng.random() * DAY
                inbound.append(
                    (
                        active[n % 2], at, rng.choice(numbers), "Your code is 482913. " * 3,
                        n, modem, "+4477009•••23", at + 60,
                    )
                )  # fmt: skip
            for n in range(INBOUND_CALLS):
                at = base + rng.random() * DAY
                calls_in.append(
                    (
                        active[n % 2], modem, at, at + 12, rng.choice(numbers),
                        "+4420794•••23", 3, "ignore", "policy", "missed",
                    )
                )  # fmt: skip
            for n in range(AUDIT):
                at = base + n * 12 * 3600
                detail = json.dumps({"iccid": active[n], "modem": modem, "slot": 2 * n + 1})
                audit.append((at, "rotation", "sim_switch", active[n], detail))
            if m % 4 == 0:
                detail = json.dumps({"domain": "cereg", "stat": 3, "raw": "+CEREG: 3,,,,0,7"})
                evidence.append((active[0], base + rng.random() * DAY, "registration", detail))
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO usage (iccid, kind, booked_at, reserved_s, completed_at, outcome,"
            " duration_s, destination, modem, txn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            usage,
        )
        conn.executemany(
            "INSERT INTO sms_sent (message, txn, iccid, modem, reference, segment, segments,"
            " sent_at, report_requested) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            sent,
        )
        conn.executemany(
            "INSERT INTO inbound_sms (iccid, received_at, sender, text, modem_index, protected,"
            " modem, shown_sender, acked_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
            inbound,
        )
        conn.executemany(
            "INSERT INTO inbound_calls (iccid, modem, started_at, ended_at, caller, shown_caller,"
            " rings, action, reason, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            calls_in,
        )
        conn.executemany(
            "INSERT INTO audit (at, actor, action, iccid, detail) VALUES (?, ?, ?, ?, ?)", audit
        )
        conn.executemany(
            "INSERT INTO evidence (iccid, at, kind, detail) VALUES (?, ?, ?, ?)", evidence
        )
        conn.execute("COMMIT")
        written += sum(map(len, (usage, sent, inbound, calls_in, audit, evidence)))
        if horizon:
            began = time.perf_counter()
            result = ledger.fold(base + DAY + 3600, horizon, TZ)
            fold_s.append(time.perf_counter() - began)
            folded += result.total
        if (day + 1) % 30 == 0 or day + 1 == days:
            sizes[day + 1] = _size(ledger)
    elapsed = time.perf_counter() - started
    counts = {
        table: int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        for table in ("usage", "usage_daily", "event_daily", "inbound_sms", "sms_sent", "audit")
    }
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    page = int(conn.execute("PRAGMA page_size").fetchone()[0])
    ledger.close()
    busy = [s for s in fold_s if s > 0.001]  # days that folded something
    return {
        "figure": "ledger_year",
        "horizon_days": horizon,
        "modems": modems,
        "days": days,
        "rows_written": written,
        "rows_folded": folded,
        "size_mb": round(sizes[days] / 1e6, 1),
        "size_mb_by_day": {d: round(s / 1e6, 1) for d, s in sizes.items()},
        "free_mb": round(free * page / 1e6, 1),
        "rows_kept": counts,
        "fold_ms_mean": round(statistics.mean(busy) * 1000, 1) if busy else None,
        "fold_ms_max": round(max(busy) * 1000, 1) if busy else None,
        "run_s": round(elapsed, 1),
    }


def _size(ledger: Ledger) -> int:
    """The file as it would be after a checkpoint (the WAL folded in)."""
    ledger._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return ledger.path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="where to put the scratch ledgers")
    parser.add_argument("--modems", type=int, default=256)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--horizons", default="0,35", help="comma-separated; 0: no fold")
    parser.add_argument(
        "--plain-days",
        type=int,
        default=60,
        help="simulate the unfolded ledger (horizon 0) this many days and extrapolate its "
        "size linearly to --days (0: simulate them all, ~5 min for 256 modems x 365 days)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="16 modems, 60 days")
    args = parser.parse_args()
    if args.quick:
        args.modems, args.days = 16, 60
    figures = []
    for horizon in (int(h) for h in args.horizons.split(",")):
        days = args.days
        if horizon == 0 and 0 < args.plain_days < days:
            days = args.plain_days
        with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
            figure = simulate(Path(scratch), args.modems, days, horizon, args.seed)
        if days < args.days:  # an unfolded ledger grows linearly: extrapolate it
            figure["measured_days"] = days
            figure["size_mb"] = round(float(str(figure["size_mb"])) * args.days / days, 1)
            figure["days"] = args.days
        figures.append(figure)
        print(json.dumps(figure), flush=True)
    print()
    print(f"{args.modems} modems, {args.days} days")
    print(f"{'horizon':>8} {'size MB':>9} {'free MB':>8} {'usage rows':>11} {'daily rows':>11}"
          f" {'fold ms/day (mean/max)':>23} {'run s':>7}")  # fmt: skip
    for f in figures:
        kept = f["rows_kept"]
        assert isinstance(kept, dict)
        fold = f"{f['fold_ms_mean']} / {f['fold_ms_max']}" if f["fold_ms_mean"] else "-"
        size = f"{f['size_mb']}{'*' if 'measured_days' in f else ''}"
        print(
            f"{f['horizon_days'] or 'none':>8} {size:>9} {f['free_mb']!s:>8}"
            f" {kept['usage']:>11} {kept['usage_daily'] + kept['event_daily']:>11}"
            f" {fold:>23} {f['run_s']!s:>7}"
        )
    for f in figures:
        if "measured_days" in f:
            print(f"* extrapolated from {f['measured_days']} simulated days (--plain-days 0: all)")


if __name__ == "__main__":
    main()
