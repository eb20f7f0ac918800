"""Mask phone numbers, IMSIs and IMEIs in any string, keep ICCIDs readable.

Used by the log processor on every string value (not only known keys) and by anything that
shows text from the outside world (SMS, USSD, CLCC lines) to an operator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

# A run of 7..22 digits, optionally with a leading '+', not part of a longer number (letters may
# touch it: "ATD15550100;" must be masked too).
# 18..22-digit runs starting with 89 are ICCIDs: they identify a SIM card, not a person, and the
# MQTT contract publishes them, so they stay visible.
_NUMBER = re.compile(r"(?<![\d.])(\+?)(\d{7,22})(?!\d)")


def _mask(match: re.Match[str]) -> str:
    plus, digits = match.group(1), match.group(2)
    if not plus and len(digits) >= 18 and digits.startswith("89"):
        return match.group(0)
    if len(digits) > 17:
        return match.group(0) if not plus else f"+{'*' * (len(digits) - 2)}{digits[-2:]}"
    return f"{plus}{digits[:2]}{'*' * (len(digits) - 4)}{digits[-2:]}"


def redact_text(text: str) -> str:
    """Mask every phone-number-like run of digits in ``text``."""
    if not any(ch.isdigit() for ch in text):
        return text
    return _NUMBER.sub(_mask, text)


def redact_value(value: Any) -> Any:
    """Recursively redact strings inside dicts, lists and tuples."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [redact_value(v) for v in value]
    return value
