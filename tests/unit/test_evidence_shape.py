"""Block evidence in the contract's one shape, ``{"at": ISO 8601 UTC, "kind", "detail": {...}}``:
serialised alike from the detector's observations (events) and the ledger's rows (the retained
block, ``sim/report``), old ledger rows included; a block's episode starts after the last
release; a verdict repeating its episode's observations stores them once; simbankctl renders
the shape (and an older daemon's inline one)."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from simbank.bank.circuit import CircuitBreaker
from simbank.bank.evidence import Verdict, observe
from simbank.contract import EvidenceEntry, SimState, Topics
from simbank.ctl import output
from simbank.daemon.board import StatusBoard
from simbank.daemon.publication import (
    EVIDENCE_BEFORE_S,
    block_info,
    episode_start,
    evidence_json,
)
from simbank.daemon.verdicts import VerdictLedger
from simbank.store.ledger import LEDGER_FILE, Ledger
from simbank.store.schema import AuditEntry, SimRecord

ICCID = "89990100000000007001"
T0 = 1_795_896_843.5  # 2026-11-28 20:14:03.5 UTC
DOC = (Path(__file__).resolve().parents[2] / "docs" / "mqtt-api.md").read_text()


class Recorder:
    """The board's publisher: what went out, decoded."""

    def __init__(self) -> None:
        self.retained: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []

    def set_retained(self, topic: str, payload: bytes) -> None:
        self.retained[topic] = json.loads(payload)

    def publish(self, topic: str, payload: bytes, *_: object, **__: object) -> None:
        self.events.append(json.loads(payload))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(tmp_path / "state", durable=False)
    yield opened
    opened.close()


def denial(at: float) -> list[Any]:
    return [
        observe(at, "registration", domain="cereg", stat=3, reject_cause=7, raw="+CEREG: 3,,,,0,7"),
        observe(at + 0.25, "reject_cause", cause=7, source="ceer", raw=None),
    ]


def test_an_entry_is_iso_utc_kind_and_detail() -> None:
    entry = EvidenceEntry.observed(T0, "registration", {"stat": 3, "reject_cause": 7})
    as_json = json.loads(entry.model_dump_json())
    assert as_json == {
        "at": "2026-11-28T20:14:03.500000Z",
        "kind": "registration",
        "detail": {"stat": 3, "reject_cause": 7},
    }
    assert entry.as_json() == as_json
    assert datetime.fromisoformat(as_json["at"]) == datetime.fromtimestamp(T0, UTC)


def test_a_detail_that_is_not_a_mapping_is_kept_not_refused() -> None:
    assert EvidenceEntry.observed(T0, "x", [1, 2]).detail == {"value": [1, 2]}
    assert EvidenceEntry.observed(T0, "x", None).detail == {"value": None}


def test_the_event_and_the_ledger_serialise_the_same_observations_alike(ledger: Ledger) -> None:
    observations = denial(T0)
    ledger.record_verdict(
        ICCID,
        "blocked",
        T0 + 0.25,
        "reject_cause",
        [(o.at, o.kind, dict(o.detail)) for o in observations],
    )
    from_event = evidence_json(observations)
    from_ledger = evidence_json(ledger.evidence(ICCID))
    record = ledger.sim_states()[ICCID]
    retained = block_info(record, ledger.evidence(ICCID)).model_dump(mode="json")["evidence"]
    assert from_event == from_ledger == retained
    assert [set(e) for e in from_event] == [{"at", "kind", "detail"}] * 2
    assert from_event[1] == {
        "at": "2026-11-28T20:14:03.750000Z",
        "kind": "reject_cause",
        "detail": {"cause": 7, "source": "ceer"},  # None values are left out
    }


def test_an_old_ledger_row_renders_in_the_shape(tmp_path: Path) -> None:
    """A row written by an earlier version (epoch seconds as REAL, an integer second, the
    detail as JSON text) reads back and publishes in the one shape: no migration needed."""
    state_dir = tmp_path / "state"
    Ledger.open(state_dir, durable=False).close()
    with sqlite3.connect(state_dir / LEDGER_FILE) as conn:
        conn.execute(
            "INSERT INTO evidence (iccid, at, kind, detail) VALUES (?, ?, ?, ?)",
            (ICCID, 1_795_896_843, "registration", '{"stat": 3, "reject_cause": 7}'),
        )
        conn.execute(
            "INSERT INTO sim_state (iccid, state, reason, since) VALUES (?, ?, ?, ?)",
            (ICCID, "blocked", "reject_cause", 1_795_896_843),
        )
    ledger = Ledger.open(state_dir, durable=False)
    try:
        (row,) = ledger.evidence(ICCID)
        record = ledger.sim_states()[ICCID]
        block = block_info(record, [row])
        state = SimState(iccid=ICCID, state="blocked", block=block)
        (entry,) = json.loads(state.to_json())["block"]["evidence"]
    finally:
        ledger.close()
    assert entry == {
        "at": "2026-11-28T20:14:03Z",
        "kind": "registration",
        "detail": {"stat": 3, "reject_cause": 7},
    }


def audit(at: float, action: str) -> AuditEntry:
    return AuditEntry(0, at, "operator", action, ICCID, {"iccid": ICCID})


@pytest.mark.parametrize(
    ("trail", "start"),
    [
        ([], T0 - EVIDENCE_BEFORE_S),
        ([audit(T0 - 600, "sim_release")], T0 - 600),
        ([audit(T0 - 900, "sim_release"), audit(T0 - 300, "sim_release")], T0 - 300),
        ([audit(T0 - 300, "sim_recovered")], T0 - 300),
        ([audit(T0 - 300, "sim_disable"), audit(T0 - 200, "rotate")], T0 - EVIDENCE_BEFORE_S),
        ([audit(T0 - 2 * EVIDENCE_BEFORE_S, "sim_release")], T0 - EVIDENCE_BEFORE_S),
        ([audit(T0 + 5, "sim_release")], T0 - EVIDENCE_BEFORE_S),  # not before this block
    ],
)
def test_an_episode_starts_after_the_last_release(trail: list[AuditEntry], start: float) -> None:
    record = SimRecord(state="blocked", reason="reject_cause", since=T0, note=None)
    assert episode_start(record, trail) == start


def test_a_block_after_a_suspicion_stores_the_episode_once(ledger: Ledger) -> None:
    """A stuck-searching suspicion then its block carry the same episode's observations: the
    ledger holds each once, and both events carry the verdicts' evidence in the one shape."""
    rec = Recorder()
    topics = Topics("simbank", "gw1")
    verdicts = VerdictLedger(ledger, StatusBoard(rec, topics), CircuitBreaker(3, 3600))
    searching = observe(T0, "registration", domain="creg", stat=2)
    timeout = observe(T0 + 60, "timeout", timer="searching", elapsed_s=60.0, limit_s=60.0)
    verdicts.record(
        Verdict(ICCID, "suspected", "stuck_searching", (searching, timeout), action="reattach"),
        "m1",
        T0 + 60,
    )
    reattached = observe(T0 + 61, "reattached", via="radio_cycle")
    grace = observe(T0 + 91, "timeout", timer="reattach_grace", elapsed_s=30.0, limit_s=30.0)
    verdicts.record(
        Verdict(ICCID, "blocked", "stuck_searching", (searching, reattached, grace)), "m1", T0 + 91
    )
    kinds = [(e.at, e.kind) for e in ledger.evidence(ICCID)]
    assert kinds == [
        (T0, "registration"),
        (T0 + 60, "timeout"),
        (T0 + 61, "reattached"),
        (T0 + 91, "timeout"),
    ]
    assert [e["type"] for e in rec.events] == ["sim_suspected", "sim_blocked"]
    for event in rec.events:
        assert all(set(e) == {"at", "kind", "detail"} for e in event["evidence"])
        assert all(isinstance(e["at"], str) for e in event["evidence"])
    assert [e["kind"] for e in rec.events[1]["evidence"]] == [
        "registration",
        "reattached",
        "timeout",
    ]


def test_an_event_carries_the_latest_ten_observations(ledger: Ledger) -> None:
    rec = Recorder()
    verdicts = VerdictLedger(
        ledger, StatusBoard(rec, Topics("simbank", "gw1")), CircuitBreaker(3, 60)
    )
    many = tuple(observe(T0 + n, "registration", stat=2 + n % 2) for n in range(14))
    verdicts.record(Verdict(ICCID, "blocked", "registration_denied", many), "m1", T0 + 14)
    (event,) = rec.events
    assert [e["at"] for e in event["evidence"]] == [
        e.as_json()["at"]
        for e in (EvidenceEntry.observed(o.at, o.kind, o.detail) for o in many[4:])
    ]
    assert len(ledger.evidence(ICCID)) == 14  # the ledger keeps them all


@pytest.mark.parametrize(
    "entry",
    [
        {"at": "2026-11-28T20:14:03.500000Z", "kind": "reject_cause",
         "detail": {"reject_cause": 7, "stat": 3}},
        # An older daemon: epoch seconds, the detail's fields inline.
        {"at": T0, "kind": "reject_cause", "reject_cause": 7, "stat": 3},
    ],
)  # fmt: skip
def test_simbankctl_report_renders_the_evidence(entry: dict[str, Any]) -> None:
    text = output.report({"iccid": ICCID, "state": "blocked", "evidence": [entry]})
    assert "  2026-11-28 20:14:03  reject_cause  reject_cause=7, stat=3" in text.splitlines()


def test_the_documented_example_is_the_shape() -> None:
    section = DOC[DOC.index("### Block evidence") :]
    section = section[: section.index("\n## ")]
    example = json.loads(re.search(r"```json\n(.*?)```", section, re.S).group(1))  # type: ignore[union-attr]
    entry = EvidenceEntry.model_validate(example)
    assert entry.as_json() == example
    assert [k for k in EvidenceEntry.model_fields if f"| `{k}` |" not in section] == []
