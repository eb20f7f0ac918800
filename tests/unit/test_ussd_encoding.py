"""USSD requests encoded as the modem wants them (simbank.sms.ussd.encode_ussd_request): text,
packed GSM-7 hex (ModemManager's Huawei plugin, chan_dongle, Gammu) and UCS-2 hex (a modem
whose ``AT+CSCS`` is ``"UCS2"``). Known encodings from public sources, then round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.sms.alphabet import decode_septets
from simbank.sms.septets import unpack
from simbank.sms.ussd import encode_ussd_request

_CR = 0x0D


@pytest.mark.parametrize(
    ("code", "packed"),
    [
        ("*100#", "AA180C3602"),  # ModemManager / Huawei manuals' example
        ("*111#", "AA582C3602"),
        ("*101#", "AA182C3602"),
        # Gammu issue 374 sent 2A5ACDA6A28D00 (0 in the 7 spare bits, which reads '@'):
        # the spare bits hold CR (23.038 §6.1.2.3.1), as ModemManager pads for Huawei
        ("*456*4#", "2A5ACDA6A28D1A"),
        ("1", "31"),  # a menu reply
    ],
)
def test_packed_hex_table(code: str, packed: str) -> None:
    assert encode_ussd_request(code, packed_hex=True) == (packed, 15)


@pytest.mark.parametrize(
    ("code", "ucs2"),
    [
        ("*99#", "002A003900390023"),  # Gammu issue 689, Cinterion MC55i with CSCS "UCS2"
        ("*100#", "002A0031003000300023"),
        ("1", "0031"),
    ],
)
def test_ucs2_hex_table(code: str, ucs2: str) -> None:
    assert encode_ussd_request(code, ucs2_hex=True) == (ucs2, 15)


@pytest.mark.parametrize("code", ["*100#", "#123*4*5#", "0", "+"])
def test_plain_text_is_the_code_itself(code: str) -> None:
    assert encode_ussd_request(code) == (code, 15)


def test_packed_and_ucs2_together_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="not both"):
        encode_ussd_request("*100#", packed_hex=True, ucs2_hex=True)


_CODES = st.text(alphabet="0123456789*#+", min_size=1, max_size=160)


@given(_CODES)
def test_packed_round_trip_and_no_trailing_at(code: str) -> None:
    packed, dcs = encode_ussd_request(code, packed_hex=True)
    septets = unpack(bytes.fromhex(packed))
    assert dcs == 15
    # the padding (CR, or nothing) never reads as a character of the code
    assert decode_septets(septets).rstrip("\r") == code
    assert not decode_septets(septets).endswith("@")


@given(_CODES)
def test_ucs2_round_trip(code: str) -> None:
    ucs2, _ = encode_ussd_request(code, ucs2_hex=True)
    assert bytes.fromhex(ucs2).decode("utf-16-be") == code
