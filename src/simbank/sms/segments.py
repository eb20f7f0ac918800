"""A text split into the parts that each fit one SMS (3GPP TS 23.040 §9.2.3.24.1, 23.038).

GSM-7 when every character is in the default or extension table: 160 septets alone, 153 per
part when concatenated (the 6-octet header takes 7 septets); an extension character costs two
septets, and its escape pair is never split across parts. Otherwise UCS-2: 70 UTF-16 code
units alone, 67 per part; a surrogate pair (an emoji) is never split. The daemon books
``count`` segments before sending, and a refusal can say how many were needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from simbank.sms.alphabet import is_gsm7, septet_length
from simbank.sms.dcs import Coding

__all__ = ["LIMITS", "Segmentation", "segment", "units_of"]

#: coding → (units in a single message, units per part of a concatenated one)
LIMITS: dict[Coding, tuple[int, int]] = {Coding.GSM7: (160, 153), Coding.UCS2: (70, 67)}


@dataclass(frozen=True, slots=True)
class Segmentation:
    """How ``text`` goes out: its coding and one text per segment, in order."""

    coding: Coding
    parts: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.parts)

    @property
    def concatenated(self) -> bool:
        return len(self.parts) > 1


def units_of(char: str, coding: Coding) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) one character takes."""
    if coding is Coding.GSM7:
        return septet_length(char)
    return 2 if ord(char) > 0xFFFF else 1


def segment(text: str) -> Segmentation:
    """``text`` → its coding and parts (one empty part for an empty text)."""
    coding = Coding.GSM7 if is_gsm7(text) else Coding.UCS2
    single, per_part = LIMITS[coding]
    costs = [units_of(char, coding) for char in text]
    if sum(costs) <= single:
        return Segmentation(coding, (text,))
    parts: list[str] = []
    start = 0
    used = 0
    for index, cost in enumerate(costs):
        if used + cost > per_part:
            parts.append(text[start:index])
            start, used = index, 0
        used += cost
    parts.append(text[start:])
    return Segmentation(coding, tuple(parts))
