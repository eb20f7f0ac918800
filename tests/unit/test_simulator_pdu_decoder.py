"""The simulated modem's own SMS-SUBMIT decoder (``simbank.simulator.pdu``).

Vectors: ModemManager's PDU creator tests (``src/tests/test-sms-part-3gpp.c``,
github.com/linux-mobile-broadband/ModemManager, ``test_create_pdu_*``: encoder outputs used
here as decoder inputs), hand-assembled UDH PDUs (octets commented), and a round-trip property
against the client's independent encoder ``simbank.sms.pdu.encode_submit``.
"""

from __future__ import annotations

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec the table test compares with)
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.simulator.pdu import (
    _BASIC,
    _EXTENSION,
    Coding,
    Concat,
    PduError,
    decode_submit,
)
from simbank.sms.pdu import encode_submit

MM_GSM = (
    "C834888E2ECBCB2E978B5A2F8362373A1AA40CBB4132584C0682D57433982B8603C1DB20D4B1495DC552"
    "200804028100"
)
MM_TEXT = "Hi there...Tue 17th Jan 2012 05:30.18 pm (GMT+1) ΔΔΔΔΔ"

# (pdu hex, TPDU length, destination, coding, text, validity octets)
MODEMMANAGER = [
    # test_create_pdu_gsm_with_smsc: SMSC +19037029920, VPF relative
    ("07919130079229F011000B915155551532F4000000" + "36" + MM_GSM, 62,
     "+15555551234", Coding.GSM7, MM_TEXT, b"\x00"),
    # test_create_pdu_gsm_no_smsc
    ("0011000B915155551532F4000000" + "36" + MM_GSM, 62,
     "+15555551234", Coding.GSM7, MM_TEXT, b"\x00"),
    # test_create_pdu_gsm_3: 25 septets, the last alone in its octet
    ("0011000B915155661632F40000001954747A0E4ACF41F27298CDCE83C6EF371B0481402010", 36,
     "+15556661234", Coding.GSM7, "This is really cool ΔΔΔΔΔ", b"\x00"),
    # test_create_pdu_gsm_no_validity: VPF none
    ("0001000B915155661632F400001954747A0E4ACF41F27298CDCE83C6EF371B0481402010", 35,
     "+15556661234", Coding.GSM7, "This is really cool ΔΔΔΔΔ", b""),
    # test_create_pdu_ucs2_no_smsc
    ("0011000B915155551532F4000800" + "3A"
     "04140430002004370434044004300432044104420432044304350442002004"
     "3A043E0440043E043B044C002C0020043404350442043A04300021", 72,
     "+15555551234", Coding.UCS2, "Да здравствует король, детка!", b"\x00"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pdu", "length", "destination", "coding", "text", "validity"), MODEMMANAGER
)
def test_modemmanager_vectors(
    pdu: str, length: int, destination: str, coding: Coding, text: str, validity: bytes
) -> None:
    submit = decode_submit(pdu, length)
    assert (submit.destination, submit.coding, submit.text) == (destination, coding, text)
    assert submit.validity == validity
    assert submit.concat is None
    assert not submit.status_report


def test_gsm7_with_8bit_concatenation_and_fill_bit() -> None:
    # 00 SMSC | 41 SUBMIT+UDHI, no VP | 00 MR | 0C 91 447700900123 | 00 PID | 00 DCS | 09 UDL
    # UD: 05 00 03 2A 02 01 (IE 00: ref 42, 2 parts, part 1), one fill bit, "Hi" → 90 69
    submit = decode_submit("0041000C914477000910320000" + "09" + "0500032A02019069", 21)
    assert submit.destination == "+447700900123"
    assert submit.text == "Hi"
    assert submit.concat == Concat(42, 2, 1)
    assert submit.coding is Coding.GSM7


def test_ucs2_with_16bit_concatenation_and_status_report() -> None:
    # 00 | 61 SUBMIT+UDHI+SRR | 05 MR | 0B 91 15550100123 | 00 | 08 UCS-2 | 0B UDL
    # UD: 06 08 04 1234 03 02 (IE 08: ref 0x1234, 3 parts, part 2) | 4F60 597D "你好"
    submit = decode_submit("0061050B915155100021F30008" + "0B" + "060804123403024F60597D", 24)
    assert submit.destination == "+15550100123"
    assert submit.text == "你好"
    assert submit.concat == Concat(0x1234, 3, 2)
    assert submit.status_report
    assert submit.message_reference == 5


def test_extension_table_and_national_number() -> None:
    # 0A 81: 10 digits, unknown type (national) 0207946000 → 20 70 49 06 00
    # "€" is ESC 0x65: septets 1B 65 packed → 9B 32
    submit = decode_submit("0001000A8120704906000000029B32", 14)
    assert submit.destination == "0207946000"
    assert submit.text == "€"


BAD = [
    ("0041000C914477000910320000090500032A0201906", 21),  # odd hex
    ("0041000C914477000910320000090500032A020190ZZ", 21),  # not hex
    ("0041000C914477000910320000090500032A02019069", 22),  # length says one octet more
    ("0041000C914477000910320000090500032A02019069", 20),  # length says one octet less
    ("0041000C914477000910320000090500032A020190", 20),  # user data shorter than UDL
    ("0040000C914477000910320000090500032A02019069", 21),  # MTI 00: not a SUBMIT
    ("0041000C914477000910320000090500032A02039069", 21),  # part 3 of 2
    ("0041000C914477000910320000090500032A00009069", 21),  # 0 parts
    ("0041000C914477000910320000090500042A02019069", 21),  # IE 00 with 4 octets
    ("0041000C914477000910320000090800032A02019069", 21),  # UDH longer than UD
    ("0001000C914477000910320008034F6059", 17),  # odd UCS-2 octets
    ("0001000C91447700091032000C024F60", 16),  # reserved alphabet
    ("0001000C914477000910320008", 12),  # no UDL
    ("0001000C9144770009103200", 11),  # no DCS
    ("0001000C91447700", 7),  # address cut short
    ("0001000C9144770009103200081EAAAA", 15),  # UDL 30 but 2 octets
    ("0001000C914477000910320008A0" + "00" * 160, 173),  # UCS-2 UDL 160 > 140
    ("00", 0),  # nothing after the SMSC
    ("", 0),
]


@pytest.mark.parametrize(("pdu", "length"), BAD)
def test_malformed_pdus_are_refused(pdu: str, length: int) -> None:
    with pytest.raises(PduError):
        decode_submit(pdu, length)


def test_alphabet_matches_gsm0338() -> None:
    for value, char in enumerate(_BASIC):
        if value != 0x1B:
            assert bytes([value]).decode("gsm03.38") == char
    for value, char in _EXTENSION.items():
        assert bytes([0x1B, value]).decode("gsm03.38") == char


ALPHABET = st.sampled_from(list(_BASIC.replace("\x1b", "")) + list(_EXTENSION.values()))
TEXTS = st.one_of(
    st.text(ALPHABET, min_size=1, max_size=400),
    st.text(
        st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), min_size=1, max_size=300
    ),
)


@settings(max_examples=150, deadline=None)
@given(text=TEXTS, reference=st.integers(0, 255), srr=st.booleans())
def test_client_encoder_round_trip(text: str, reference: int, srr: bool) -> None:
    pdus = encode_submit("+447700900123", text, reference=reference, status_report=srr)
    decoded = [decode_submit(p.hex, p.tpdu_length) for p in pdus]
    assert "".join(s.text for s in decoded) == text
    assert all(s.destination == "+447700900123" and s.status_report == srr for s in decoded)
    if len(pdus) == 1:
        assert decoded[0].concat is None
    else:
        assert [s.concat for s in decoded] == [
            Concat(reference, len(pdus), n) for n in range(1, len(pdus) + 1)
        ]
