"""The home network from IMSI + MNC length (issue 11 item 4: ``imsi[:5]`` is wrong for every
3-digit MNC).

Sources:
  MM-T   ModemManager src/tests/test-modem-helpers.c test_mnc_length (test_mnc_data[]: EF_AD
         bytes → MNC length), crsm_tests[] (+CRSM blank/quote variants)
  MM-S   ModemManager src/mm-base-sim.c load_operator_identifier: AT+CRSM=176,28589,0,0,4,
         operator id = IMSI[:3 + mnc_length]; sw1 0x90/0x91/0x92/0x9F accepted
  31.102 3GPP TS 31.102 §4.2.18 EF_AD: byte 4 b1-b4 = MNC length, b5-b8 RFU
  AOSP   MccTable.java smallestDigitsMnc (LineageOS android_frameworks_opt_telephony)
IMSIs are fictional MSINs under real MCC/MNC pairs.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.drivers.parse.plmn import (
    EF_AD_READ,
    THREE_DIGIT_MNC_MCCS,
    home_network,
    mnc_length_for_mcc,
    parse_ef_ad_mnc_length,
)
from simbank.errors import ProtocolGarbage


def test_ef_ad_read_command() -> None:
    assert EF_AD_READ == "AT+CRSM=176,28589,0,0,4"  # MM-S


@pytest.mark.parametrize(
    ("line", "length", "src"),
    [
        ('+CRSM: 144,0,"00000002"', 2, "MM-T {0,0,0,2} len 4"),
        ('+CRSM: 144,0,"00000003"', 3, "MM-T {0,0,0,3} len 4"),
        ('+CRSM: 144,0,"0000000200"', 2, "MM-T {0,0,0,2} len 5"),
        ("+CRSM: 144, 0, 00FFFF03", 3, "MM-T crsm_tests blanks, unquoted"),
        ('+CRSM: 145,2,"00000002"', 2, "MM-S sw1 0x91 is success"),
        ('+CRSM: 144,0,"000000F3"', 3, "31.102 b5-b8 RFU ignored"),
    ],
)
def test_ef_ad_mnc_length(line: str, length: int, src: str) -> None:
    assert parse_ef_ad_mnc_length(line) == length


@pytest.mark.parametrize(
    ("line", "src"),
    [
        ('+CRSM: 144,0,""', "MM-T {0} len 0"),
        ('+CRSM: 144,0,"000000"', "MM-T {0,0,0,2} len 3: old SIMs have a 3-byte EF_AD"),
        ('+CRSM: 144,0,"00000004"', "MM-T {0,0,0,4}: not 2 or 3"),
        ('+CRSM: 106,130,""', "file not found"),
        ('+CRSM: 148,4,""', "no EF selected"),
        ("ERROR", "not a +CRSM line"),
    ],
)
def test_ef_ad_failures(line: str, src: str) -> None:
    with pytest.raises(ProtocolGarbage):
        parse_ef_ad_mnc_length(line)


@pytest.mark.parametrize(
    ("imsi", "mnc_length", "serving", "home", "why"),
    [
        ("310260000000001", 3, None, "310260", "EF_AD: US, 3 digits"),
        ("310260000000001", None, None, "310260", "AOSP table: 310 is 3-digit"),
        ("302720000000001", None, None, "302720", "AOSP table: Canada"),
        ("334020000000001", None, None, "334020", "AOSP table: Mexico"),
        ("732101000000001", None, None, "732101", "AOSP table: Colombia"),
        ("262010000000001", None, None, "26201", "2-digit MCC by default"),
        ("234150000000001", 2, None, "23415", "EF_AD: UK, 2 digits"),
        ("405025000000001", 3, None, "405025", "EF_AD wins where a country mixes lengths"),
        ("405025000000001", None, "405025", "405025", "numeric +COPS when at home"),
        ("405025000000001", None, '"405025"', "405025", "numeric +COPS, quoted"),
        ("405025000000001", None, None, "40502", "no EF_AD, no +COPS: the table guesses 2"),
        ("262010000000001", None, "310260", "26201", "roaming: +COPS is not the home network"),
        ("310260000000001", 2, "310260", "31026", "EF_AD wins over +COPS"),
    ],
)
def test_home_network(
    imsi: str, mnc_length: int | None, serving: str | None, home: str, why: str
) -> None:
    assert home_network(imsi, mnc_length, serving_plmn=serving) == home


def test_home_network_refuses_non_imsi() -> None:
    with pytest.raises(ProtocolGarbage):
        home_network("31026")
    with pytest.raises(ProtocolGarbage):
        home_network("31026000000000A")
    with pytest.raises(ValueError, match="MNC length"):
        home_network("310260000000001", 4)


def test_three_digit_table_is_aosp() -> None:
    # AOSP MccTable: every entry with smallestDigitsMnc = 3, and nothing else.
    assert sorted(THREE_DIGIT_MNC_MCCS) == [
        "302", "310", "311", "312", "313", "314", "315", "316", "334", "338", "342", "344",
        "346", "348", "365", "708", "722", "732",
    ]  # fmt: skip
    assert mnc_length_for_mcc("310") == 3
    assert mnc_length_for_mcc("262") == 2


@given(
    imsi=st.text(alphabet="0123456789", min_size=6, max_size=15),
    mnc_length=st.sampled_from([2, 3, None]),
    serving=st.one_of(st.none(), st.text(alphabet="0123456789", min_size=5, max_size=6)),
)
def test_home_network_is_a_prefix_of_the_imsi(
    imsi: str, mnc_length: int | None, serving: str | None
) -> None:
    home = home_network(imsi, mnc_length, serving_plmn=serving)
    assert imsi.startswith(home)
    assert len(home) in (5, 6)
    if mnc_length is not None:
        assert len(home) == 3 + mnc_length


@given(st.text(max_size=40))
def test_ef_ad_parser_raises_only_protocol_garbage(text: str) -> None:
    for line in (text, "+CRSM: " + text, "+CRSM: 144,0," + text):
        with contextlib.suppress(ProtocolGarbage):
            assert parse_ef_ad_mnc_length(line) in (2, 3)
