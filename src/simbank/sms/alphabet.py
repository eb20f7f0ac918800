"""The GSM 03.38 default alphabet (3GPP TS 23.038 §6.2.1) and its extension table, reached
through the escape septet 0x1B: characters ↔ septet values (one byte per septet, unpacked).

The tables come from the ``gsm0338`` library (PyPI, a Python codec for exactly this alphabet,
registered as ``"gsm03.38"`` on import): a table of 138 characters is where a hand-typed copy
goes wrong silently, and the library's tables are checked against the Unicode names. What the
library does not cover we do here: the septet count of a text (an extension character costs
two), and the spec's rule for an escape followed by a code the extension table lacks (23.038
§6.2.1.1: show the default-table character, i.e. drop the escape). Packing septets into octets
is :mod:`simbank.sms.septets`.
"""

from __future__ import annotations

import gsm0338  # type: ignore[import-untyped]  # registers the "gsm03.38" codec
from gsm0338.charset import BASIC_CHARACTER_SET_EXTENSION  # type: ignore[import-untyped]

__all__ = ["CODEC", "ESCAPE", "decode_septets", "encode_septets", "is_gsm7", "septet_length"]

CODEC = "gsm03.38"
ESCAPE = 0x1B
_EXTENSION_CODES: frozenset[int] = frozenset(BASIC_CHARACTER_SET_EXTENSION)
assert gsm0338.Codec.NAME == CODEC


def encode_septets(text: str) -> bytes:
    """``text`` as septet values (an extension character as ESC + code).

    Raises :class:`UnicodeEncodeError` for a character outside both tables, and for ESC
    itself (U+001B): 0x1B is the escape to the extension table, not a character, so a lone
    one would swallow or garble the character after it (gsm0338 maps it anyway).
    """
    at = text.find("\x1b")
    if at >= 0:
        raise UnicodeEncodeError(CODEC, text, at, at + 1, "ESC is not a GSM-7 character")
    return text.encode(CODEC)


def decode_septets(septets: bytes) -> str:
    """Septet values → text. An escape before a code the extension table lacks is dropped
    (the default-table character is shown, 23.038 §6.2.1.1); a trailing lone escape too."""
    cleaned = bytearray()
    escaped = False
    for octet in septets:
        value = octet & 0x7F
        if escaped:
            escaped = False
            if value in _EXTENSION_CODES:
                cleaned += bytes((ESCAPE, value))
                continue
            if value == ESCAPE:  # ESC ESC: reserved; read as one escape
                escaped = True
                continue
        elif value == ESCAPE:
            escaped = True
            continue
        cleaned.append(value)
    return bytes(cleaned).decode(CODEC)


def is_gsm7(text: str) -> bool:
    """True when every character is in the default or extension table."""
    try:
        encode_septets(text)
    except UnicodeEncodeError:
        return False
    return True


def septet_length(text: str) -> int:
    """Septets ``text`` takes in GSM-7 (an extension character takes two)."""
    return len(encode_septets(text))
