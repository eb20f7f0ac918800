"""Inbound calls in the ledger (schema 7): stored once each, the caller only as its keyed hash,
counted by outcome, listed newest first; never usage."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from simbank.store.inbound_calls import InboundCallLedger
from simbank.store.ledger import Ledger

ICCID = "8999100000000000011"
CALLER = "+15550100123"


def record(calls: InboundCallLedger, at: float, outcome: str, caller: str | None = CALLER) -> int:
    return calls.record_inbound_call(
        iccid=ICCID,
        modem="m1",
        started_at=at,
        ended_at=at + 5,
        caller=caller,
        shown_caller="withheld" if caller is None else "+1555*****23",
        rings=2,
        action="reject" if outcome == "rejected" else "ring",
        reason="policy_reject" if outcome == "rejected" else "policy_ignore",
        outcome=outcome,  # type: ignore[arg-type]
    )


def test_calls_are_counted_listed_and_the_number_kept_only_hashed(tmp_path: Path) -> None:
    with Ledger.open(tmp_path, durable=False) as ledger:
        calls = ledger
        record(calls, 100.0, "missed")
        record(calls, 200.0, "rejected")
        record(calls, 300.0, "answered", caller=None)
        record(calls, 400.0, "rejected")
        assert calls.inbound_call_counts(ICCID, 150.0) == {
            "answered": 1,
            "missed": 0,
            "rejected": 2,
        }
        assert calls.inbound_call_counts("8999100000000000029", 0.0) == {
            "answered": 0,
            "missed": 0,
            "rejected": 0,
        }
        recent = calls.inbound_calls(ICCID, limit=3)
        assert [c.started_at for c in recent] == [400.0, 300.0, 200.0]
        assert recent[1].caller is None and recent[1].shown_caller == "withheld"
        assert recent[0].caller == ledger.hasher.hash(CALLER)
        # Not usage: the outbound quotas never see an inbound call.
        assert ledger.usage_records(ICCID, 0.0) == []
    raw = (tmp_path / "ledger.sqlite3").read_bytes()
    assert CALLER.encode() not in raw and b"15550100123" not in raw
    conn = sqlite3.connect(tmp_path / "ledger.sqlite3")
    try:
        assert conn.execute("SELECT COUNT(*) FROM inbound_calls").fetchone() == (4,)
    finally:
        conn.close()
