"""The ledger's inbox, parts, delivery reports and balance checks, on real SQLite files."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.store.inbox import MISSING_MARK, assemble
from simbank.store.ledger import Ledger

ICCID = "89860012345678901234"
OTHER = "89860012345678905678"
SENDER = "+447700900123"
T0 = 1_780_000_000.0


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "state", durable=False) as opened:
        yield opened


def _part(ledger: Ledger, seq: int, *, at: float = T0, total: int = 3, ref: int = 42) -> object:
    return ledger.store_inbound_part(
        ICCID,
        at,
        SENDER,
        f"part{seq}",
        reference=ref,
        total=total,
        sequence=seq,
        sent_at="26/12/06,10:00:00+00",
        modem="m1",
        shown_sender="+44*******23",
    )


def test_parts_across_a_reopen_become_one_message_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Ledger.open(state, durable=False) as first:
        assert _part(first, 2).sms_id is None  # type: ignore[attr-defined]
        assert _part(first, 1).sms_id is None  # type: ignore[attr-defined]
        assert first.waiting_parts() == 2
    with Ledger.open(state, durable=False) as second:
        stored = second.store_inbound_part(
            ICCID, T0 + 5, SENDER, "part3", reference=42, total=3, sequence=3, modem="m1"
        )
        assert stored.sms_id is not None and not stored.duplicate
        (sms,) = second.inbound_sms(ICCID)
        assert sms.text == "part1part2part3"
        assert sms.parts == 3 and sms.missing == ()
        assert sms.sender != SENDER  # kept as its keyed hash
        assert sms.shown_sender == "+44*******23"
        assert second.waiting_parts() == 0
        # A part read again after the group was assembled is ignored.
        again = _part(second, 2, at=T0 + 9)
        assert again.duplicate  # type: ignore[attr-defined]
        assert len(second.inbound_sms(ICCID)) == 1


def test_a_repeated_part_is_kept_once(ledger: Ledger) -> None:
    _part(ledger, 1)
    assert _part(ledger, 1).duplicate  # type: ignore[attr-defined]
    assert ledger.waiting_parts() == 1


def test_incomplete_groups_are_given_up_after_the_timeout_with_what_came(ledger: Ledger) -> None:
    _part(ledger, 1)
    _part(ledger, 3, at=T0 + 10)
    assert ledger.expire_inbound_parts(T0 + 50, timeout_s=100) == []
    (sms_id,) = ledger.expire_inbound_parts(T0 + 100, timeout_s=100)
    (sms,) = ledger.inbound_sms(ICCID)
    assert sms.id == sms_id
    assert sms.missing == (2,)
    # The late part 2 is never dropped: a message of its own, kept once.
    late = _part(ledger, 2, at=T0 + 120)
    assert late.sms_id is not None  # type: ignore[attr-defined]
    assert _part(ledger, 2, at=T0 + 121).duplicate  # type: ignore[attr-defined]
    assert [(s.text, s.missing) for s in ledger.inbound_sms(ICCID)] == [
        (f"part1{MISSING_MARK}part3", (2,)),
        (assemble({2: "part2"}, 3)[0], (1, 3)),
    ]
    # Long after, the remembered parts are forgotten.
    ledger.expire_inbound_parts(T0 + 1000, timeout_s=100)
    assert ledger.waiting_parts() == 0


def test_groups_differ_by_sim_sender_reference_and_total(ledger: Ledger) -> None:
    for ref in (1, 2):
        ledger.store_inbound_part(ICCID, T0, SENDER, "a", reference=ref, total=2, sequence=1)
    ledger.store_inbound_part(OTHER, T0, SENDER, "a", reference=1, total=2, sequence=1)
    ledger.store_inbound_part(ICCID, T0, "+447700900124", "a", reference=1, total=2, sequence=1)
    assert ledger.waiting_parts() == 4
    done = ledger.store_inbound_part(ICCID, T0, SENDER, "b", reference=2, total=2, sequence=2)
    assert done.sms_id is not None
    assert [s.text for s in ledger.inbound_sms()] == ["ab"]


def test_inbox_pages_filters_and_acknowledgements(ledger: Ledger) -> None:
    ids = [
        ledger.store_inbound_sms(
            ICCID if n % 2 else OTHER, T0 + n, SENDER, f"m{n}", n, modem=f"m{n % 2}"
        )
        for n in range(1, 8)
    ]
    assert all(ids)
    first = ledger.inbox(iccid=ICCID, limit=2)
    assert [s.text for s in first] == ["m1", "m3"]
    second = ledger.inbox(iccid=ICCID, after=first[-1].id, limit=2)
    assert [s.text for s in second] == ["m5", "m7"]
    assert [s.text for s in ledger.inbox(modem="m0")] == ["m2", "m4", "m6"]
    assert [s.text for s in ledger.inbox(since=T0 + 6)] == ["m6", "m7"]
    assert ledger.unread_counts() == {ICCID: 4, OTHER: 3}
    acked = ledger.ack_inbound(T0 + 100, ids=[first[0].id, first[0].id, 9999])
    assert acked == {ICCID: 1}
    assert ledger.ack_inbound(T0 + 101, iccid=OTHER, up_to=ids[3]) == {OTHER: 2}
    assert ledger.unread_counts() == {ICCID: 3, OTHER: 1}
    assert [s.text for s in ledger.inbox(unread_only=True)] == ["m3", "m5", "m6", "m7"]
    assert ledger.inbox(iccid=ICCID)[0].acked_at == T0 + 100
    # Acknowledging again changes nothing.
    assert ledger.ack_inbound(T0 + 102, ids=[first[0].id]) == {}


def test_delivery_reports_settle_a_message_once(ledger: Ledger) -> None:
    ledger.record_sent(
        7,
        transaction='"t-1"',
        iccid=ICCID,
        modem="m1",
        references=[254, 255, 0],
        now=T0,
        report_requested=True,
    )
    first = ledger.delivery_report("m1", 255, "delivered", 0, T0 + 5)
    assert first is not None and first.status == "pending" and not first.settled
    assert ledger.delivery_report("m2", 254, "delivered", 0, T0 + 5) is None  # other modem
    ledger.delivery_report("m1", 254, "delivered", 0, T0 + 6)
    last = ledger.delivery_report("m1", 0, "delivered", 0, T0 + 7)
    assert last is not None and last.settled and last.status == "delivered"
    assert last.transaction == '"t-1"' and last.message == 7 and last.delivered == 3
    # A report repeated for a final segment matches nothing.
    assert ledger.delivery_report("m1", 0, "delivered", 0, T0 + 8) is None
    assert ledger.delivery_summary(ICCID, T0 - 1) == {
        "delivered": 1,
        "failed": 0,
        "pending": 0,
        "unreported": 0,
    }


def test_a_reference_reused_after_wrapping_matches_the_latest_send(ledger: Ledger) -> None:
    for message, at in ((1, T0), (2, T0 + 60)):
        ledger.record_sent(
            message,
            transaction=None,
            iccid=ICCID,
            modem="m1",
            references=[9],
            now=at,
            report_requested=True,
        )
    failed = ledger.delivery_report("m1", 9, "failed", 0x41, T0 + 61)
    assert failed is not None and failed.message == 2 and failed.settled
    assert failed.status == "failed" and failed.status_code == 0x41
    summary = ledger.delivery_summary(ICCID, T0 - 1)
    assert summary["failed"] == 1 and summary["pending"] == 1


def test_balance_checks_survive_a_reopen(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Ledger.open(state, durable=False) as first:
        first.record_balance(
            ICCID, Decimal("0.50"), low=True, now=T0, calls_at_check=4, detail={"floor": "1"}
        )
    with Ledger.open(state, durable=False) as second:
        record = second.balances()[ICCID]
        assert record.amount == Decimal("0.50") and record.low and record.calls_at_check == 4
        second.record_balance(ICCID, None, low=False, now=T0 + 1, calls_at_check=5, detail={})
        assert second.balances()[ICCID].amount is None


@settings(max_examples=50, deadline=None)
@given(
    total=st.integers(min_value=1, max_value=8),
    present=st.sets(st.integers(min_value=1, max_value=8)),
)
def test_assemble_keeps_every_present_part_in_order(total: int, present: set[int]) -> None:
    texts = {seq: f"<{seq}>" for seq in present if seq <= total}
    text, missing = assemble(texts, total)
    assert set(missing) == set(range(1, total + 1)) - set(texts)
    positions = [text.index(f"<{seq}>") for seq in sorted(texts)]
    assert positions == sorted(positions)


def _notice(ledger: Ledger, seq: int, text: str, at: float, sent_at: str) -> object:
    return ledger.store_inbound_part(
        ICCID, at, "10010", text, reference=7, total=2, sequence=seq, sent_at=sent_at
    )


def test_a_sender_reusing_its_reference_loses_nothing(ledger: Ledger) -> None:
    """Short codes and constant-reference senders re-use (reference, total): a later message
    under the same key is a new message, not a re-read duplicate (found in review)."""
    _notice(ledger, 1, "first 1 ", T0, "10:00")
    assert _notice(ledger, 2, "first 2", T0 + 1, "10:00").sms_id is not None  # type: ignore[attr-defined]
    # The same part read again (a crash before its delete) is still a duplicate.
    assert _notice(ledger, 2, "first 2", T0 + 2, "10:00").duplicate  # type: ignore[attr-defined]
    _notice(ledger, 1, "second 1 ", T0 + 1800, "10:30")
    second = _notice(ledger, 2, "second 2", T0 + 1801, "10:30")
    assert second.sms_id is not None  # type: ignore[attr-defined]
    assert [s.text for s in ledger.inbound_sms(ICCID)] == ["first 1 first 2", "second 1 second 2"]


def test_a_reused_reference_closes_a_waiting_group_with_what_came(ledger: Ledger) -> None:
    _notice(ledger, 1, "lonely 1 ", T0, "10:00")
    displaced = _notice(ledger, 1, "next 1 ", T0 + 60, "10:01")
    assert displaced.closed is not None and displaced.sms_id is None  # type: ignore[attr-defined]
    done = _notice(ledger, 2, "next 2", T0 + 61, "10:01")
    assert done.sms_id is not None  # type: ignore[attr-defined]
    assert [(s.text, s.missing) for s in ledger.inbound_sms(ICCID)] == [
        (assemble({1: "lonely 1 "}, 2)[0], (2,)),
        ("next 1 next 2", ()),
    ]


def test_reports_match_only_sends_that_asked_from_the_sim_they_reach(ledger: Ledger) -> None:
    """TP-MR is a counter on each SIM: two SIMs of one modem reuse references, and a send
    that asked for no report never takes one (found in review)."""
    ledger.record_sent(
        1, transaction='"a"', iccid=ICCID, modem="m1", references=[5], now=T0,
        report_requested=True,
    )  # fmt: skip
    ledger.record_sent(
        2, transaction='"b"', iccid=ICCID, modem="m1", references=[5], now=T0 + 600,
        report_requested=False,
    )  # fmt: skip
    ledger.record_sent(
        3, transaction='"c"', iccid=OTHER, modem="m1", references=[5], now=T0 + 700,
        report_requested=True,
    )  # fmt: skip
    mine = ledger.delivery_report("m1", 5, "delivered", 0, T0 + 800, iccid=ICCID)
    assert mine is not None and mine.message == 1
    other = ledger.delivery_report("m1", 5, "failed", 0x41, T0 + 801, iccid=OTHER)
    assert other is not None and other.message == 3
    assert ledger.delivery_report("m1", 5, "delivered", 0, T0 + 802, iccid=ICCID) is None
