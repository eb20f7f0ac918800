"""The simulated network's own SMS-DELIVER / SMS-STATUS-REPORT encoders
(``simbank.simulator.deliver_pdu``), checked against the client's independent decoder
``simbank.sms.pdu.decode_pdu`` (the simulator never imports it; the test may)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.simulator.deliver_pdu import (
    deliver_parts,
    encode_status_report,
    smsc_prefix,
    split_text,
    text_status_report,
    text_timestamp,
)
from simbank.simulator.pdu import Coding
from simbank.sms.pdu import Deliver, StatusReport, decode_pdu

WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
NUMBER = "+447700900123"


def _deliver(pdu: str) -> Deliver:
    decoded = decode_pdu(pdu)
    assert isinstance(decoded, Deliver)
    return decoded


# (text, ref16, coding, lengths of the parts in characters)
SPLITS = [
    ("hi", False, Coding.GSM7, [2]),
    ("a" * 160, False, Coding.GSM7, [160]),
    ("a" * 161, False, Coding.GSM7, [153, 8]),
    ("a" * 161, True, Coding.GSM7, [152, 9]),
    ("€" * 80, False, Coding.GSM7, [80]),  # 160 septets
    ("€" * 81, False, Coding.GSM7, [76, 5]),  # 2 septets each, 153 would split one
    ("a" + "€" * 80, False, Coding.GSM7, [77, 4]),  # 1 + 76 x 2 = 153 septets
    ("你" * 70, False, Coding.UCS2, [70]),
    ("你" * 71, False, Coding.UCS2, [67, 4]),
    ("Я" * 71, True, Coding.UCS2, [66, 5]),
    ("😀" * 35, False, Coding.UCS2, [35]),  # 70 code units
    ("😀" * 36, False, Coding.UCS2, [33, 3]),  # a surrogate pair is never split
    ("x" * 60 + "é" * 3 + "ё", False, Coding.UCS2, [64]),  # ё is not GSM-7
]


@pytest.mark.parametrize(("text", "ref16", "coding", "lengths"), SPLITS)
def test_split(text: str, ref16: bool, coding: Coding, lengths: list[int]) -> None:
    got_coding, parts = split_text(text, ref16=ref16)
    assert got_coding is coding
    assert [len(p) for p in parts] == lengths
    assert "".join(parts) == text


def test_too_many_parts_is_refused() -> None:
    with pytest.raises(ValueError, match="parts"):
        split_text("a" * 153 * 256)


@pytest.mark.parametrize(
    ("sender", "value", "toa"),
    [
        (NUMBER, NUMBER, 0x91),
        ("+15550100", "+15550100", 0x91),  # odd digit count: F filler
        ("15550100", "15550100", 0x81),
        ("Carrier", "Carrier", 0xD0),
        ("TESTNET", "TESTNET", 0xD0),
        ("Bank [EU]", "Bank [EU]", 0xD0),  # extension characters: 2 septets each
        ("ABCDEFGHIJKLMNOP", "ABCDEFGHIJK", 0xD0),  # networks cut at 11 septets
        ("Чат", "???", 0xD0),  # outside GSM-7
    ],
)
def test_originating_address(sender: str, value: str, toa: int) -> None:
    (part,) = deliver_parts(sender, "x", WHEN)
    deliver = _deliver(part.pdu)
    assert (deliver.sender.value, deliver.sender.type) == (value, toa)


def test_smsc_prefix_and_lengths() -> None:
    assert smsc_prefix().hex().upper() == "07915155100000F0"
    (part,) = deliver_parts(NUMBER, "Hello", WHEN)
    assert part.pdu.startswith("07915155100000F0")
    assert part.tpdu_length == len(part.pdu) // 2 - 8
    assert _deliver(part.pdu).smsc == "+15550100000"


def test_gsm7_extension_characters() -> None:
    text = "Price: 5€ [ok] {x} ^~\\|"
    (part,) = deliver_parts("Carrier", text, WHEN)
    deliver = _deliver(part.pdu)
    assert (deliver.text, deliver.coding.value, deliver.concat) == (text, "gsm7", None)
    assert deliver.timestamp == WHEN


@pytest.mark.parametrize(
    ("offset", "text"),
    [(timedelta(0), "26/03/04,05:06:07+00"), (timedelta(hours=5, minutes=30), "26/03/04,05:06:07+22"),
     (timedelta(hours=-3), "26/03/04,05:06:07-12")],
)  # fmt: skip
def test_time_stamps(offset: timedelta, text: str) -> None:
    when = WHEN.replace(tzinfo=timezone(offset))
    assert text_timestamp(when) == text
    (part,) = deliver_parts(NUMBER, "x", when)
    assert _deliver(part.pdu).timestamp == when


@pytest.mark.parametrize("ref16", [False, True])
def test_three_part_ucs2_message(ref16: bool) -> None:
    text = "你好，世界！" * 30  # 180 UCS-2 characters: 3 parts
    parts = deliver_parts(NUMBER, text, WHEN, reference=0x1234, ref16=ref16)
    decoded = [_deliver(p.pdu) for p in parts]
    assert [d.concat.sequence for d in decoded if d.concat] == [1, 2, 3]
    assert {(d.concat.reference, d.concat.total, d.concat.wide) for d in decoded if d.concat} == {
        (0x1234 if ref16 else 0x34, 3, ref16)
    }
    assert "".join(d.text for d in decoded) == text
    assert all(d.coding.value == "ucs2" for d in decoded)


@pytest.mark.parametrize("status", [0x00, 0x41, 0x60])
def test_status_report(status: int) -> None:
    later = WHEN + timedelta(seconds=3)
    pdu, length = encode_status_report(7, NUMBER, WHEN, later, status)
    report = decode_pdu(pdu)
    assert isinstance(report, StatusReport)
    assert (report.reference, report.recipient.value, report.status) == (7, NUMBER, status)
    assert (report.submitted, report.discharged) == (WHEN, later)
    assert length == len(pdu) // 2 - 8
    assert text_status_report(7, NUMBER, WHEN, later, status) == (
        f'6,7,"{NUMBER}",145,"26/03/04,05:06:07+00","26/03/04,05:06:10+00",{status}'
    )
    assert text_status_report(300, "15550100", WHEN, WHEN, 0).startswith('6,44,"15550100",129,')


TEXTS = st.text(
    alphabet=st.sampled_from([*"Hello, world 0123456789@£$¥èΔ_{}[]~^€|\\", "你", "Я", "😀"]),
    max_size=500,
)


@settings(max_examples=60, deadline=None)
@given(TEXTS, st.integers(0, 65535), st.booleans())
def test_any_text_round_trips_through_the_client_decoder(
    text: str, reference: int, ref16: bool
) -> None:
    parts = deliver_parts(NUMBER, text, WHEN, reference=reference, ref16=ref16)
    decoded = [_deliver(p.pdu) for p in parts]
    assert "".join(d.text for d in decoded) == text
    assert [d.text for d in decoded] == [p.text for p in parts]
    for part in parts:
        assert part.tpdu_length == len(bytes.fromhex(part.pdu)) - 8
        assert part.tpdu_length <= 176  # 140 octets of user data at most
    if len(parts) == 1:
        assert decoded[0].concat is None
    else:
        concats = [d.concat for d in decoded]
        assert [c.sequence for c in concats if c] == list(range(1, len(parts) + 1))
        assert {(c.reference, c.total) for c in concats if c} == {
            (reference if ref16 else reference % 256, len(parts))
        }
