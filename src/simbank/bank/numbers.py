"""Destination numbers: whatever a client typed → the E.164 number to dial, or a typed refusal.

The modem must be given the international form *with* its "+" (``ATD+442079460123;``,
``AT+CMGS="+442079460123"``): without it the network reads the digits as a national number
and rings somebody else. Numbers are parsed with the ``phonenumbers`` library (Google's
libphonenumber) rather than our own digit rules because its numbering-plan metadata — which
country codes exist, how long each country's numbers are, which ranges are premium-rate,
shared-cost or short codes — is maintained and released every few weeks as regulators change
their plans; a hand-kept table would quietly rot.

Rules, in order:

- Separators (spaces, ``()``, ``.``, ``-``, ``/``) are ignored; a leading ``00`` is the
  international prefix (read as "+"). Letters (vanity numbers) are refused.
- A number without "+" or "00" is a national number: read in ``[compliance] default_region``
  when one is configured, refused (``validation_error``) otherwise — a bare ``442079460123``
  is exactly the mistake this module exists to stop.
- A number libphonenumber calls valid is accepted as what it is; premium-rate and shared-cost
  numbers are refused (``restricted_destination``) unless ``allow_premium_rate``.
- **Fictional numbers** are accepted as ordinary numbers although libphonenumber calls some of
  them invalid: the NANP's 555-0100…0199 (with or without an area code), area code 555
  (+1 555 xxx xxxx, no such area code is in service; our tests use +1 555 01xx xxx), and
  Ofcom's drama ranges +44 7700 900xxx and +44 20 7946 0xxx. Nobody can be reached on them,
  which makes them the only numbers our tests, demo and docs use — and those must be dialled
  like any other. libphonenumber has +15550100123 and +447700900123 as invalid (unknown
  type), +442079460123 as a valid fixed line. A fictional number that libphonenumber
  classifies as premium-rate (+1 900 555 0123) stays premium-rate.
- Short codes (``85075``, ``118118``, reachable only through a default region) are refused
  unless ``allow_short_codes``; they are dialled as their digits, not as E.164. Emergency
  numbers are never dialled by a bank of SIMs, whatever the configuration.
- Anything else is not a number (``validation_error``).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType, shortnumberinfo

from simbank.config.models import ComplianceConfig
from simbank.errors import Refused

#: The MQTT error code of a number refused by the compliance policy (contract ``ErrorCode``).
RESTRICTED = "restricted_destination"
_SEPARATORS = re.compile(r"[\s().\-/]")
_DIALLABLE = re.compile(r"\+?[0-9]+")
_FICTIONAL = (
    # NANP 555-0100..0199, with or without an area code: the brief's "+1 555 01xx" form is
    # the 7 digits alone, and tests and bench/flood.py dial it so.
    re.compile(r"\+1(?:[2-9]\d\d)?55501\d\d"),
    re.compile(r"\+1555\d{7}"),  # +1 555 xxx xxxx: area code 555 is in no numbering plan
    re.compile(r"\+447700900\d{3}"),  # Ofcom drama range, mobile (07700 900000-900999)
    re.compile(r"\+442079460\d{3}"),  # Ofcom drama range, London (020 7946 0000-0999)
)


class NumberKind(enum.StrEnum):
    """What a destination is, as far as the compliance policy cares."""

    ORDINARY = "ordinary"
    FICTIONAL = "fictional"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    SHORT_CODE = "short_code"
    EMERGENCY = "emergency"


_RESTRICTED_TYPES = {
    PhoneNumberType.PREMIUM_RATE: NumberKind.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST: NumberKind.SHARED_COST,
}


class InvalidNumber(Refused):
    """Not a phone number we can dial (contract code ``validation_error``)."""

    def __init__(self, message: str) -> None:
        super().__init__("validation_error", f"number: {message}")


class RestrictedNumber(Refused):
    """A real number the compliance policy does not allow (``restricted_destination``)."""

    def __init__(self, kind: NumberKind, message: str) -> None:
        super().__init__(RESTRICTED, message, number_type=str(kind))
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Destination:
    """A parsed destination. ``e164`` (with "+") keys the ledger and the do-not-call list;
    ``dial`` is what the modem is given: ``e164``, or a short code's own digits."""

    e164: str
    dial: str
    kind: NumberKind


def parse_destination(text: str, compliance: ComplianceConfig) -> Destination:
    """The destination ``text`` names, if the compliance policy allows it.

    Raises ``InvalidNumber`` or ``RestrictedNumber``; their messages never repeat the number.
    """
    number = _parse(text, compliance.default_region)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if phonenumbers.is_valid_number(number):
        kind = _RESTRICTED_TYPES.get(phonenumbers.number_type(number), NumberKind.ORDINARY)
    elif any(pattern.fullmatch(e164) for pattern in _FICTIONAL):
        kind = NumberKind.FICTIONAL
    elif shortnumberinfo.is_valid_short_number(number):
        return _short_code(number, e164, compliance)
    else:
        raise InvalidNumber("not a valid phone number")
    if kind in _RESTRICTED_TYPES.values() and not compliance.allow_premium_rate:
        what = kind.value.replace("_", "-")
        raise RestrictedNumber(kind, f"{what} numbers are not allowed (allow_premium_rate)")
    return Destination(e164, e164, kind)


def canonical(text: str, region: str | None) -> str | None:
    """``text`` as E.164 if it parses at all (valid or not, any kind), else None.

    For lists of numbers to avoid (the do-not-call list): an entry there must match whatever
    spelling a request uses, and blocking a number costs nothing even when it is odd.
    """
    try:
        number = _parse(text, region)
    except InvalidNumber:
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber:
    cleaned = _SEPARATORS.sub("", text)
    if not cleaned.isascii() or not _DIALLABLE.fullmatch(cleaned):
        raise InvalidNumber("only digits, an optional leading '+' and separators")
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if not cleaned.startswith("+") and region is None:
        raise InvalidNumber(
            "not international: use E.164 ('+' and the country code), or set "
            "[compliance] default_region for national numbers"
        )
    try:
        return phonenumbers.parse(cleaned, region)
    except NumberParseException as exc:
        raise InvalidNumber("not a valid phone number") from exc


def _short_code(
    number: phonenumbers.PhoneNumber, e164: str, compliance: ComplianceConfig
) -> Destination:
    digits = phonenumbers.national_significant_number(number)
    regions = phonenumbers.region_codes_for_country_code(number.country_code or 0)
    if any(shortnumberinfo.is_emergency_number(digits, region) for region in regions):
        raise RestrictedNumber(NumberKind.EMERGENCY, "emergency numbers are never dialled")
    if not compliance.allow_short_codes:
        raise RestrictedNumber(
            NumberKind.SHORT_CODE, "short codes are not allowed (allow_short_codes)"
        )
    cost = shortnumberinfo.expected_cost(number)
    if cost == shortnumberinfo.ShortNumberCost.PREMIUM_RATE and not compliance.allow_premium_rate:
        raise RestrictedNumber(
            NumberKind.PREMIUM_RATE, "premium-rate short codes are not allowed (allow_premium_rate)"
        )
    return Destination(e164, digits, NumberKind.SHORT_CODE)
