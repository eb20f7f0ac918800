"""The modem's own SMS-SUBMIT decoder (3GPP 23.040 §9.2.2.2), for PDU-mode ``AT+CMGS``.

Written here, not imported from ``simbank.sms``: the modem side of the wire shares no protocol
code with the client, so an encoding bug there shows up as a refused or wrongly recorded PDU
here instead of being mirrored. It is deliberately strict (a real modem forwards much of this
to the network, which then refuses it); every defect raises ``PduError`` (the modem answers
``+CMS ERROR: 304``, "invalid PDU mode parameter", 27.005 §3.2.5).

Covers what a submitting client sends: the SMSC prefix, the first octet (UDHI, SRR, VPF), the
message reference, the destination address, PID, the DCS alphabet (GSM-7 with its extension
table, 8-bit, UCS-2), the validity period per VPF, and the user data header's concatenation
elements (IE 00, 8-bit reference; IE 08, 16-bit reference) with the septet fill after it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# GSM 03.38 default alphabet, by septet value (0x1B is the escape to the extension table).
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
_DIGITS = "0123456789*#abc"
#: The alphabet tables and address digits for the modem's encoders (``simulator.deliver_pdu``).
BASIC_ALPHABET = _BASIC
EXTENSION_TABLE = _EXTENSION
ADDRESS_DIGITS = _DIGITS
_VP_OCTETS = {0: 0, 2: 1, 1: 7, 3: 7}  # by TP-VPF: none, relative, enhanced, absolute


class PduError(ValueError):
    """A submitted PDU the modem refuses (``+CMS ERROR: 304``)."""


class Coding(enum.StrEnum):
    """The alphabet a DCS selects."""

    GSM7 = "gsm7"
    EIGHT_BIT = "8bit"
    UCS2 = "ucs2"


@dataclass(frozen=True)
class Concat:
    """A concatenation element: which message, how many parts, this part's number (1-based)."""

    reference: int
    total: int
    sequence: int


@dataclass(frozen=True)
class Submit:
    """A decoded SMS-SUBMIT."""

    destination: str  # "+" prefix for an international number
    message_reference: int  # TP-MR as the client wrote it (the modem assigns its own)
    coding: Coding
    text: str  # 8-bit data shown as Latin-1
    concat: Concat | None
    status_report: bool  # TP-SRR
    validity: bytes  # the TP-VP octets as sent (empty when TP-VPF says none)


def _address(tpdu: bytes, at: int) -> tuple[str, int]:
    """TP-DA: length in digits, type of address, semi-octets; return (number, next offset)."""
    if at + 2 > len(tpdu):
        raise PduError("address truncated")
    digits, toa = tpdu[at], tpdu[at + 1]
    if digits > 20 or not toa & 0x80:
        raise PduError("bad destination address")
    octets = (digits + 1) // 2
    body = tpdu[at + 2 : at + 2 + octets]
    if len(body) < octets:
        raise PduError("address truncated")
    nibbles = [n for octet in body for n in (octet & 0x0F, octet >> 4)][:digits]
    if any(n == 0x0F for n in nibbles):
        raise PduError("filler inside the destination")
    if (toa >> 4) & 0x07 == 5:
        raise PduError("alphanumeric destination")
    number = "".join(_DIGITS[n] for n in nibbles)
    prefix = "+" if (toa >> 4) & 0x07 == 1 else ""
    return prefix + number, at + 2 + octets


def coding_of(dcs: int) -> Coding:
    """The alphabet of a TP-DCS (23.038 §4); reserved values raise ``PduError``."""
    group = dcs >> 4
    if group <= 0x07:  # general data coding (with or without auto-deletion)
        alphabet = (dcs >> 2) & 0x03
        if alphabet == 3:
            raise PduError("reserved alphabet")
        return (Coding.GSM7, Coding.EIGHT_BIT, Coding.UCS2)[alphabet]
    if group in (0x0C, 0x0D):  # message waiting, discard/store, GSM-7
        return Coding.GSM7
    if group == 0x0E:  # message waiting, store, UCS-2
        return Coding.UCS2
    if group == 0x0F:  # data coding/message class
        return Coding.EIGHT_BIT if dcs & 0x04 else Coding.GSM7
    raise PduError("reserved coding group")


def unpack_septets(data: bytes, count: int) -> list[int]:
    """The first ``count`` septets packed into ``data`` (LSB first)."""
    if (count * 7 + 7) // 8 > len(data):
        raise PduError("user data truncated")
    value = int.from_bytes(data, "little")
    return [(value >> (7 * i)) & 0x7F for i in range(count)]


def gsm7_text(septets: list[int]) -> str:
    """Septet values to text via the default alphabet and its extension table."""
    out: list[str] = []
    escaped = False
    for septet in septets:
        if escaped:
            # An undefined extension falls back to the basic character (23.038 §6.2.1.1).
            out.append(_EXTENSION.get(septet, _BASIC[septet]))
            escaped = False
        elif septet == 0x1B:
            escaped = True
        else:
            out.append(_BASIC[septet])
    if escaped:
        raise PduError("escape without a character")
    return "".join(out)


def _concat(header: bytes) -> Concat | None:
    """The concatenation element of a user data header (IE 00 or 08), if any."""
    at, found = 0, None
    while at < len(header):
        if at + 2 > len(header):
            raise PduError("header element truncated")
        iei, size = header[at], header[at + 1]
        value = header[at + 2 : at + 2 + size]
        if len(value) < size:
            raise PduError("header element truncated")
        if iei in {0x00, 0x08}:
            if size != (3 if iei == 0x00 else 4):
                raise PduError("bad concatenation element")
            reference = value[0] if iei == 0x00 else int.from_bytes(value[:2], "big")
            total, sequence = value[-2], value[-1]
            if total == 0 or not 1 <= sequence <= total:
                raise PduError("bad concatenation numbers")
            found = Concat(reference, total, sequence)
        at += 2 + size
    return found


def _user_data(tpdu: bytes, at: int, coding: Coding, has_header: bool) -> tuple[str, Concat | None]:
    if at >= len(tpdu):
        raise PduError("no user data length")
    udl, data = tpdu[at], tpdu[at + 1 :]
    octets = (udl * 7 + 7) // 8 if coding is Coding.GSM7 else udl
    if udl > (160 if coding is Coding.GSM7 else 140) or len(data) != octets:
        raise PduError("user data length does not match")
    concat: Concat | None = None
    header_octets = 0
    if has_header:
        if not data or data[0] + 1 > octets:
            raise PduError("header longer than the user data")
        header_octets = data[0] + 1
        concat = _concat(data[1:header_octets])
    if coding is Coding.GSM7:
        skip = (header_octets * 8 + 6) // 7  # the header and the fill bits after it
        return gsm7_text(unpack_septets(data, udl)[skip:]), concat
    body = data[header_octets:]
    if coding is Coding.EIGHT_BIT:
        return body.decode("latin-1"), concat
    if len(body) % 2:
        raise PduError("odd UCS-2 user data")
    try:
        return body.decode("utf-16-be"), concat
    except UnicodeDecodeError:
        raise PduError("broken UCS-2 user data") from None


def decode_submit(pdu_hex: str, length: int) -> Submit:
    """Decode the hex typed after ``AT+CMGS=<length>``; ``length`` counts the TPDU octets."""
    text = "".join(pdu_hex.split())
    if not text or len(text) % 2:
        raise PduError("odd or empty hex")
    try:
        pdu = bytes.fromhex(text)
    except ValueError:
        raise PduError("not hex") from None
    smsc_octets = pdu[0]
    tpdu = pdu[1 + smsc_octets :]
    if len(tpdu) != length or 1 + smsc_octets > len(pdu):
        raise PduError("length does not match the TPDU")
    if len(tpdu) < 2:
        raise PduError("TPDU truncated")
    first = tpdu[0]
    if first & 0x03 != 0x01:
        raise PduError("not an SMS-SUBMIT")
    vpf = (first >> 3) & 0x03
    destination, at = _address(tpdu, 2)
    if at + 2 > len(tpdu):
        raise PduError("TPDU truncated")
    coding = coding_of(tpdu[at + 1])
    at += 2
    validity = tpdu[at : at + _VP_OCTETS[vpf]]
    if len(validity) < _VP_OCTETS[vpf]:
        raise PduError("validity period truncated")
    at += _VP_OCTETS[vpf]
    message, concat = _user_data(tpdu, at, coding, bool(first & 0x40))
    return Submit(
        destination=destination,
        message_reference=tpdu[1],
        coding=coding,
        text=message,
        concat=concat,
        status_report=bool(first & 0x20),
        validity=bytes(validity),
    )
