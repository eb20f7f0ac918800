"""USSD strings decoded by their dcs and content (simbank.sms.ussd, drivers.parse.messaging
.parse_cusd). Real strings from Gammu's tests/at-ussd dumps (github.com/gammu/gammu; the
commit each file was read at is named) and chan_dongle (modem-realism.md F4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.drivers.parse.messaging import parse_cusd
from simbank.sms.alphabet import decode_septets
from simbank.sms.septets import unpack
from simbank.sms.ussd import decode_ussd, encode_ussd_request

E160_PACKED = (  # Gammu 47ed87a9, tests/at-ussd/02-E160.dump (dcs 15, packed GSM-7 hex)
    "49B41C74ACD3D16171D90D32FBE52072BA0C72CA5DB45CAC76C3CD6CB41B2D060389CB74F9FE4C07D55C371C"
    "A85897BF1B"
)
E3276_UCS2 = (  # Gammu bb08b72a, tests/at-ussd/issue109-E3276.dump (dcs 72)
    "0414043B044F00200441043F044004300432043A04380020043E002004310430043B0430043D044104350020"
    "043D04300431043504400438044204350020002A0031003000350023002E002004230441043B044304330430"
    "0020043104350441043F043B04300442043D0430002E"
)
HEX_8BIT = (  # Gammu 70077d24, tests/at-ussd/H-issue-hex-8bit.dump (dcs 0, ASCII as hex)
    "536973612070756C73612052702E333030302E416B7469662073642032362F30322F323032302E0A"
)
HE910 = (  # Gammu 162b6714, tests/at-ussd/issue377-HE910-D.dump (dcs 17 + garbage), cut short
    "613906310635064A062F06430020003100300037002E003900330000FFFF60B16260EEEE"
)


@pytest.mark.parametrize(
    ("text", "dcs", "expected"),
    [
        (E160_PACKED, 15, "Ihr Guthaben für die Nr.4915783647410 beträgt 5.78 Euro"),
        (E3276_UCS2, 72, "Для справки о балансе наберите *105#. Услуга бесплатна."),
        (E3276_UCS2, 15, "Для справки о балансе наберите *105#. Услуга бесплатна."),  # mislabelled
        (E3276_UCS2, None, "Для справки о балансе наберите *105#. Услуга бесплатна."),
        (HEX_8BIT, 0, "Sisa pulsa Rp.3000.Aktif sd 26/02/2020.\n"),
        (HE910, 17, "رصيدك 107.93"),
        # plain text stays as it came
        ("Balance 10.00 TEST", 15, "Balance 10.00 TEST"),
        ("Kontostand: 3.00 EUR Bitte w{hlen Sie", None, "Kontostand: 3.00 EUR Bitte w{hlen Sie"),
        # numbers and short words that happen to be hex stay text
        ("1000", 15, "1000"),
        ("20240101", 15, "20240101"),
        ("CAFE", 15, "CAFE"),
        ("0031003200330034", 15, "1234"),  # UCS-2 of digits, mislabelled
        ("00420061006C0061006E00630065", 72, "Balance"),
        ("", 15, ""),
    ],
)
def test_decode_table(text: str, dcs: int | None, expected: str) -> None:
    assert decode_ussd(text, dcs) == expected


def test_packed_request_for_modems_that_want_hex() -> None:
    assert encode_ussd_request("*100#") == ("*100#", 15)
    packed, dcs = encode_ussd_request("*100#", packed_hex=True)
    assert (packed, dcs) == ("AA180C3602", 15)
    # 7 septets: a CR fills the last octet instead of 7 zero bits that read as '@'
    seven, _ = encode_ussd_request("*123*1#", packed_hex=True)
    assert decode_septets(unpack(bytes.fromhex(seven))) == "*123*1#\r"
    assert decode_ussd(seven, 15) == "*123*1#"


@pytest.mark.parametrize(
    ("line", "status", "text"),
    [
        ('+CUSD: 0,"' + E160_PACKED + '",15', 0, "Ihr Guthaben für die Nr.4915783647410 beträgt 5.78 Euro"),
        ('+CUSD: 2,"00480069",15', 2, "Hi"),  # m=2 keeps its text
        ("+CUSD: 0, " + E160_PACKED, 0, "Ihr Guthaben für die Nr.4915783647410 beträgt 5.78 Euro"),
        ("+CUSD: 4", 4, None),
        ('+CUSD: 1,"1 Balance 2 Bundles",15', 1, "1 Balance 2 Bundles"),
    ],
)  # fmt: skip
def test_parse_cusd(line: str, status: int, text: str | None) -> None:
    reply = parse_cusd(line)
    assert reply.status == status
    assert reply.text == text


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ABC:.,0123456789*#", min_size=4, max_size=90))
def test_packed_gsm7_hex_round_trip(text: str) -> None:
    packed, dcs = encode_ussd_request(text, packed_hex=True)
    decoded = decode_ussd(packed, dcs)
    # a text is read back, unless it is one the rule keeps as typed (then it came back hex)
    assert decoded in (text, packed)
    if any(c.isalpha() and c not in "ABCDEFabcdef" for c in text):
        assert decoded == text


@given(st.text(alphabet="абвгдежз ,.0123456789你好", min_size=2, max_size=60).filter(str.strip))
def test_ucs2_hex_round_trip(text: str) -> None:
    hex_text = text.encode("utf-16-be").hex().upper()
    assert decode_ussd(hex_text, 72) == text
