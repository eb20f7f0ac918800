"""SMS (27.005 text mode: +CMTI, +CMGR, +CMGL, +CMGS; the +CMGF test answer) and USSD (27.007 §7.15 +CUSD; the
string decoded by its dcs in :mod:`simbank.sms.ussd`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from simbank.drivers.parse.fields import body_of, opt_int, split_fields, to_int, unquote
from simbank.drivers.types import NewSms, SmsMessage, UssdReply
from simbank.errors import ProtocolGarbage
from simbank.sms.ussd import decode_ussd

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
    _prefix, body = body_of(line, ("+CMTI",))
    fields = split_fields(body, raw=line)
    if len(fields) < 2:
        raise ProtocolGarbage("+CMTI needs <mem>,<index>", raw=line)
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
