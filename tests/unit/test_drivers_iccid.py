"""ICCIDs as real cards and modems report them (issue 11 item 7).

Sources, cited per row:
  MM-T    ModemManager src/tests/test-modem-helpers.c, test_iccid_parse_* (test name given)
  MM-C    ModemManager commit log: 099d54a4 (China Mobile hex ICCIDs "898602F9…", "898602C0…"),
          b5ef861d (Huawei ^ICCID swapped on some firmware), 02821232 (u-blox 19 digits)
  MM-CRSM ModemManager src/tests/test-modem-helpers.c crsm_tests[] (blank/quote variants)
  SIM800  github.com/Linch1/SIM800L README (AT+CCID, bare digits, lower-case "f")
  QLOG    Quectel RM500U device log "+QCCID: 898604B2012290748345" (modem-realism C4, grade U)
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.drivers.parse.identity import (
    iccid_checksum_ok,
    luhn_valid,
    normalise_iccid,
    parse_crsm,
    parse_crsm_iccid,
    parse_iccid,
    swap_bcd,
)
from simbank.errors import ProtocolGarbage

# (line as the modem prints it, ICCID, source)
ICCID_ROWS: list[tuple[str, str, str]] = [
    ('"984402003576012594F9"', "8944200053671052499", "MM-T quoted_swap_19_digit"),
    ("98231420326409614067", "89324102234690160476", "MM-T unquoted_swap_20_digit"),
    ("8944200053671052499F", "8944200053671052499", "MM-T unquoted_unswapped_19_digit"),
    ("8944200053671052499", "8944200053671052499", "MM-T unquoted_unswapped_19_digit_no_f"),
    ('"89324102234690160476"', "89324102234690160476", "MM-T quoted_unswapped_20_digit"),
    ('"898602F9091830030220"', "898602F9091830030220", "MM-T quoted_unswapped_hex_account"),
    ('"898602C0123456789012"', "898602C0123456789012", "MM-T quoted_unswapped_hex_account_2"),
    ("+QCCID: 898602F9091830030220", "898602F9091830030220", "MM-C 099d54a4 via +QCCID"),
    ("+QCCID: 898604B2012290748345", "898604B2012290748345", "QLOG RM500U"),
    ("^ICCID: 98231420326409614067", "89324102234690160476", "MM-C b5ef861d swapped ^ICCID"),
    ('^ICCID: "98231420326409614067"', "89324102234690160476", "MM-C b5ef861d quoted"),
    ("^ICCID: 89324102234690160476", "89324102234690160476", "MM-C b5ef861d unswapped"),
    ("8939103320004650065f", "8939103320004650065", "SIM800 bare, lower-case f"),
    ("+CCID: 8944200053671052499", "8944200053671052499", "MM-C 02821232 u-blox 19 digits"),
]


@pytest.mark.parametrize(("line", "iccid", "src"), ICCID_ROWS, ids=[r[2] for r in ICCID_ROWS])
def test_iccid_real_forms(line: str, iccid: str, src: str) -> None:
    assert parse_iccid(line) == iccid


@pytest.mark.parametrize(
    ("line", "src"),
    [
        ("982314203264096", "MM-T iccid_parse_short"),
        ("98231420326pl9614067", "MM-T iccid_parse_invalid_chars"),
        ('"0044200053671052499"', "MM-T iccid_parse_quoted_invalid_mii"),
        ("0044200053671052499", "MM-T iccid_parse_unquoted_invalid_mii"),
        ("9823142032640961406", "swapped form must have 20 digits (MM rule)"),
        ("89A3142032640961406", "hex letter inside the issuer prefix (MM: index >= 6 only)"),
        ("+CCID: 89F", "padding only"),
    ],
)
def test_iccid_rejected(line: str, src: str) -> None:
    with pytest.raises(ProtocolGarbage):
        parse_iccid(line)


# ---------------------------------------------------------------------------------------------
# The Luhn check digit: a warning, never a refusal
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "iccid", "checksum_ok"),
    [
        # MM's own 19/20-digit test ICCIDs carry no valid check digit; they are ICCIDs still.
        ("+CCID: 8944200053671052499", "8944200053671052499", False),
        ("+CCID: 89324102234690160476", "89324102234690160476", False),
        ("+CCID: 89014103211118510721", "89014103211118510721", False),  # one digit off
        ("+CCID: 89014103211118510720", "89014103211118510720", True),
        ("+QCCID: 89860439101880931012", "89860439101880931012", True),  # 8986: no Luhn
        ("+QCCID: 898602F9091830030220", "898602F9091830030220", True),  # hex: no Luhn
        ("+CCID: 898600123456789012", "898600123456789012", True),  # 18 digits: no check
    ],
)
def test_luhn_failure_is_reported_not_raised(line: str, iccid: str, checksum_ok: bool) -> None:
    assert parse_iccid(line) == iccid
    assert iccid_checksum_ok(iccid) is checksum_ok


# ---------------------------------------------------------------------------------------------
# +CRSM READ BINARY of EF_ICCID
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "iccid", "src"),
    [
        ('+CRSM: 144,0,"984402003576012594F9"', "8944200053671052499", "MM-T swap_19 via +CRSM"),
        ("+CRSM: 144, 0, 98231420326409614067", "89324102234690160476", "MM-CRSM blanks"),
        ('+CRSM: 144, 0,"98231420326409614067"', "89324102234690160476", "MM-CRSM quoted"),
        # 898602F9091830030220 as EF_ICCID stores it (nibbles swapped): MM-C 099d54a4
        ('+CRSM: 144,0,"9868209F908103302002"', "898602F9091830030220", "MM-C hex via +CRSM"),
        ('+CRSM: 145,0,"98231420326409614067"', "89324102234690160476", "MM sw1 0x91 accepted"),
    ],
)
def test_crsm_iccid_real_forms(line: str, iccid: str, src: str) -> None:
    assert parse_crsm_iccid(line) == iccid


@pytest.mark.parametrize(
    "line",
    ['+CRSM: 144,1,"98231420326409614067"', "+CRSM: 106,130", '+CRSM: 144,0,""', "+CRSM: 144"],
)
def test_crsm_iccid_failures(line: str) -> None:
    with pytest.raises(ProtocolGarbage):
        parse_crsm_iccid(line)


def test_parse_crsm_status_and_data() -> None:
    # MM crsm_tests[]: every blank/quote variant gives the same data.
    data = "0054485552415941FFFFFFFFFFFFFFFFFF"
    for line in (
        f"+CRSM: 144, 0, {data}",
        f"+CRSM: 144, 0,{data}",
        f'+CRSM: 144, 0, "{data}"',
        f'+CRSM: 144, 0,"{data}"',
    ):
        assert parse_crsm(line) == (144, 0, data)
    assert parse_crsm("+CRSM: 106,130") == (106, 130, "")


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------
_DIGITS = "0123456789"
_HEXES = "0123456789ABCDEF"
iccids = st.builds(
    lambda issuer, body: "89" + issuer + body,
    st.text(alphabet=_DIGITS, min_size=4, max_size=4),
    st.text(alphabet=_HEXES, min_size=12, max_size=14).filter(lambda b: not b.endswith("F")),
)


@given(iccids)
def test_iccid_round_trips_through_every_modem_form(iccid: str) -> None:
    """Plain, quoted, F-padded and nibble-swapped (EF_ICCID) forms all give the ICCID back."""
    padded = iccid + "F" * (20 - len(iccid))
    assert parse_iccid(iccid) == iccid
    assert parse_iccid(f'+CCID: "{iccid}"') == iccid
    assert parse_iccid(padded.lower()) == iccid
    swapped = swap_bcd(padded)
    assert swap_bcd(swapped) == padded
    assert parse_iccid(f"^ICCID: {swapped}") == iccid
    assert parse_crsm_iccid(f'+CRSM: 144,0,"{swapped}"') == iccid


@given(st.text(alphabet=_DIGITS, min_size=17, max_size=19))
def test_checksum_ok_agrees_with_luhn_for_decimal_iccids(body: str) -> None:
    iccid = "89" + body[:17]
    check = next(d for d in _DIGITS if luhn_valid(iccid + d))
    assert iccid_checksum_ok(iccid + check)
    wrong = str((int(check) + 1) % 10)
    assert iccid_checksum_ok(iccid + wrong) is (iccid + wrong).startswith("8986")


@given(st.one_of(st.text(max_size=30), st.text(alphabet=_HEXES + 'f" +,:^', max_size=30)))
def test_iccid_parsers_raise_only_protocol_garbage(text: str) -> None:
    for parse in (parse_iccid, normalise_iccid, parse_crsm_iccid):
        with contextlib.suppress(ProtocolGarbage):
            parse(text)
    for prefix in ("+CCID: ", "^ICCID: ", "+CRSM: 144,0,"):
        with contextlib.suppress(ProtocolGarbage):
            parse_iccid(prefix + text)
        with contextlib.suppress(ProtocolGarbage):
            parse_crsm_iccid(prefix + text)
