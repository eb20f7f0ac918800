"""Message figures, each measured side by side in one run:

- the SMS codec: a 400-character UCS-2 text split and encoded as SMS-SUBMITs, and an inbound
  3-part message decoded from its SMS-DELIVER PDUs (``simbank.sms``), per second;
- the inbox: a received message stored durably whole vs as its 3 parts (each part its own
  ``synchronous=FULL`` commit, the last one assembling the message), and a page of
  ``sms/list`` with 100,000 messages stored.

    .venv/bin/python bench/bench_messages.py [--dir DIR] [--quick]

Prints one JSON object per figure, then a table. ``--dir`` should be on the disk the
state_dir will live on: the inbox figures are bounded by its fsync.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from simbank.sms.pdu import decode_pdu, encode_submit
from simbank.store.ledger import Ledger

ICCID = "89860012345678901234"
SENDER = "+447700900456"  # fictional
NUMBER = "+447700900123"  # fictional
LONG_TEXT = ("你好世界。这是一条很长的短信。" * 27)[:400]  # 400 characters outside GSM-7
T0 = 1_780_000_000.0


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def bench_codec(rounds: int) -> dict[str, object]:
    started = time.perf_counter()
    for _ in range(rounds):
        segments = encode_submit(NUMBER, LONG_TEXT)
    encoded = time.perf_counter() - started
    # Inbound: the simulator's network encodes DELIVERs independently; here the client's own
    # SUBMITs are re-read as the decoder's input (same user data and header layout).
    pdus = [s.hex for s in segments]
    started = time.perf_counter()
    for _ in range(rounds):
        texts = [decode_pdu(p).text for p in pdus]
    decoded = time.perf_counter() - started
    assert "".join(texts) == LONG_TEXT
    assert len(pdus) == 6
    return {
        "figure": "sms_codec",
        "segments": len(pdus),
        "encode_messages_per_s": _rate(rounds, encoded),
        "decode_messages_per_s": _rate(rounds, decoded),
    }


def bench_inbox(state_dir: Path, count: int) -> dict[str, object]:
    with Ledger.open(state_dir) as ledger:
        started = time.perf_counter()
        for n in range(count):
            ledger.store_inbound_sms(ICCID, T0 + n, SENDER, f"whole {n}", n, sent_at=f"s{n}")
        whole = time.perf_counter() - started
        started = time.perf_counter()
        for n in range(count):
            for seq in (1, 2, 3):
                ledger.store_inbound_part(
                    ICCID,
                    T0 + n,
                    f"+447700900{n % 1000:03d}",  # fictional (Ofcom drama range)
                    f"part {seq}",
                    reference=n % 256,
                    total=3,
                    sequence=seq,
                )
        parts = time.perf_counter() - started
        assert ledger.waiting_parts() == 0
    return {
        "figure": "inbox_store",
        "messages": count,
        "whole_per_s": _rate(count, whole),
        "three_parts_per_s": _rate(count, parts),
        "parts_over_whole_time": round(parts / whole, 2),
    }


def bench_listing(state_dir: Path, stored: int) -> dict[str, object]:
    with Ledger.open(state_dir, durable=False) as ledger:
        with ledger._write() as conn:
            conn.executemany(
                "INSERT INTO inbound_sms (iccid, received_at, sender, text, modem, protected)"
                " VALUES (?, ?, 'hash', ?, 'm1', 1)",
                [(f"8986{n % 64:016d}", T0 + n, f"message {n}") for n in range(stored)],
            )
        started = time.perf_counter()
        pages = 0
        after = 0
        while pages < 200:
            page = ledger.inbox(iccid="89860000000000000007", after=after, limit=50)
            if not page:
                after = 0
                continue
            after = page[-1].id
            pages += 1
        listed = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(200):
            ledger.unread_counts()
        counted = time.perf_counter() - started
    return {
        "figure": "inbox_list",
        "stored": stored,
        "page_ms": round(listed / 200 * 1000, 3),
        "unread_counts_ms": round(counted / 200 * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, help="where the ledgers go (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    args = parser.parse_args()
    rounds, count, stored = (50, 20, 5_000) if args.quick else (500, 600, 100_000)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        figures = [
            bench_codec(rounds),
            bench_inbox(root / "inbox", count),
            bench_listing(root / "list", stored),
        ]
    for figure in figures:
        print(json.dumps(figure))
    codec, inbox, listing = figures
    print()
    print(
        f"SMS codec      400-char UCS-2 text: {codec['encode_messages_per_s']} encodes/s,"
        f" {codec['decode_messages_per_s']} decodes/s ({codec['segments']} segments)"
    )
    print(
        f"inbox store    whole {inbox['whole_per_s']}/s, as 3 parts {inbox['three_parts_per_s']}/s"
        f" (x{inbox['parts_over_whole_time']} the time)"
    )
    print(
        f"inbox list     {listing['stored']} stored: a page of 50 in {listing['page_ms']} ms,"
        f" unread counts in {listing['unread_counts_ms']} ms"
    )


if __name__ == "__main__":
    main()
