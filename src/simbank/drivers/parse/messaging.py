"""SMS (27.005: +CMTI, +CMGR, +CMGL and +CMGS in text mode; +CMGR and +CMGL in PDU mode;
delivery reports +CDS in both modes and +CDSI; the +CMGF test answer) and USSD (27.007 §7.15
+CUSD; the string decoded by its dcs in :mod:`simbank.sms.ussd`).

PDU mode (27.005 §3.4.2 +CMGL, §3.4.3 +CMGR, §3.4.1 +CDS): a header with ``<stat>`` and the
TPDU's length, then the PDU as hex on the next line; the PDU itself is decoded by
:func:`simbank.sms.pdu.decode_pdu`. Pure: a PDU that does not decode becomes an
``SmsMessage(undecodable=True)`` holding the hex; logging is the driver's.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from simbank.drivers.parse.fields import (
    body_of,
    is_decimal,
    opt_int,
    split_fields,
    to_int,
    unquote,
)
from simbank.drivers.types import DeliveryReport, NewSms, SmsMessage, UssdReply
from simbank.errors import ProtocolGarbage
from simbank.sms.pdu import Deliver, DeliveryStatus, StatusReport, decode_pdu
from simbank.sms.ussd import decode_ussd

#: ``<stat>`` of PDU mode (27.005 §3.1) → the text-mode names.
PDU_STATS: dict[int, str] = {0: "REC UNREAD", 1: "REC READ", 2: "STO UNSENT", 3: "STO SENT"}
#: The ``<stat>`` values of received messages (stored SUBMITs are 2 and 3).
RECEIVED_STATS = frozenset({0, 1})

_SCTS = re.compile(r"(\d\d)/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)([+-]\d{1,2})?")


def parse_scts(text: str) -> datetime | None:
    """27.005 ``"yy/MM/dd,hh:mm:ss±zz"`` (zz in quarter hours) → aware datetime, else None."""
    match = _SCTS.fullmatch(unquote(text).strip())
    if match is None:
        return None
    yy, mo, dd, hh, mi, ss, zone = match.groups()
    quarters = int(zone) if zone else 0
    if not -56 <= quarters <= 56:
        return None
    try:
        return datetime(
            2000 + int(yy),
            int(mo),
            int(dd),
            int(hh),
            int(mi),
            int(ss),
            tzinfo=timezone(timedelta(minutes=15 * quarters)),
        )
    except ValueError:
        return None


def parse_cmti(line: str) -> NewSms:
    """``+CMTI: "SM",<index>``."""
    return _stored_at(line, "+CMTI")


def _stored_at(line: str, prefix: str) -> NewSms:
    """``<prefix>: <mem>,<index>``: something was stored at ``index`` of ``mem``."""
    _prefix, body = body_of(line, (prefix,))
    fields = split_fields(body, raw=line)
    if len(fields) < 2:
        raise ProtocolGarbage(f"{prefix} needs <mem>,<index>", raw=line)
    return NewSms(storage=unquote(fields[0]), index=to_int(fields[1], raw=line, what="<index>"))


def parse_cmgr(header: str, text: str) -> SmsMessage:
    """Text-mode ``+CMGR: <stat>,<oa>,[<alpha>],<scts>[,…]`` header plus its text line."""
    _prefix, body = body_of(header, ("+CMGR",))
    fields = split_fields(body, raw=header)
    if len(fields) < 2:
        raise ProtocolGarbage("+CMGR needs <stat>,<oa>", raw=header)
    status = unquote(fields[0])
    sender = unquote(fields[1]) or None
    timestamp = None
    if len(fields) > 4:
        # The timestamp contains a comma: "yy/MM/dd,hh:mm:ss+zz" arrives as two fields only
        # when unquoted; quoted it is one field.
        timestamp = parse_scts(fields[3])
        if timestamp is None:
            timestamp = parse_scts(f"{unquote(fields[3])},{unquote(fields[4])}")
    elif len(fields) > 3:
        timestamp = parse_scts(fields[3])
    return SmsMessage(status=status, sender=sender, timestamp=timestamp, text=text, raw=header)


def parse_cmgl(header: str, text: str) -> tuple[int, SmsMessage]:
    """Text-mode ``+CMGL: <index>,<stat>,<oa/da>,[<alpha>],[<scts>][,<tooa>,<length>]`` header
    plus its text → (storage index, message). 27.005 §3.4.2; the same fields as +CMGR after
    the index, so the timestamp is read the same way (quoted, or split at its comma)."""
    _prefix, body = body_of(header, ("+CMGL",))
    fields = split_fields(body, raw=header)
    if len(fields) < 3:
        raise ProtocolGarbage("+CMGL needs <index>,<stat>,<oa>", raw=header)
    index = to_int(fields[0], raw=header, what="<index>")
    status = unquote(fields[1])
    sender = unquote(fields[2]) or None
    timestamp = None
    if len(fields) > 4:
        timestamp = parse_scts(fields[4])
        if timestamp is None and len(fields) > 5:
            timestamp = parse_scts(f"{unquote(fields[4])},{unquote(fields[5])}")
    return index, SmsMessage(
        status=status, sender=sender, timestamp=timestamp, text=text, raw=header
    )


def stored_from_pdu(hex_pdu: str, status: str, *, raw: str = "") -> SmsMessage | DeliveryReport:
    """A stored PDU (``+CMGR``/``+CMGL`` in PDU mode) as a message or a delivery report.

    SMS-DELIVER → :class:`SmsMessage` (``concat``, ``coding`` set); SMS-STATUS-REPORT →
    :class:`DeliveryReport`; a stored SMS-SUBMIT → :class:`SmsMessage` with the destination
    as ``sender`` (as text mode shows it). A PDU that does not decode is kept as an
    ``SmsMessage(undecodable=True, text=<the hex>, sender=None)``: nothing is lost.
    """
    pdu = hex_pdu.strip()
    try:
        decoded = decode_pdu(pdu)
    except ProtocolGarbage:
        return SmsMessage(
            status=status, sender=None, timestamp=None, text=pdu, raw=raw, undecodable=True
        )
    if isinstance(decoded, StatusReport):
        return delivery_report(decoded, raw=pdu)
    concat = decoded.concat
    return SmsMessage(
        status=status,
        sender=(decoded.sender if isinstance(decoded, Deliver) else decoded.destination).value
        or None,
        timestamp=decoded.timestamp if isinstance(decoded, Deliver) else None,
        text=decoded.text,
        raw=raw,
        concat=(concat.reference, concat.total, concat.sequence) if concat else None,
        coding=decoded.coding.value,
    )


def delivery_report(report: StatusReport, *, raw: str = "") -> DeliveryReport:
    """The driver's view of a decoded SMS-STATUS-REPORT."""
    return DeliveryReport(
        reference=report.reference,
        status=report.status,
        outcome=report.outcome.value,
        recipient=report.recipient.value or None,
        discharged=report.discharged,
        raw=raw,
    )


def _pdu_stat(field: str, raw: str) -> int:
    """``<stat>`` of a PDU-mode header: a number; a modem left in text mode names it. Some
    ZTE firmware leaves it empty (``+CMGR: ,,27``; python-gsmmodem's
    ``test_receiveSmsPduMode_problemCases``): read as 0, received unread — the PDU itself
    says what the message is."""
    value = unquote(field)
    if not value.strip():
        return 0
    if is_decimal(value):
        return int(value)
    for number, name in PDU_STATS.items():
        if name == value.upper():
            return number
    raise ProtocolGarbage("<stat>: neither 0..3 nor a text-mode name", raw=raw)


def parse_cmgr_pdu(header: str, pdu: str) -> tuple[int, SmsMessage | DeliveryReport]:
    """PDU-mode ``+CMGR: <stat>,[<alpha>],<length>`` plus its PDU line → (stat, message)."""
    _prefix, body = body_of(header, ("+CMGR",))
    fields = split_fields(body, raw=header)
    if len(fields) < 2:
        raise ProtocolGarbage("+CMGR (PDU mode) needs <stat>,[<alpha>],<length>", raw=header)
    stat = _pdu_stat(fields[0], header)
    status = PDU_STATS.get(stat, str(stat))
    return stat, stored_from_pdu(pdu, status, raw=header.strip())


def parse_cmgl_pdu(header: str, pdu: str) -> tuple[int, int, SmsMessage | DeliveryReport]:
    """PDU-mode ``+CMGL: <index>,<stat>,[<alpha>],<length>`` plus its PDU line → (index,
    stat, message)."""
    _prefix, body = body_of(header, ("+CMGL",))
    fields = split_fields(body, raw=header)
    if len(fields) < 3:
        raise ProtocolGarbage(
            "+CMGL (PDU mode) needs <index>,<stat>,[<alpha>],<length>", raw=header
        )
    index = to_int(fields[0], raw=header, what="<index>")
    stat = _pdu_stat(fields[1], header)
    status = PDU_STATS.get(stat, str(stat))
    return index, stat, stored_from_pdu(pdu, status, raw=header.strip())


def parse_cds(line: str, pdu: str | None = None) -> DeliveryReport:
    """A ``+CDS`` URC (27.005 §3.4.1) in either form, as ``AT+CMGF`` was when it came.

    PDU mode: ``+CDS: <length>`` and the PDU on the next line (``pdu``). Text mode, one line:
    ``+CDS: <fo>,<mr>,[<ra>],[<tora>],<scts>,<dt>,<st>``, the time stamps quoted (each holds a
    comma, so unquoted they arrive as two fields each). ``<ra>`` of type 145 is international:
    given a "+" when the modem left it out.
    """
    _prefix, body = body_of(line, ("+CDS",))
    fields = split_fields(body, raw=line)
    if pdu is not None and len(fields) <= 2:
        try:
            decoded = decode_pdu(pdu)
        except ProtocolGarbage as exc:
            raise ProtocolGarbage(f"+CDS: {exc}", raw=line) from exc
        if not isinstance(decoded, StatusReport):
            raise ProtocolGarbage("+CDS carries no SMS-STATUS-REPORT", raw=line)
        return delivery_report(decoded, raw=pdu.strip())
    if len(fields) not in (7, 9):
        raise ProtocolGarbage(
            "+CDS (text mode) needs <fo>,<mr>,[<ra>],[<tora>],<scts>,<dt>,<st>", raw=line
        )
    reference = to_int(fields[1], raw=line, what="<mr>")
    status = to_int(fields[-1], raw=line, what="<st>")
    if reference > 255 or status > 255:
        raise ProtocolGarbage("+CDS: <mr> and <st> are octets", raw=line)
    recipient = unquote(fields[2]) or None
    if recipient and opt_int(fields[3]) == 145 and not recipient.startswith("+"):
        recipient = "+" + recipient
    stamps = fields[4:-1]
    if len(stamps) == 2:
        discharged = parse_scts(stamps[1])
    else:  # unquoted: "yy/MM/dd", "hh:mm:ss+zz" for each
        discharged = parse_scts(f"{unquote(stamps[2])},{unquote(stamps[3])}")
    return DeliveryReport(
        reference=reference,
        status=status,
        outcome=DeliveryStatus.of(status).value,
        recipient=recipient,
        discharged=discharged,
        raw=line.strip(),
    )


def text_report(header: str, prefix: str, skip: int) -> DeliveryReport | None:
    """A status report read in text mode: ``+CMGR: <stat>,<fo>,<mr>,…`` (``skip`` = 1) or
    ``+CMGL: <index>,<stat>,<fo>,<mr>,…`` (``skip`` = 2), the fields after ``skip`` those of a
    text-mode ``+CDS`` (27.005 §3.4.3). None for any other header (a message: its second
    field after ``skip - 1`` is a quoted address, not the bare ``<fo>``)."""
    _prefix, body = body_of(header, (prefix,))
    fields = split_fields(body, raw=header)
    rest = fields[skip:]
    if len(rest) not in (7, 9) or not is_decimal(rest[0]):
        return None
    return parse_cds("+CDS: " + ",".join(rest))


def parse_cdsi(line: str) -> NewSms:
    """``+CDSI: <mem>,<index>`` (27.005 §3.4.1): a status report was stored, often in "SR"."""
    return _stored_at(line, "+CDSI")


def parse_cmgs(line: str) -> int:
    """``+CMGS: <mr>[,<scts>]`` → message reference."""
    _prefix, body = body_of(line, ("+CMGS",))
    return to_int(split_fields(body, raw=line)[0], raw=line, what="<mr>")


_CMGF_MODES = re.compile(r"\s*\(?\s*([0-9]+(?:\s*[-,]\s*[0-9]+)*)\s*\)?\s*")


def parse_cmgf_modes(line: str) -> frozenset[int]:
    """The message formats a ``+CMGF: (0,1)`` test answer lists (0 = PDU, 1 = text); ranges
    (``(0-1)``), a bare list (``0,1``) or one value (``(1)``) too. An unreadable list is the
    empty set; a line that is not ``+CMGF`` raises ProtocolGarbage."""
    _, body = body_of(line, ("+CMGF",))
    match = _CMGF_MODES.fullmatch(body)
    if match is None:
        return frozenset()
    modes: set[int] = set()
    for item in match.group(1).split(","):
        low, _, high = item.partition("-")
        first = int(low)
        last = int(high) if high.strip() else first
        if last - first > 8:  # nonsense: a format list is tiny
            return frozenset()
        modes.update(range(first, last + 1))
    return frozenset(modes)


def parse_cusd(line: str) -> UssdReply:
    """``+CUSD: <m>[,<str>[,<dcs>]]``; ``<str>`` decoded by its dcs and by what it turns out
    to hold (packed GSM-7 hex, UCS-2 hex, 8-bit hex or text as it came: :func:`decode_ussd`).
    The text is kept whatever ``<m>`` says (m=2 can carry the real reply)."""
    _prefix, body = body_of(line, ("+CUSD",))
    fields = split_fields(body, raw=line)
    status = to_int(fields[0], raw=line, what="<m>")
    text = unquote(fields[1]) if len(fields) > 1 else None
    dcs = opt_int(fields[2]) if len(fields) > 2 else None
    if text:
        text = decode_ussd(text, dcs)
    return UssdReply(status=status, text=text, dcs=dcs, raw=line.strip())
