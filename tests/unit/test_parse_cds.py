"""Delivery reports and PDU-mode stored messages, parsed (27.005 §3.4.1 +CDS/+CDSI, §3.4.2
+CMGL, §3.4.3 +CMGR): pure parser tables, and how the AT codec frames the two +CDS forms.

Captures (every phone number replaced by a fictional one of the same length, the PDUs
re-encoded by swapping only the address digits; all other octets as published):

* ``REPORT_PDU``: python-gsmmodem @ 834c68b1, test/test_pdu.py ``test_decode`` (the
  SMS-STATUS-REPORT, reference 214), recipient +31 6… → +1 555 0100 034.
* ``TEXT_REPORT``: python-gsmmodem @ 834c68b1, test/test_modem.py
  ``test_receiveStatusReportTextMode`` (a text-mode ``+CMGR`` of a status report, stat left
  empty), recipient "0870000000" → "07700900123".
* ``MEGAFON_PDU``: python-gsmmodem @ 834c68b1, test/test_pdu.py ``test_decode`` (UCS-2,
  part 1 of 2, alphanumeric sender "Megafon" kept), SMSC → +1 555 0100 000.
* ``INVALID_PDU``: ModemManager @ 9a2d5863, src/tests/test-sms-part-3gpp.c
  ``test_pdu_no_address`` (``00 0A BF 00``, no number in it), and ``test_pdu_wrong_address_size``
  (``00 1C 01 1C``).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.at.codec import AtCodec
from simbank.at.results import Command, Response, Urc
from simbank.drivers.parse.messaging import (
    parse_cds,
    parse_cdsi,
    parse_cmgl_pdu,
    parse_cmgr_pdu,
    stored_from_pdu,
    text_report,
)
from simbank.drivers.types import DeliveryReport, NewSms, SmsMessage
from simbank.errors import ProtocolGarbage
from simbank.sms.pdu import DeliveryStatus, encode_submit

REPORT_PDU = "0006D60B915155100030F4111011719551401110117195714000"
REPORT_TPDU_LENGTH = 25
TEXT_REPORT = '+CMGR: ,6,20,"07700900123",129,"13/04/29,19:58:00+04","13/04/29,19:59:00+04",0'
MEGAFON_PDU = (
    "07915155100000F0400DD0CDF2396C7EBB010008415072411084618C0500035602010053004D0053002000"
    "63006F00640065003A00200034003800350036002C00200063006F006E006600690072006D006100740069"
    "006F006E0020006F00660020006100730073006F00630069006100740069006F006E002000620065007400"
    "7700650065006E0020006100630063006F0075006E007400200061006E00640020004D00650067"
)
INVALID_PDU = "000ABF00"
PLUS1 = timezone(timedelta(hours=1))  # "+04": four quarter hours


# -- +CDS ---------------------------------------------------------------------------------------


def test_a_pdu_mode_cds_is_the_status_report_it_carries() -> None:
    report = parse_cds(f"+CDS: {REPORT_TPDU_LENGTH}", REPORT_PDU)
    assert report == DeliveryReport(
        reference=214,
        status=0,
        outcome="delivered",
        recipient="+15550100034",
        discharged=datetime(2011, 1, 11, 17, 59, 17, tzinfo=PLUS1),
        raw=REPORT_PDU,
    )
    assert report.final


@pytest.mark.parametrize(
    ("line", "reference", "status", "outcome", "recipient", "discharged"),
    [
        # the python-gsmmodem capture's fields as a +CDS line (quoted time stamps)
        (
            '+CDS: 6,20,"07700900123",129,"13/04/29,19:58:00+04","13/04/29,19:59:00+04",0',
            20,
            0,
            "delivered",
            "07700900123",
            datetime(2013, 4, 29, 19, 59, tzinfo=PLUS1),
        ),
        # international without its "+": type 145 gives it one
        (
            '+CDS: 6,7,"447700900123",145,"24/01/02,03:04:05+00","24/01/02,03:04:09+00",32',
            7,
            32,
            "pending",
            "+447700900123",
            datetime(2024, 1, 2, 3, 4, 9, tzinfo=UTC),
        ),
        # unquoted time stamps arrive as two fields each
        (
            "+CDS: 6,255,+447700900123,145,24/01/02,03:04:05-08,24/01/02,03:05:00-08,70",
            255,
            70,
            "failed",
            "+447700900123",
            datetime(2024, 1, 2, 3, 5, tzinfo=timezone(timedelta(hours=-2))),
        ),
        # no recipient, no type; an unreadable discharge time
        ('+CDS: 6,1,,,"24/01/02,03:04:05+00","garbage",96', 1, 96, "expired", None, None),
    ],
)
def test_a_text_mode_cds(
    line: str,
    reference: int,
    status: int,
    outcome: str,
    recipient: str | None,
    discharged: datetime | None,
) -> None:
    report = parse_cds(line)
    assert (report.reference, report.status, report.outcome) == (reference, status, outcome)
    assert report.recipient == recipient
    assert report.discharged == discharged
    assert report.raw == line
    assert report.final is (outcome != "pending")


@pytest.mark.parametrize(
    ("line", "pdu"),
    [
        ("+CDS: 25", None),  # PDU form without its PDU line
        ("+CDS: 25", "zz"),  # not hex
        ("+CDS: 4", INVALID_PDU),  # cut short
        ("+CDS: 3", encode_submit("+447700900123", "hi")[0].hex),  # a SUBMIT, not a report
        ("+CDS: 6,20", None),
        ('+CDS: 6,x,"07700900123",129,"a","b",0', None),
        ('+CDS: 6,999,"07700900123",129,"a","b",0', None),
        ('+CDS: 6,1,"07700900123",129,"a","b",256', None),
        ('+CDS: 6,1,"077009,"b",0', None),  # an unterminated quote
        ("+CMT: 25", REPORT_PDU),  # not a +CDS
    ],
)
def test_a_cds_that_is_no_report_is_protocol_garbage(line: str, pdu: str | None) -> None:
    with pytest.raises(ProtocolGarbage):
        parse_cds(line, pdu)


@given(st.integers(min_value=0, max_value=255))
def test_every_tp_st_has_the_outcome_of_its_class(status: int) -> None:
    line = f'+CDS: 6,9,"+447700900123",145,"24/01/02,03:04:05+00","24/01/02,03:04:05+00",{status}'
    report = parse_cds(line)
    assert report.status == status
    assert report.outcome == DeliveryStatus.of(status).value


@given(st.text(max_size=60))
def test_parse_cds_raises_nothing_but_protocol_garbage(body: str) -> None:
    with contextlib.suppress(ProtocolGarbage):
        parse_cds("+CDS: " + body)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('+CDSI: "SR",3', NewSms("SR", 3)),
        ('+CDSI: "SM",12', NewSms("SM", 12)),
        ("+CDSI: ME,0", NewSms("ME", 0)),
    ],
)
def test_cdsi_names_the_storage_and_index(line: str, expected: NewSms) -> None:
    assert parse_cdsi(line) == expected


@pytest.mark.parametrize("line", ['+CDSI: "SR"', '+CDSI: "SR",x', "+CMTI: 1,2"])
def test_a_bad_cdsi_is_protocol_garbage(line: str) -> None:
    with pytest.raises(ProtocolGarbage):
        parse_cdsi(line)


# -- status reports read in text mode -----------------------------------------------------------


def test_a_text_mode_cmgr_of_a_status_report_is_a_delivery_report() -> None:
    report = text_report(TEXT_REPORT, "+CMGR", 1)
    assert report is not None
    assert (report.reference, report.outcome, report.recipient) == (20, "delivered", "07700900123")


@pytest.mark.parametrize(
    ("header", "prefix", "skip", "is_report"),
    [
        (TEXT_REPORT, "+CMGR", 1, True),
        (TEXT_REPORT.replace("+CMGR: ", "+CMGL: 4,"), "+CMGL", 2, True),
        ('+CMGR: "REC READ","+447700900454",,"07/07/05,09:56:03+08"', "+CMGR", 1, False),
        ('+CMGL: 1,"REC UNREAD","+447700900454",,"07/07/05,09:56:03+08"', "+CMGL", 2, False),
        ("+CMGR: 0,,24", "+CMGR", 1, False),  # a PDU-mode header
    ],
)
def test_text_report_tells_reports_from_messages(
    header: str, prefix: str, skip: int, is_report: bool
) -> None:
    assert (text_report(header, prefix, skip) is not None) is is_report


# -- PDU-mode stored messages -------------------------------------------------------------------


def test_a_stored_ucs2_part_with_an_alphanumeric_sender() -> None:
    index, stat, message = parse_cmgl_pdu("+CMGL: 7,1,,140", MEGAFON_PDU)
    assert (index, stat) == (7, 1)
    assert message == SmsMessage(
        status="REC READ",
        sender="Megafon",
        timestamp=datetime(2014, 5, 27, 14, 1, 48, tzinfo=timezone(timedelta(hours=4))),
        text="SMS code: 4856, confirmation of association between account and Meg",
        raw="+CMGL: 7,1,,140",
        concat=(0x56, 2, 1),
        coding="ucs2",
    )


def test_a_stored_status_report_reads_as_a_delivery_report() -> None:
    stat, message = parse_cmgr_pdu(f"+CMGR: 0,,{REPORT_TPDU_LENGTH}", REPORT_PDU)
    assert stat == 0
    assert isinstance(message, DeliveryReport)
    assert (message.reference, message.outcome) == (214, "delivered")


def test_a_stored_submit_shows_its_destination_like_text_mode() -> None:
    pdu = encode_submit("+447700900123", "你好")[0]
    stat, message = parse_cmgr_pdu(f"+CMGR: 3,,{pdu.tpdu_length}", pdu.hex)
    assert stat == 3
    assert isinstance(message, SmsMessage)
    assert (message.status, message.sender, message.text, message.coding) == (
        "STO SENT",
        "+447700900123",
        "你好",
        "ucs2",
    )


@pytest.mark.parametrize("pdu", [INVALID_PDU, "001C011C", "0", "not hex", ""])
def test_a_pdu_that_does_not_decode_is_kept_as_hex(pdu: str) -> None:
    message = stored_from_pdu(pdu, "REC UNREAD", raw="+CMGL: 1,0,,4")
    assert message == SmsMessage(
        status="REC UNREAD",
        sender=None,
        timestamp=None,
        text=pdu,
        raw="+CMGL: 1,0,,4",
        undecodable=True,
    )


@pytest.mark.parametrize(
    ("header", "stat"),
    [
        ("+CMGL: 1,0,,35", 0),
        ('+CMGL: 1,"REC READ",,35', 1),  # a modem that names the stat anyway
        ("+CMGL: 1,2,,35", 2),
    ],
)
def test_the_stat_of_a_pdu_mode_header(header: str, stat: int) -> None:
    assert parse_cmgl_pdu(header, REPORT_PDU)[1] == stat


@pytest.mark.parametrize(
    ("header", "parse"),
    [
        ("+CMGL: 1", parse_cmgl_pdu),
        ("+CMGL: x,0,,35", parse_cmgl_pdu),
        ('+CMGL: 1,"WHAT",,35', parse_cmgl_pdu),
        ("+CMGR: 0", parse_cmgr_pdu),
        ("+CMGS: 0,,35", parse_cmgr_pdu),
    ],
)
def test_a_bad_pdu_mode_header_is_protocol_garbage(header: str, parse: object) -> None:
    with pytest.raises(ProtocolGarbage):
        parse(header, REPORT_PDU)  # type: ignore[operator]


# -- how the codec frames them ------------------------------------------------------------------


def _urcs(data: bytes) -> list[Urc]:
    codec = AtCodec()
    return [event for event in codec.feed(data) if isinstance(event, Urc)]


def test_the_codec_takes_a_pdu_mode_cds_with_its_pdu_line() -> None:
    urcs = _urcs(f"\r\n+CDS: {REPORT_TPDU_LENGTH}\r\n{REPORT_PDU}\r\n".encode())
    assert urcs == [Urc("+CDS", f"+CDS: {REPORT_TPDU_LENGTH}", REPORT_PDU)]


def test_the_codec_takes_a_text_mode_cds_as_one_line() -> None:
    line = '+CDS: 6,20,"+447700900123",145,"13/04/29,19:58:00+04","13/04/29,19:59:00+04",0'
    urcs = _urcs(f'\r\n{line}\r\n\r\n+CMTI: "SM",3\r\n'.encode())
    assert urcs == [Urc("+CDS", line), Urc("+CMTI", '+CMTI: "SM",3')]


def test_a_text_mode_status_report_read_has_no_text_line() -> None:
    codec = AtCodec()
    codec.send(Command("AT+CMGR=57", prefix="+CMGR"))
    events = codec.feed(f"\r\n{TEXT_REPORT}\r\n\r\nOK\r\n".encode())
    responses = [event for event in events if isinstance(event, Response)]
    assert len(responses) == 1
    assert responses[0].ok
    assert responses[0].lines == (TEXT_REPORT,)
