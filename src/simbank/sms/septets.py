"""Packing 7-bit septets into octets and back (3GPP TS 23.038 §6.1.2.1.1).

Septet 0 fills the low 7 bits of octet 0; each next septet starts where the previous ended,
LSB first. ``fill_bits`` zero bits come first when a user data header ends off a septet
boundary (23.040 §9.2.3.24: the text after a 6-octet concatenation header starts 1 bit on).
Written here: the libraries we looked at (``gsm0338``, ``smspdudecoder``) pack without the
fill-bit offset, or do not pack at all.
"""

from __future__ import annotations

__all__ = ["pack", "packed_length", "unpack"]


def packed_length(septets: int, fill_bits: int = 0) -> int:
    """Octets that ``septets`` septets take after ``fill_bits`` fill bits."""
    return (fill_bits + 7 * septets + 7) // 8


def pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """Septet values (0..127) → packed octets, after ``fill_bits`` zero bits (0..6)."""
    if not 0 <= fill_bits < 7:
        raise ValueError("fill_bits is 0..6")
    accumulator = 0
    width = fill_bits
    out = bytearray()
    for value in septets:
        accumulator |= (value & 0x7F) << width
        width += 7
        while width >= 8:
            out.append(accumulator & 0xFF)
            accumulator >>= 8
            width -= 8
    if width:
        out.append(accumulator & 0xFF)
    return bytes(out)


def unpack(data: bytes, count: int | None = None, fill_bits: int = 0) -> bytes:
    """Packed octets → ``count`` septet values (all that fit when ``count`` is None), skipping
    ``fill_bits`` leading bits. Fewer octets than ``count`` needs raise :class:`ValueError`."""
    if not 0 <= fill_bits < 7:
        raise ValueError("fill_bits is 0..6")
    available = (8 * len(data) - fill_bits) // 7
    if count is None:
        count = available
    elif count > available:
        raise ValueError(f"{count} septets need more than {len(data)} octets")
    number = int.from_bytes(data, "little") >> fill_bits
    return bytes((number >> (7 * n)) & 0x7F for n in range(count))
