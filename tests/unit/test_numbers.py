"""Destination numbers: E.164 with the '+', national only with a region, premium and short
codes refused by default, the fictional ranges dialled like any other, hashes unchanged."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType
from pydantic import ValidationError

from simbank.bank.numbers import (
    RESTRICTED,
    InvalidNumber,
    NumberKind,
    RestrictedNumber,
    parse_destination,
)
from simbank.config.models import ComplianceConfig
from simbank.contract import ERROR_CODES, CallRequest, SmsRequest
from simbank.store.dnc import DoNotCallList
from simbank.store.secret import DestinationHasher

NO_REGION = ComplianceConfig()
GB = ComplianceConfig(default_region="GB")
US = ComplianceConfig(default_region="US")


@pytest.mark.parametrize(
    ("typed", "compliance", "e164"),
    [
        ("+442079460123", NO_REGION, "+442079460123"),
        ("+44 20 7946 0123", NO_REGION, "+442079460123"),
        ("+44 (0)20 7946 0123", NO_REGION, "+442079460123"),
        ("00442079460123", NO_REGION, "+442079460123"),
        ("0044 20-7946-0123", NO_REGION, "+442079460123"),
        ("+15550100123", NO_REGION, "+15550100123"),
        ("+1 555 0100 123", NO_REGION, "+15550100123"),
        ("+1 (555) 010-0123", NO_REGION, "+15550100123"),
        ("+1.555.010.0123", NO_REGION, "+15550100123"),
        ("+15550123", NO_REGION, "+15550123"),  # NANP 555-0123 without an area code
        ("+1 555 000 0001", NO_REGION, "+15550000001"),  # area code 555: in no plan
        ("+447700900123", NO_REGION, "+447700900123"),
        ("+44 7700 900123", GB, "+447700900123"),  # international stays international
        ("020 7946 0123", GB, "+442079460123"),
        ("07700 900123", GB, "+447700900123"),
        ("2079460123", GB, "+442079460123"),
        # libphonenumber takes a leading country code without '+' when the rest is valid.
        ("442079460123", GB, "+442079460123"),
        ("(201) 555-0123", US, "+12015550123"),
        ("011 44 20 7946 0123", US, "+442079460123"),  # the region's own international prefix
    ],
)
def test_destinations_become_e164_with_the_plus(
    typed: str, compliance: ComplianceConfig, e164: str
) -> None:
    destination = parse_destination(typed, compliance)
    assert destination.e164 == e164
    assert destination.dial == e164  # what the modem is given: ATD+...; / AT+CMGS="+..."
    assert destination.kind in {NumberKind.ORDINARY, NumberKind.FICTIONAL}


@pytest.mark.parametrize(
    ("typed", "valid", "number_type"),
    [
        ("+15550100123", False, PhoneNumberType.UNKNOWN),
        ("+447700900123", False, PhoneNumberType.UNKNOWN),
        ("+442079460123", True, PhoneNumberType.FIXED_LINE),
    ],
)
def test_fictional_numbers_are_dialled_although_libphonenumber_may_call_them_invalid(
    typed: str, valid: bool, number_type: int
) -> None:
    # What libphonenumber says of our test numbers (why numbers.py has its fictional ranges):
    # no network routes +1 555 or 07700 900, so its metadata has them as invalid.
    parsed = phonenumbers.parse(typed)
    assert phonenumbers.is_valid_number(parsed) is valid
    assert phonenumbers.number_type(parsed) == number_type
    destination = parse_destination(typed, NO_REGION)
    assert destination.e164 == typed
    assert destination.kind is (NumberKind.ORDINARY if valid else NumberKind.FICTIONAL)


@pytest.mark.parametrize(
    ("typed", "compliance"),
    [
        ("020 7946 0123", NO_REGION),  # national, no region to read it in
        ("442079460123", NO_REGION),  # the old wire form: a national number to the network
        ("15550100123", NO_REGION),
        ("+44 20 7946 01234", NO_REGION),  # one digit too many
        ("+44 20 7946 012", NO_REGION),  # one too few
        ("+1555", NO_REGION),
        ("+999 1234 5678", NO_REGION),  # no such country code
        ("+1 555 CALL NOW", NO_REGION),  # vanity letters
        ("+44 20 7946 0123 ext 5", NO_REGION),
        ("++442079460123", NO_REGION),
        ("+", NO_REGION),
        ("", NO_REGION),
        ("020 7946 0123", US),  # not a US number
        ("12345678901234567890", GB),
    ],
)
def test_invalid_numbers_are_validation_errors(typed: str, compliance: ComplianceConfig) -> None:
    with pytest.raises(InvalidNumber) as caught:
        parse_destination(typed, compliance)
    assert caught.value.reason == "validation_error"
    assert str(caught.value).startswith("number: ")
    digits = "".join(c for c in typed if c.isdigit())
    if len(digits) >= 4:
        assert digits not in str(caught.value)  # error messages never repeat the number


@pytest.mark.parametrize(
    ("typed", "kind"),
    [
        ("+44 909 879 0123", NumberKind.PREMIUM_RATE),  # Ofcom's drama range for 09
        ("+1 900 555 0123", NumberKind.PREMIUM_RATE),  # fictional 555-01xx, but in NPA 900
    ],
)
def test_premium_rate_refused_unless_allowed(typed: str, kind: NumberKind) -> None:
    with pytest.raises(RestrictedNumber) as caught:
        parse_destination(typed, NO_REGION)
    assert caught.value.reason == RESTRICTED == "restricted_destination"
    assert caught.value.data == {"number_type": kind.value}
    allowed = parse_destination(typed, ComplianceConfig(allow_premium_rate=True))
    assert allowed.kind is kind
    assert allowed.dial.startswith("+")


def test_shared_cost_refused_unless_allowed() -> None:
    # libphonenumber's own example of the type (never dialled: this is a pure function).
    example = phonenumbers.example_number_for_type("FR", PhoneNumberType.SHARED_COST)
    assert example is not None
    typed = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    with pytest.raises(RestrictedNumber) as caught:
        parse_destination(typed, NO_REGION)
    assert caught.value.kind is NumberKind.SHARED_COST
    assert parse_destination(typed, ComplianceConfig(allow_premium_rate=True)).e164 == typed


def test_short_codes_refused_unless_allowed_and_dialled_as_they_are() -> None:
    with pytest.raises(RestrictedNumber) as caught:
        parse_destination("85075", GB)
    assert caught.value.kind is NumberKind.SHORT_CODE
    allowed = parse_destination(
        "85075", ComplianceConfig(default_region="GB", allow_short_codes=True)
    )
    assert allowed.kind is NumberKind.SHORT_CODE
    assert allowed.dial == "85075"  # a short code has no international form on the air
    assert allowed.e164 == "+4485075"  # the ledger key stays unique across countries
    with pytest.raises(InvalidNumber):
        parse_destination("85075", NO_REGION)  # without a region it is no number at all


@pytest.mark.parametrize("typed", ["999", "112"])
def test_emergency_numbers_never_dialled(typed: str) -> None:
    everything = ComplianceConfig(
        default_region="GB", allow_short_codes=True, allow_premium_rate=True
    )
    with pytest.raises(RestrictedNumber) as caught:
        parse_destination(typed, everything)
    assert caught.value.kind is NumberKind.EMERGENCY


def test_restricted_destination_is_a_contract_error_code() -> None:
    assert RESTRICTED in ERROR_CODES


def test_hash_of_a_number_is_unchanged_by_e164_parsing() -> None:
    secret = b"k" * 32
    hasher = DestinationHasher(secret)
    old_way = hmac.new(secret, b"442079460123", hashlib.sha256).hexdigest()
    assert hasher.hash("+442079460123") == old_way
    for typed, compliance in [
        ("+44 20 7946 0123", NO_REGION),
        ("00442079460123", NO_REGION),
        ("020 7946 0123", GB),
    ]:
        assert hasher.hash(parse_destination(typed, compliance).e164) == old_way


def test_do_not_call_list_matches_national_entries_in_the_default_region(tmp_path: Path) -> None:
    hasher = DestinationHasher(b"s" * 32)
    path = tmp_path / "dnc.txt"
    path.write_text("020 7946 0123\n+15550100150\n07700 900123 # national\n")
    e164 = parse_destination("+442079460123", NO_REGION).e164
    with_region = DoNotCallList.load(path, hasher, region="GB")
    assert with_region.contains_hash(hasher.hash(e164))
    assert with_region.contains("+44 7700 900123")
    assert with_region.contains_hash(hasher.hash("+15550100150"))
    # Without a region a national entry cannot be placed in a country (as before).
    without = DoNotCallList.load(path, hasher)
    assert not without.contains_hash(hasher.hash(e164))
    assert without.contains("+15550100150")


@pytest.mark.parametrize("region", ["GB", "US", "DE"])
def test_default_region_accepted(region: str) -> None:
    assert ComplianceConfig(default_region=region).default_region == region


@pytest.mark.parametrize("region", ["gb", "UK", "XX", "GBR", "", "001", 44])
def test_default_region_must_be_a_known_alpha2_code(region: object) -> None:
    with pytest.raises(ValidationError):
        ComplianceConfig.model_validate({"default_region": region})


@pytest.mark.parametrize("key", ["allow_premium_rate", "allow_short_codes"])
def test_allow_keys_are_strict_booleans(key: str) -> None:
    assert getattr(ComplianceConfig(), key) is False
    with pytest.raises(ValidationError):
        ComplianceConfig.model_validate({key: "yes"})


@pytest.mark.parametrize("model", [CallRequest, SmsRequest])
@pytest.mark.parametrize("typed", ["020 7946 0123", "+44 (0)20 7946-0123", "0044.20.7946.0123"])
def test_national_and_spaced_spellings_reach_the_parser(model: type, typed: str) -> None:
    extra = {"max_duration_s": 5} if model is CallRequest else {"text": "hi"}
    assert model.model_validate({"number": typed, **extra}).number == typed


@pytest.mark.parametrize("typed", ["+44 20 CALL", "12", "+" + "1" * 40, "tel:+442079460123"])
def test_contract_still_refuses_what_is_no_number(typed: str) -> None:
    with pytest.raises(ValidationError):
        CallRequest.model_validate({"number": typed, "max_duration_s": 5})


def test_a_region_never_lets_an_old_digits_only_entry_stop_matching(tmp_path: Path) -> None:
    """An entry written as international digits without "+" (``15550100150``) matched before a
    default region existed; with ``default_region = "GB"`` it would read as a GB national
    number. It is kept both ways: a do-not-call list blocks too much rather than too little."""
    hasher = DestinationHasher(b"s" * 32)
    path = tmp_path / "dnc.txt"
    path.write_text("15550100150\n")
    assert DoNotCallList.load(path, hasher).contains("+15550100150")
    assert DoNotCallList.load(path, hasher, region="GB").contains("+15550100150")
