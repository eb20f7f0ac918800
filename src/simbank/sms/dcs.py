"""Data coding schemes (3GPP TS 23.038): which alphabet a short message (§4, TP-DCS) or a
cell broadcast / USSD string (§5, the ``<dcs>`` of ``+CUSD``) is written in."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Coding", "cbs_coding", "cbs_language_prefix", "sms_coding"]


class Coding(StrEnum):
    GSM7 = "gsm7"  # the default alphabet, packed septets
    EIGHT_BIT = "8bit"  # octets (binary data, or text in a charset the sender chose)
    UCS2 = "ucs2"  # UTF-16 big-endian code units


_BY_BITS = {0: Coding.GSM7, 1: Coding.EIGHT_BIT, 2: Coding.UCS2, 3: Coding.GSM7}


def sms_coding(dcs: int) -> Coding:
    """TP-DCS (23.038 §4) → the alphabet; reserved values read as GSM-7, as the spec asks."""
    group = dcs >> 4
    if group <= 0x7:  # 00xx / 01xx: general data coding (01xx: marked for automatic deletion)
        return _BY_BITS[(dcs >> 2) & 0x3]
    if group == 0xE:  # message waiting indication, store message, UCS-2
        return Coding.UCS2
    if group == 0xF:  # data coding / message class
        return Coding.EIGHT_BIT if dcs & 0x04 else Coding.GSM7
    return Coding.GSM7  # 1100/1101 message waiting (GSM-7), 1000..1011 reserved


def cbs_coding(dcs: int | None) -> Coding | None:
    """CBS data coding (23.038 §5), which USSD uses → the alphabet; None when unknown
    (no ``<dcs>`` given, or a value out of range)."""
    if dcs is None or not 0 <= dcs <= 0xFF:
        return None
    group = dcs >> 4
    if group in (0x0, 0x2, 0x3):  # GSM-7, a language named by the value (0x0F: unspecified)
        return Coding.GSM7
    if group == 0x1:  # 0x10: GSM-7 with a language prefix; 0x11: UCS-2 with one
        return Coding.UCS2 if dcs == 0x11 else Coding.GSM7
    if group in (0x4, 0x5, 0x6, 0x7, 0x9):  # general data coding; 1001: with a UDH
        return _BY_BITS[(dcs >> 2) & 0x3]
    if group == 0xF:
        return Coding.EIGHT_BIT if dcs & 0x04 else Coding.GSM7
    return Coding.GSM7  # reserved groups: the default alphabet


def cbs_language_prefix(dcs: int | None) -> int:
    """Octets of language indication before the text: 0x11 starts with two GSM-7 characters
    packed into 2 octets (ISO 639, e.g. ``61 39`` = "ar"); 0 otherwise. (0x10's prefix is
    three characters of the text itself; it is left in the text.)"""
    return 2 if dcs == 0x11 else 0
