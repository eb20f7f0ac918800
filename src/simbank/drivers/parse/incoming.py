"""Inbound calls: ``RING``, ``+CRING: <type>`` (27.007 §6.11, with ``AT+CRC=1``) and
``+CLIP: <number>,<type>[,<subaddr>,<satype>[,<alpha>[,<CLI validity>]]]`` (27.007 §7.6, with
``AT+CLIP=1``).

A RING says "it rings once more"; the caller's number comes in a ``+CLIP`` line after it (after
each RING on most modems). The number is missing — an empty string, or no field — when the
caller withheld it (``<CLI validity>`` 1) or the network could not give it (2: unavailable,
e.g. a call from a network that does not pass it; 3/4 in 27.007 later releases: payphone,
other service).
"""

from __future__ import annotations

from dataclasses import dataclass

from simbank.drivers.parse.fields import body_of, opt_int, split_fields, unquote
from simbank.errors import ProtocolGarbage

#: ``<CLI validity>``: 0 valid; every other value means no number to show.
CLI_VALID = 0
CLI_WITHHELD = 1
CLI_UNAVAILABLE = 2


@dataclass(frozen=True, slots=True)
class Ring:
    """One ring of an inbound call: ``RING`` (``kind`` None) or ``+CRING: <kind>``
    (``VOICE``, ``FAX``, ``ASYNC``, ``REL ASYNC``, ``GPRS …``)."""

    kind: str | None = None

    @property
    def voice(self) -> bool:
        """A voice call (a plain RING is taken for one: it is what a voice modem sends)."""
        return self.kind is None or self.kind.upper().startswith("VOICE")


@dataclass(frozen=True, slots=True)
class CallerId:
    """The caller as ``+CLIP`` gave it: ``number`` None when withheld or unavailable."""

    number: str | None
    number_type: int | None = None
    validity: int | None = None

    @property
    def withheld(self) -> bool:
        """No number to show: withheld by the caller, unavailable, or simply empty."""
        return self.number is None

    @property
    def reason(self) -> str | None:
        """Why there is no number (``withheld``, ``unavailable``), None when there is one."""
        if self.number is not None:
            return None
        if self.validity == CLI_UNAVAILABLE:
            return "unavailable"
        return "withheld"


def parse_ring(line: str) -> Ring:
    """``RING`` → ``Ring(None)``; ``+CRING: VOICE`` → ``Ring("VOICE")``."""
    text = line.strip()
    if text.upper() == "RING":
        return Ring()
    _prefix, body = body_of(text, ("+CRING",))
    kind = unquote(body).strip()
    if not kind:
        raise ProtocolGarbage("+CRING without a type", raw=line)
    return Ring(kind.upper())


def parse_clip(line: str) -> CallerId:
    """``+CLIP: "+15550100123",145,,,,0`` → the number, its type and validity.

    ``+CLIP: "",128,,,,1`` (withheld), ``+CLIP: ,,,,,2`` (unavailable) and a number given with
    validity 1 or 2 (kept out: the network says it must not be shown) all give no number.
    """
    _prefix, body = body_of(line, ("+CLIP",))
    fields = split_fields(body, raw=line)
    if not fields or (len(fields) == 1 and not fields[0]):
        raise ProtocolGarbage("+CLIP without a number field", raw=line)
    number = unquote(fields[0]).strip() or None
    number_type = opt_int(fields[1]) if len(fields) > 1 else None
    validity = opt_int(fields[5]) if len(fields) > 5 else None
    if validity is not None and validity != CLI_VALID:
        number = None
    if number is not None and not any(ch.isdigit() for ch in number):
        number = None  # "Unknown", "Private": a word, not a number
    return CallerId(number=number, number_type=number_type, validity=validity)
