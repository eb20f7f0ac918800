"""USSD strings by their data coding scheme (3GPP TS 27.007 §7.15, 23.038 §5), and what real
modems send instead (modem-realism.md §F4, F5).

A ``+CUSD`` string may be: plain text already decoded by the modem's character set (most
modems; dcs 15 or none); packed GSM-7 as hex, labelled 15 or unlabelled (Huawei E160);
UCS-2 as hex labelled 72 (E3276), 17 with a language prefix and trailing garbage (Telit
HE910-D) or mislabelled 15 (Quectel M35); 8-bit ASCII as hex labelled 0. The rule, as in
ModemManager and chan_dongle: when the string is all hex of an even length, decode it as the
labelled coding, then as the others, and take the first that reads as text; otherwise keep
the string as it came. "Reads as text" is strict for UCS-2 (code units from at most a few
scripts, nothing unassigned or private) because any bytes unpack to *some* GSM-7; packed
GSM-7 and 8-bit must give mostly ordinary characters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from simbank.sms.alphabet import decode_septets, encode_septets
from simbank.sms.dcs import Coding, cbs_coding, cbs_language_prefix
from simbank.sms.septets import pack, unpack

__all__ = ["decode_ussd", "encode_ussd_request"]

_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_CR = 0x0D
_PLAIN = frozenset(" \n\r.,:;!?'\"()-+*#/%=&_<>@$£€")
#: share of ordinary characters a GSM-7 or 8-bit reading must reach
_TEXTY = 0.9
_MAX_SCRIPTS = 4


def _block(char: str) -> int:
    """A coarse script block: the code point's high byte, with the big CJK and Hangul ranges
    each counted as one."""
    code = ord(char)
    if 0x3400 <= code <= 0x9FFF:
        return 0x34
    if 0xAC00 <= code <= 0xD7AF:
        return 0xAC
    return code >> 8


def _printable(text: str) -> bool:
    for char in text:
        if char in "\n\r":
            continue
        if unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn") or char == "\ufffd":
            return False
    return True


def _texty(text: str) -> float:
    ordinary = sum(1 for c in text if (c.isascii() and c.isalnum()) or c in _PLAIN)
    return ordinary / len(text) if text else 0.0


def _as_ucs2(data: bytes, dcs: int | None) -> str | None:
    data = data[cbs_language_prefix(dcs) :]
    if len(data) % 2:
        return None
    text = data.decode("utf-16-be", errors="replace").split("\x00", 1)[0]  # garbage after NUL
    if not text or not _printable(text):
        return None
    if len({_block(c) for c in text if not c.isascii()}) > _MAX_SCRIPTS:
        return None
    return text


def _as_gsm7(data: bytes, _dcs: int | None) -> str | None:
    septets = unpack(data)
    # 23.038 §6.1.2.3.1: a CR fills the last octet's spare 7 bits (some send 0: '@')
    if len(data) % 7 == 0 and septets and septets[-1] in (_CR, 0):
        septets = septets[:-1]
    text = decode_septets(septets).rstrip("\r")
    return text if text and _printable(text) and _texty(text) >= _TEXTY else None


def _as_8bit(data: bytes, _dcs: int | None) -> str | None:
    text = data.decode("latin-1")
    return text if _printable(text) and _texty(text) >= _TEXTY else None


_READERS: dict[Coding, Callable[[bytes, int | None], str | None]] = {
    Coding.UCS2: _as_ucs2,
    Coding.GSM7: _as_gsm7,
    Coding.EIGHT_BIT: _as_8bit,
}


def decode_ussd(text: str, dcs: int | None) -> str:
    """The text of a ``+CUSD`` string labelled ``dcs`` (None: no ``<dcs>`` field)."""
    stripped = text.strip()
    if not _HEX.fullmatch(stripped):
        return text
    labelled = cbs_coding(dcs)
    if len(stripped) < 8 and labelled not in (Coding.UCS2, Coding.EIGHT_BIT):
        return text  # "CAFE", "1000": a word or a number, not two code units
    order = [labelled] if labelled else []
    order += [c for c in (Coding.UCS2, Coding.GSM7, Coding.EIGHT_BIT) if c not in order]
    data = bytes.fromhex(stripped)
    digits_only = stripped.isdigit()
    for coding in order:
        decoded = _READERS[coding](data, dcs)
        if decoded is None:
            continue
        # "2024" or "1000" is more likely a number than hex: unless the label says hex, a
        # digits-only string must read as plain ASCII to be taken as hex
        if digits_only and labelled is not Coding.UCS2 and not decoded.isascii():
            continue
        return decoded
    return text


def encode_ussd_request(
    code: str, *, packed_hex: bool = False, ucs2_hex: bool = False
) -> tuple[str, int]:
    """(the ``<str>`` of ``AT+CUSD=1,<str>,<dcs>``, the ``<dcs>``), always dcs 15 (GSM-7
    language unspecified: what the network is sent).

    * plain text for modems that convert from the current character set (27.007 §7.15);
    * ``packed_hex``: packed GSM-7 as hex for modems that want it pre-encoded (Huawei:
      ModemManager ``mm-broadband-modem-huawei.c`` L2686-2712, modem-realism §F5; ``*100#``
      is ``AA180C3602``), a CR filling a last octet whose 7 spare bits would read as '@'
      (23.038 §6.1.2.3.1);
    * ``ucs2_hex``: the code in UCS-2 as hex, for a modem whose ``AT+CSCS`` is ``"UCS2"``
      (27.007 §5.5: every string parameter is then in that set; Gammu issue 689 shows a
      Cinterion MC55i so: ``*99#`` as ``002A003900390023``).
    """
    if packed_hex and ucs2_hex:
        raise ValueError("a request is packed GSM-7 hex or UCS-2 hex, not both")
    if ucs2_hex:
        return code.encode("utf-16-be").hex().upper(), 15
    if not packed_hex:
        return code, 15
    septets = encode_septets(code)
    if len(septets) % 8 == 7:
        septets += bytes((_CR,))
    return pack(septets).hex().upper(), 15
