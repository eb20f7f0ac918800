"""23.040 §9.1.2 address fields, semi-octets and the service-centre time stamp (§9.2.3.11),
and the SMSC prefix that 27.005 PDU mode puts before every TPDU (``+CMGL``/``+CMGR``/``+CMT``).

An address is (length, type of address, value). Digits are semi-octets, low nibble first,
padded with F. Type 0x91 (TON 001 international, NPI 0001 ISDN) is a "+" number; TON 101 is
an alphanumeric sender ("InternetSMS"), its name packed GSM-7 and its length counted in
semi-octets of the packed name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from simbank.errors import ProtocolGarbage
from simbank.sms.alphabet import decode_septets
from simbank.sms.septets import unpack

__all__ = [
    "Address",
    "decode_address",
    "decode_timestamp",
    "encode_address",
    "split_smsc",
]

TON_INTERNATIONAL = 0x1
TON_ALPHANUMERIC = 0x5
_DIGITS = "0123456789*#abc"
_NUMBER = re.compile(r"\+?[0-9*#]{1,20}")


@dataclass(frozen=True, slots=True)
class Address:
    """A decoded address: ``value`` has a leading "+" for international numbers. ``type`` is
    the whole type-of-address octet (0x91, 0x81, 0xD0…)."""

    value: str
    type: int

    @property
    def ton(self) -> int:
        return (self.type >> 4) & 0x7

    @property
    def alphanumeric(self) -> bool:
        return self.ton == TON_ALPHANUMERIC


def _semi_octets(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex("".join(digits[n + 1] + digits[n] for n in range(0, len(digits), 2)))


def _digits_of(data: bytes, count: int | None = None) -> str:
    out: list[str] = []
    for octet in data:
        for nibble in (octet & 0x0F, octet >> 4):
            if nibble == 0xF:
                break
            out.append(_DIGITS[nibble] if nibble < len(_DIGITS) else "?")
    text = "".join(out)
    return text if count is None else text[:count]


def encode_address(number: str) -> bytes:
    """A destination address field: "+" → type 0x91, else 0x81; ``*`` and ``#`` allowed."""
    if not _NUMBER.fullmatch(number):
        raise ValueError("an address is an optional + and 1..20 digits, * or #")
    international = number.startswith("+")
    digits = number.lstrip("+").replace("*", "A").replace("#", "B")
    toa = 0x91 if international else 0x81
    return bytes((len(digits), toa)) + _semi_octets(digits)


def decode_address(data: bytes, offset: int) -> tuple[Address, int]:
    """The address at ``offset`` → (address, offset after it)."""
    if offset + 2 > len(data):
        raise ProtocolGarbage("address field cut short", raw=data.hex().upper())
    length, toa = data[offset], data[offset + 1]
    size = (length + 1) // 2
    end = offset + 2 + size
    if end > len(data):
        raise ProtocolGarbage("address field cut short", raw=data.hex().upper())
    body = data[offset + 2 : end]
    if (toa >> 4) & 0x7 == TON_ALPHANUMERIC:
        value = decode_septets(unpack(body, (length * 4) // 7))
    else:
        value = _digits_of(body, length).replace("a", "*").replace("b", "#")
        if (toa >> 4) & 0x7 == TON_INTERNATIONAL and value:
            value = "+" + value
    return Address(value, toa), end


def split_smsc(pdu: bytes) -> tuple[str | None, bytes]:
    """A 27.005 PDU-mode PDU → (the SMSC number or None, the TPDU). The first octet is the
    SMSC field's length in octets (type included); 0 means the SIM's default."""
    if not pdu:
        raise ProtocolGarbage("empty PDU")
    length = pdu[0]
    if 1 + length > len(pdu):
        raise ProtocolGarbage("SMSC field longer than the PDU", raw=pdu.hex().upper())
    if length == 0:
        return None, pdu[1:]
    toa = pdu[1]
    digits = _digits_of(pdu[2 : 1 + length])
    if (toa >> 4) & 0x7 == TON_INTERNATIONAL and digits:
        digits = "+" + digits
    return digits or None, pdu[1 + length :]


def _bcd(octet: int) -> int:
    return (octet & 0x0F) * 10 + (octet >> 4)


def decode_timestamp(data: bytes, offset: int) -> datetime | None:
    """The 7-octet time stamp at ``offset`` (yy MM dd hh mm ss zz, semi-octets swapped; zz in
    quarter hours, its sign in bit 3) → aware datetime; None when the fields are no date."""
    if offset + 7 > len(data):
        raise ProtocolGarbage("time stamp cut short", raw=data.hex().upper())
    yy, mo, dd, hh, mi, ss = (_bcd(o) for o in data[offset : offset + 6])
    zone = data[offset + 6]
    quarters = (zone & 0x07) * 10 + (zone >> 4)
    if zone & 0x08:
        quarters = -quarters
    try:
        return datetime(
            2000 + yy, mo, dd, hh, mi, ss, tzinfo=timezone(timedelta(minutes=15 * quarters))
        )
    except ValueError:
        return None
