"""SMS PDUs (3GPP TS 23.040 §9.2.2): SMS-SUBMIT encoded, one per segment; SMS-DELIVER,
SMS-SUBMIT and SMS-STATUS-REPORT decoded, with the SMSC prefix of 27.005 PDU mode.

Written here rather than taken from a library: ``smspdudecoder`` (PyPI) decodes DELIVER and
SUBMIT but encodes nothing, has no STATUS-REPORT, reads through ``io.StringIO`` and pulls in
``bitstring`` and ``pytz``; no maintained library we found encodes concatenated SUBMITs with
a status-report request. The alphabet itself comes from ``gsm0338``
(:mod:`simbank.sms.alphabet`); packing, headers and addresses are the sibling modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from simbank.errors import ProtocolGarbage
from simbank.sms.address import (
    Address,
    decode_address,
    decode_timestamp,
    encode_address,
    split_smsc,
)
from simbank.sms.alphabet import decode_septets, encode_septets
from simbank.sms.dcs import Coding, sms_coding
from simbank.sms.segments import segment
from simbank.sms.septets import pack, unpack
from simbank.sms.udh import Concat, concat_header, parse_udh

__all__ = [
    "Deliver",
    "DeliveryStatus",
    "StatusReport",
    "Submit",
    "SubmitPdu",
    "decode_pdu",
    "decode_tpdu",
    "encode_submit",
    "relative_validity",
    "split_smsc",
]

_MTI_DELIVER, _MTI_SUBMIT, _MTI_STATUS_REPORT = 0, 1, 2
_UDHI = 0x40
_SRR = 0x20  # status report request (SUBMIT); status report indication (DELIVER)
_VPF_RELATIVE = 0x10
_DCS = {Coding.GSM7: 0x00, Coding.UCS2: 0x08}


@dataclass(frozen=True, slots=True)
class SubmitPdu:
    """One segment ready for ``AT+CMGS=<tpdu_length>`` then ``hex`` and Ctrl-Z."""

    hex: str  # the whole PDU, SMSC prefix "00" (the SIM's SMSC) included
    tpdu_length: int  # octets after the SMSC prefix: what AT+CMGS wants


@dataclass(frozen=True, slots=True)
class Deliver:
    """An SMS-DELIVER. ``sender`` is a phone number (mask it in logs) or a name."""

    smsc: str | None
    sender: Address
    timestamp: datetime | None
    coding: Coding
    text: str  # 8-bit data shown as Latin-1
    data: bytes  # the user data after the header (septet values for GSM-7)
    concat: Concat | None
    status_report_indication: bool = False


@dataclass(frozen=True, slots=True)
class Submit:
    """An SMS-SUBMIT (one we stored or sent)."""

    smsc: str | None
    reference: int
    destination: Address
    coding: Coding
    text: str
    concat: Concat | None
    status_report_request: bool


class DeliveryStatus(StrEnum):
    """TP-ST (23.040 §9.2.3.15) in four outcomes."""

    DELIVERED = "delivered"  # 0x00..0x1F: the transaction completed
    PENDING = "pending"  # 0x20..0x3F: temporary error, the SMSC is still trying
    FAILED = "failed"  # 0x40..0x5F: permanent error, the SMSC stopped
    EXPIRED = "expired"  # 0x60..0x7F: temporary error, but the SMSC stopped trying

    @classmethod
    def of(cls, status: int) -> DeliveryStatus:
        return (cls.DELIVERED, cls.PENDING, cls.FAILED, cls.EXPIRED)[(status >> 5) & 0x3]

    @property
    def final(self) -> bool:
        return self is not DeliveryStatus.PENDING


@dataclass(frozen=True, slots=True)
class StatusReport:
    """An SMS-STATUS-REPORT: the fate of the message we sent with reference ``reference``."""

    smsc: str | None
    reference: int
    recipient: Address
    submitted: datetime | None  # the SMSC's time stamp of the original message
    discharged: datetime | None  # when it was delivered, or the status last changed
    status: int  # TP-ST

    @property
    def outcome(self) -> DeliveryStatus:
        return DeliveryStatus.of(self.status)


def relative_validity(minutes: int) -> int:
    """TP-VP relative format (23.040 §9.2.3.12.1) for at least ``minutes`` (5 min .. 63 weeks)."""
    if minutes <= 0:
        raise ValueError("a validity period is positive")
    if minutes <= 720:
        return (minutes + 4) // 5 - 1
    if minutes <= 1440:
        return 143 + (minutes - 720 + 29) // 30
    days = (minutes + 1439) // 1440
    if days <= 30:
        return 166 + days
    return min(192 + (days + 6) // 7, 255)


def _user_data(text: str, coding: Coding, header: bytes) -> tuple[int, bytes]:
    """(TP-UDL, TP-UD) for ``text`` after ``header`` (its length octet included)."""
    if coding is Coding.GSM7:
        septets = encode_septets(text)
        fill = (7 - (len(header) * 8) % 7) % 7
        header_septets = (len(header) * 8 + fill) // 7
        return header_septets + len(septets), header + pack(septets, fill)
    body = text.encode("utf-16-be")
    return len(header) + len(body), header + body


def encode_submit(
    number: str,
    text: str,
    *,
    reference: int = 0,
    validity_minutes: int | None = None,
    status_report: bool = False,
) -> list[SubmitPdu]:
    """``text`` to ``number`` as SMS-SUBMIT PDUs, one per segment (:mod:`~simbank.sms.segments`).

    ``reference`` is the concatenation reference shared by the parts (0..255); TP-MR is 00
    (the modem assigns it). The SMSC prefix is ``00``: the SIM's service centre.
    """
    plan = segment(text)
    destination = encode_address(number)
    out: list[SubmitPdu] = []
    for sequence, part in enumerate(plan.parts, start=1):
        header = concat_header(reference, plan.count, sequence) if plan.concatenated else b""
        first = _MTI_SUBMIT
        if header:
            first |= _UDHI
        if status_report:
            first |= _SRR
        vp = b""
        if validity_minutes is not None:
            first |= _VPF_RELATIVE
            vp = bytes((relative_validity(validity_minutes),))
        udl, ud = _user_data(part, plan.coding, header)
        tpdu = bytes((first, 0)) + destination + bytes((0, _DCS[plan.coding])) + vp
        tpdu += bytes((udl,)) + ud
        out.append(SubmitPdu(hex="00" + tpdu.hex().upper(), tpdu_length=len(tpdu)))
    return out


def _read_user_data(
    tpdu: bytes, offset: int, coding: Coding, has_header: bool
) -> tuple[str, bytes, Concat | None]:
    """(text, data after the header, concatenation) of the TP-UDL/TP-UD at ``offset``."""
    raw = tpdu.hex().upper()
    if offset >= len(tpdu):
        raise ProtocolGarbage("PDU ends before TP-UDL", raw=raw)
    udl = tpdu[offset]
    ud = tpdu[offset + 1 :]
    header_octets = 0
    concat = None
    if has_header and ud:
        header_octets = 1 + ud[0]
        if header_octets > len(ud):
            raise ProtocolGarbage("user data header longer than the user data", raw=raw)
        concat = parse_udh(ud[1:header_octets]).concat
    if coding is Coding.GSM7:
        fill = (7 - (header_octets * 8) % 7) % 7
        skip = (header_octets * 8 + fill) // 7
        if udl < skip:
            raise ProtocolGarbage("TP-UDL shorter than the header", raw=raw)
        try:
            septets = unpack(ud[header_octets:], udl - skip, fill)
        except ValueError as exc:
            raise ProtocolGarbage(f"user data cut short: {exc}", raw=raw) from exc
        return decode_septets(septets), septets, concat
    if udl > len(ud) or udl < header_octets:
        raise ProtocolGarbage("user data cut short", raw=raw)
    data = ud[header_octets:udl]
    if coding is Coding.UCS2:
        return data.decode("utf-16-be", errors="replace"), data, concat
    return data.decode("latin-1"), data, concat


def _deliver(smsc: str | None, tpdu: bytes) -> Deliver:
    first = tpdu[0]
    sender, offset = decode_address(tpdu, 1)
    if offset + 9 > len(tpdu):
        raise ProtocolGarbage("SMS-DELIVER cut short", raw=tpdu.hex().upper())
    coding = sms_coding(tpdu[offset + 1])
    timestamp = decode_timestamp(tpdu, offset + 2)
    text, data, concat = _read_user_data(tpdu, offset + 9, coding, bool(first & _UDHI))
    return Deliver(smsc, sender, timestamp, coding, text, data, concat, bool(first & _SRR))


_VP_LENGTH = {0: 0, 1: 7, 2: 1, 3: 7}  # by TP-VPF: none, enhanced, relative, absolute


def _submit(smsc: str | None, tpdu: bytes) -> Submit:
    first = tpdu[0]
    if len(tpdu) < 3:
        raise ProtocolGarbage("SMS-SUBMIT cut short", raw=tpdu.hex().upper())
    destination, offset = decode_address(tpdu, 2)
    if offset + 2 > len(tpdu):
        raise ProtocolGarbage("SMS-SUBMIT cut short", raw=tpdu.hex().upper())
    coding = sms_coding(tpdu[offset + 1])
    offset += 2 + _VP_LENGTH[(first >> 3) & 0x3]
    text, _data, concat = _read_user_data(tpdu, offset, coding, bool(first & _UDHI))
    return Submit(smsc, tpdu[1], destination, coding, text, concat, bool(first & _SRR))


def _status_report(smsc: str | None, tpdu: bytes) -> StatusReport:
    if len(tpdu) < 3:
        raise ProtocolGarbage("SMS-STATUS-REPORT cut short", raw=tpdu.hex().upper())
    recipient, offset = decode_address(tpdu, 2)
    if offset + 15 > len(tpdu):
        raise ProtocolGarbage("SMS-STATUS-REPORT cut short", raw=tpdu.hex().upper())
    return StatusReport(
        smsc=smsc,
        reference=tpdu[1],
        recipient=recipient,
        submitted=decode_timestamp(tpdu, offset),
        discharged=decode_timestamp(tpdu, offset + 7),
        status=tpdu[offset + 14],
    )


def decode_tpdu(tpdu: bytes, smsc: str | None = None) -> Deliver | Submit | StatusReport:
    """A TPDU (no SMSC prefix) by its message type indicator."""
    if not tpdu:
        raise ProtocolGarbage("empty TPDU")
    mti = tpdu[0] & 0x3
    if mti == _MTI_DELIVER:
        return _deliver(smsc, tpdu)
    if mti == _MTI_SUBMIT:
        return _submit(smsc, tpdu)
    if mti == _MTI_STATUS_REPORT:
        return _status_report(smsc, tpdu)
    raise ProtocolGarbage("reserved TP-MTI 3", raw=tpdu.hex().upper())


def decode_pdu(hex_pdu: str) -> Deliver | Submit | StatusReport:
    """A PDU as 27.005 PDU mode gives it (``+CMGL``/``+CMGR``/``+CMT``/``+CDS``): hex, the
    SMSC prefix first."""
    try:
        pdu = bytes.fromhex(hex_pdu.strip())
    except ValueError as exc:
        raise ProtocolGarbage("a PDU is hex", raw=hex_pdu) from exc
    smsc, tpdu = split_smsc(pdu)
    return decode_tpdu(tpdu, smsc)
