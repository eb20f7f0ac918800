"""What the network hands the modem: SMS-DELIVER (3GPP 23.040 §9.2.2.1) and
SMS-STATUS-REPORT (§9.2.2.3) PDUs, with the 27.005 SMSC prefix, and the split of a long inbound
text into concatenated parts.

The simulator's own encoders, sharing no code with ``simbank.sms`` (the reason is in
:mod:`simbank.simulator.pdu`, whose alphabet tables they use). A text goes as GSM-7 (with the
extension table) when every character fits, else as UCS-2 (an emoji is a surrogate pair, two
code units, never split). Too long for one PDU (160 septets / 70 code units), it becomes parts
of 153 septets / 67 code units behind an 8-bit reference header (IE 00), or 152 / 66 behind a
16-bit one (IE 08); a GSM-7 extension character (two septets) is never split. A numeric sender
is TON international (0x91) with a ``+``, unknown (0x81) without; anything else is an
alphanumeric sender (0xD0, packed GSM-7, at most 11 septets, as networks truncate it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from simbank.simulator.pdu import ADDRESS_DIGITS, BASIC_ALPHABET, EXTENSION_TABLE, Coding

#: The service centre the simulated SIMs name (``AT+CSCA?``), the prefix of every PDU shown.
SMSC = "+15550100000"

_GSM7 = {char: value for value, char in enumerate(BASIC_ALPHABET) if value != 0x1B}
_GSM7_EXTENSION = {char: value for value, char in EXTENSION_TABLE.items()}
_NUMERIC = re.compile(r"^\+?[0-9*#]{1,20}$")
_MAX_PARTS = 255
_ALPHANUMERIC_SEPTETS = 11
_MMS = 0x04  # TP-MMS: no more messages waiting
_UDHI = 0x40

STATUS_DELIVERED = 0x00
#: TP-ST values a carrier may report (23.040 §9.2.3.15): 0x00-0x1F delivered, 0x20-0x3F
#: temporary (still trying), 0x40-0x5F permanent failure, 0x60-0x7F temporary, given up.
STATUS_PERMANENT_FAILURES = range(0x40, 0x60)


@dataclass(frozen=True)
class DeliverPart:
    """One stored inbound PDU: its text (as text mode shows it) and the hex PDU mode shows."""

    sequence: int  # 1-based; 1 of 1 for a single message
    total: int
    text: str
    pdu: str  # SMSC prefix included
    tpdu_length: int  # octets after the SMSC prefix


def gsm7_septets(text: str) -> list[int] | None:
    """The septets of ``text`` in the default alphabet (extension as ESC + code), or None."""
    out: list[int] = []
    for char in text:
        if char in _GSM7:
            out.append(_GSM7[char])
        elif char in _GSM7_EXTENSION:
            out += [0x1B, _GSM7_EXTENSION[char]]
        else:
            return None
    return out


def _cost(char: str, coding: Coding) -> int:
    if coding is Coding.GSM7:
        return 2 if char in _GSM7_EXTENSION else 1
    return len(char.encode("utf-16-be")) // 2


def split_text(text: str, *, ref16: bool = False) -> tuple[Coding, list[str]]:
    """The coding and the part texts of an inbound message (one part when it fits)."""
    coding = Coding.GSM7 if gsm7_septets(text) is not None else Coding.UCS2
    single, per_part = (160, 153) if coding is Coding.GSM7 else (70, 67)
    if sum(_cost(char, coding) for char in text) <= single:
        return coding, [text]
    per_part -= 1 if ref16 else 0
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        cost = _cost(char, coding)
        if used + cost > per_part:
            parts.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += cost
    parts.append("".join(current))
    if len(parts) > _MAX_PARTS:
        raise ValueError(f"a message of {len(parts)} parts (at most {_MAX_PARTS})")
    return coding, parts


def _pack(septets: list[int], skip: int = 0, head: bytes = b"") -> bytes:
    """Septets packed LSB first after ``skip`` septets' room, where ``head`` octets sit."""
    value = int.from_bytes(head, "little")
    for position, septet in enumerate(septets, start=skip):
        value |= septet << (7 * position)
    return value.to_bytes(((skip + len(septets)) * 7 + 7) // 8, "little")


def _semi_octets(digits: str) -> bytes:
    nibbles = [ADDRESS_DIGITS.index(digit) for digit in digits]
    if len(nibbles) % 2:
        nibbles.append(0x0F)
    return bytes(low | high << 4 for low, high in zip(nibbles[::2], nibbles[1::2], strict=True))


def encode_address(address: str) -> bytes:
    """TP-OA / TP-RA: length, type of address, value (23.040 §9.1.2.5)."""
    if _NUMERIC.match(address):
        digits = address.removeprefix("+")
        toa = 0x91 if address.startswith("+") else 0x81
        return bytes([len(digits), toa]) + _semi_octets(digits)
    septets: list[int] = []
    for char in address:
        coded = gsm7_septets(char) or [_GSM7["?"]]
        if len(septets) + len(coded) > _ALPHANUMERIC_SEPTETS:
            break
        septets += coded
    return bytes([(len(septets) * 7 + 3) // 4, 0xD0]) + _pack(septets)


def smsc_prefix(smsc: str = SMSC) -> bytes:
    """The 27.005 PDU-mode SMSC field: octet count, 0x91, the number's semi-octets."""
    digits = smsc.removeprefix("+")
    body = bytes([0x91]) + _semi_octets(digits)
    return bytes([len(body)]) + body


def _swapped(value: int) -> int:
    return (value % 10) << 4 | (value // 10) % 10


def encode_timestamp(when: datetime) -> bytes:
    """TP-SCTS / TP-DT: seven swapped semi-octet pairs, the zone in quarter hours."""
    offset = when.utcoffset() or timedelta()
    quarters = int(offset.total_seconds() // 900)
    zone = _swapped(abs(quarters)) | (0x08 if quarters < 0 else 0)
    fields = (when.year % 100, when.month, when.day, when.hour, when.minute, when.second)
    return bytes(_swapped(field) for field in fields) + bytes([zone])


def text_timestamp(when: datetime) -> str:
    """The text-mode form of a time stamp: ``yy/MM/dd,hh:mm:ss±zz`` (zone in quarters)."""
    offset = when.utcoffset() or timedelta()
    quarters = int(offset.total_seconds() // 900)
    return when.strftime("%y/%m/%d,%H:%M:%S") + f"{'-' if quarters < 0 else '+'}{abs(quarters):02d}"


def _header(reference: int, total: int, sequence: int, ref16: bool) -> bytes:
    if ref16:
        element = bytes([0x08, 4]) + reference.to_bytes(2, "big") + bytes([total, sequence])
    else:
        element = bytes([0x00, 3, reference, total, sequence])
    return bytes([len(element)]) + element


def _hex(tpdu: bytes) -> tuple[str, int]:
    return (smsc_prefix() + tpdu).hex().upper(), len(tpdu)


def encode_deliver(
    sender: str,
    text: str,
    coding: Coding,
    when: datetime,
    header: bytes = b"",
) -> tuple[str, int]:
    """One SMS-DELIVER as PDU mode shows it: (hex with the SMSC prefix, TPDU length)."""
    first = _MMS | (_UDHI if header else 0)
    if coding is Coding.GSM7:
        septets = gsm7_septets(text)
        if septets is None:
            raise ValueError("not a GSM-7 text")
        skip = (len(header) * 8 + 6) // 7
        user_data = _pack(septets, skip, header)
        length = skip + len(septets)
        dcs = 0x00
    else:
        user_data = header + text.encode("utf-16-be")
        length = len(user_data)
        dcs = 0x08
    tpdu = (
        bytes([first])
        + encode_address(sender)
        + bytes([0x00, dcs])
        + encode_timestamp(when)
        + bytes([length])
        + user_data
    )
    return _hex(tpdu)


def deliver_parts(
    sender: str, text: str, when: datetime, *, reference: int = 0, ref16: bool = False
) -> list[DeliverPart]:
    """Every PDU of an inbound message, in order; ``reference`` ties the parts together."""
    coding, texts = split_text(text, ref16=ref16)
    total = len(texts)
    reference %= 65536 if ref16 else 256
    parts: list[DeliverPart] = []
    for sequence, part in enumerate(texts, start=1):
        header = _header(reference, total, sequence, ref16) if total > 1 else b""
        pdu, length = encode_deliver(sender, part, coding, when, header)
        parts.append(DeliverPart(sequence, total, part, pdu, length))
    return parts


def encode_status_report(
    reference: int, recipient: str, submitted: datetime, discharged: datetime, status: int
) -> tuple[str, int]:
    """One SMS-STATUS-REPORT (TP-SRQ 0: the outcome of a SUBMIT) as PDU mode shows it."""
    tpdu = (
        bytes([0x02 | _MMS, reference & 0xFF])
        + encode_address(recipient)
        + encode_timestamp(submitted)
        + encode_timestamp(discharged)
        + bytes([status & 0xFF])
    )
    return _hex(tpdu)


def text_status_report(
    reference: int, recipient: str, submitted: datetime, discharged: datetime, status: int
) -> str:
    """The text-mode fields of a report: ``<fo>,<mr>,"<ra>",<tora>,"<scts>","<dt>",<st>``."""
    tora = 145 if recipient.startswith("+") else 129
    return (
        f'{0x02 | _MMS},{reference & 0xFF},"{recipient}",{tora},'
        f'"{text_timestamp(submitted)}","{text_timestamp(discharged)}",{status & 0xFF}'
    )
