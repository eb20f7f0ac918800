"""The user data header (3GPP TS 23.040 §9.2.3.24): information elements before the text.

Only concatenation matters here: IE 00 (8-bit reference) and IE 08 (16-bit reference), each
(reference, total, sequence). We encode IE 00 only, as nearly every phone does; both decode.
Other elements (ports, special SMS indication, national language shifts) are kept as raw
bytes and otherwise ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from simbank.errors import ProtocolGarbage

__all__ = ["CONCAT_UDH_LENGTH", "Concat", "UserDataHeader", "concat_header", "parse_udh"]

IE_CONCAT_8 = 0x00
IE_CONCAT_16 = 0x08
#: octets of a header holding one 8-bit concatenation element, its length octet included
CONCAT_UDH_LENGTH = 6


@dataclass(frozen=True, slots=True)
class Concat:
    """One part of a concatenated message: part ``sequence`` (1-based) of ``total``."""

    reference: int
    total: int
    sequence: int
    wide: bool = False  # a 16-bit reference (IE 08)


@dataclass(frozen=True, slots=True)
class UserDataHeader:
    elements: tuple[tuple[int, bytes], ...]
    concat: Concat | None


def concat_header(reference: int, total: int, sequence: int) -> bytes:
    """The whole header (UDHL included) for part ``sequence`` of ``total``, 8-bit reference."""
    if not (0 <= reference <= 0xFF and 1 <= sequence <= total <= 0xFF):
        raise ValueError("reference 0..255, 1 <= sequence <= total <= 255")
    return bytes((5, IE_CONCAT_8, 3, reference, total, sequence))


def parse_udh(header: bytes) -> UserDataHeader:
    """The elements of ``header`` (without its length octet)."""
    elements: list[tuple[int, bytes]] = []
    concat: Concat | None = None
    offset = 0
    while offset < len(header):
        if offset + 2 > len(header):
            raise ProtocolGarbage("user data header cut short", raw=header.hex().upper())
        iei, length = header[offset], header[offset + 1]
        value = header[offset + 2 : offset + 2 + length]
        if len(value) != length:
            raise ProtocolGarbage("user data header cut short", raw=header.hex().upper())
        elements.append((iei, value))
        offset += 2 + length
        if iei == IE_CONCAT_8 and length == 3:
            found = Concat(value[0], value[1], value[2])
        elif iei == IE_CONCAT_16 and length == 4:
            found = Concat(int.from_bytes(value[:2], "big"), value[2], value[3], wide=True)
        else:
            continue
        # 23.040: a total or sequence of 0, or a sequence past the total, is ignored
        if 1 <= found.sequence <= found.total:
            concat = found
    return UserDataHeader(tuple(elements), concat)
