"""SMS PDUs (simbank.sms.pdu, .address, .udh) against real PDUs with the fields their source
expects: ModemManager src/tests/test-sms-part-3gpp.c
(github.com/linux-mobile-broadband/ModemManager @ 03223fe78612b9551f34f9740d8ba52b951e6226;
the test function is named on each case). Our own cases use fictional numbers only."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.errors import ProtocolGarbage
from simbank.sms.address import encode_address
from simbank.sms.dcs import Coding
from simbank.sms.pdu import (
    Deliver,
    DeliveryStatus,
    StatusReport,
    Submit,
    decode_pdu,
    encode_submit,
    relative_validity,
)
from simbank.sms.udh import concat_header, parse_udh

MM = "ModemManager test-sms-part-3gpp.c"


def _tz(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


def _deliver(hex_pdu: str) -> Deliver:
    message = decode_pdu(hex_pdu)
    assert isinstance(message, Deliver)
    return message


# -- SMS-DELIVER -----------------------------------------------------------------------------

PDU1 = (  # test_pdu1: extension characters, a negative time zone
    "07912104442961F4040B916171957291F8000011208211050 50A"
    "6AC8B2BC7C9A83C220F6DB7D2ECB41EDF27C1E3E97411BDE06754FD3D1A0F9BB5D0695F1F4B29B5C2683C6E8B03C3CA6"
    "97E5F34D6AE303D1D1F2F7DD0D4ABB59A0797D8C0685E7A00028EC26832A960B28EC2683BE6050780EBA97D96C17"
).replace(" ", "")


def test_pdu1_extension_characters() -> None:  # MM test_pdu1
    message = _deliver(PDU1)
    assert message.smsc == "+12404492164"
    assert message.sender.value == "+16175927198"
    assert message.timestamp == datetime(2011, 2, 28, 11, 50, 50, tzinfo=_tz(-5))
    assert message.text == (
        "Here's a longer message [{with some extended characters}] "
        "thrown in, such as £ and ΩΠΨ and §¿ as well."
    )
    assert message.concat is None


def test_pdu2_alphanumeric_sender_ucs2() -> None:  # MM test_pdu2
    message = _deliver(
        "07919730071111F10414D04937BD2C7797E9D3E6140008113092910240610804420435044104 42".replace(
            " ", ""
        )
    )
    assert message.smsc == "+79037011111"
    assert message.sender.value == "InternetSMS"
    assert message.sender.alphanumeric
    assert message.timestamp == datetime(2011, 3, 29, 19, 20, 4, tzinfo=_tz(4))
    assert message.coding is Coding.UCS2
    assert message.text == "тест"


@pytest.mark.parametrize(
    ("hex_pdu", "number"),
    [
        ("07912143658709F1040B918100551512F20000111010214365000AE8329BFD4697D9EC37", "+18005551212"),  # test_pdu3
        ("07912143658709F1040B918100551512F2FF00111010214365000AE8329BFD4697D9EC37", "+18005551212"),  # test_pdu3_nzpid
        ("07912143658709F1000B918100551512F20000111010214365000AE8329BFD4697D9EC37", "+18005551212"),  # test_pdu3_mms
        ("07912143658709F1040B818100551512F20000111010214365000AE8329BFD4697D9EC37", "18005551212"),  # test_pdu3_natl
    ],
)  # fmt: skip
def test_pdu3_family(hex_pdu: str, number: str) -> None:
    message = _deliver(hex_pdu)
    assert message.smsc == "+12345678901"
    assert message.sender.value == number
    assert message.timestamp == datetime(2011, 1, 1, 12, 34, 56, tzinfo=_tz(0))
    assert message.text == "hellohello"


@pytest.mark.parametrize("dcs", ["04", "F4"])  # test_pdu3_8bit, test_pdu_dcsf_8bit
def test_8bit_data(dcs: str) -> None:
    message = _deliver(
        f"07912143658709F1040B918100551512F200{dcs}111010214365000AE8329BFD4697D9EC37DE"
    )
    assert message.coding is Coding.EIGHT_BIT
    assert message.data == bytes.fromhex("E8329BFD4697D9EC37DE")


def test_dcs_group_f_gsm7() -> None:  # MM test_pdu_dcsf1
    message = _deliver(
        "07913306091093F0040485810000F1116042318051 80A049"
        "B7F90D9A1AA5A01668F8769BD3E4B29B9E2EB359A03FC85D06A9C3ED707A0EA2CBC3EE79BB4CA7CBCBA056436"
        "17DA7C76990FD4D979741EE77DD5E0ED741ED371D442E83E0E1F9BC0CD281E677D9B84C06C1DF7539E85C9097"
        "E520FB9B2E2F83C6EF369C5E064D8D52D0BC2E07DDEF77D7DC2C7799E5A0771D040FCB41F402BB0047BFDD65"
        "50B80ECAD966".replace(" ", "")
    )
    assert message.smsc == "+33609001390"
    assert message.sender.value == "1800"
    assert message.timestamp == datetime(2011, 6, 24, 13, 8, 15, tzinfo=_tz(2))
    assert message.text == (
        "Info SFR - Confidentiel, à ne jamais transmettre -\r\n"
        "Voici votre nouveau mot de passe : sw2ced pour gérer "
        "votre compte SFR sur www.sfr.fr ou par téléphone au 963"
    )


def test_insufficient_data() -> None:  # MM test_pdu_insufficient_data (UDL 11, 10 septets)
    with pytest.raises(ProtocolGarbage):
        decode_pdu("07912143658709F1040B918100551512F20000111010214365000BE8329BFD4697D9EC37")


def test_udhi_welcome_message() -> None:  # MM test_pdu_udhi (KPN NL), a 16-bit reference IE 08
    message = _deliver(
        "07911356131313F64004850120390011609232239180A006080400100201D7327BFD6EB340E232"
        "1BF46E83EA7790F59D1E97DBE1341B442F83C465763D3DA797E56537C81D0ECB41AB59CC1693C1"
        "6031D96C064241E5656838AF03A96230982A269BCD462917C8FA4E8FCBED709A0D7ABBE9F6B0FB"
        "5C7683D27350984D4FABC9A0B33C4C4FCF5D20EBFB2D079DCB62793DBD06D9C36E50FB2D4E97D9"
        "A0B49B5E96BBCB"
    )
    assert message.smsc == "+31653131316"
    assert message.sender.value == "1002"
    assert message.timestamp == datetime(2011, 6, 29, 23, 32, 19, tzinfo=_tz(2))
    assert message.text == (
        "Welkom, bel om uw Voicemail te beluisteren naar +31612001233"
        " (PrePay: *100*1233#). Voicemail ontvangen is altijd gratis."
        " Voor gebruik van mobiel interne"
    )
    assert message.concat is not None
    assert message.concat.wide
    assert (message.concat.reference, message.concat.total, message.concat.sequence) == (16, 2, 1)


def test_multipart_8bit_reference() -> None:  # MM test_pdu_multipart
    first = _deliver(
        "07912160130320F5440B916171056429F5000021405291650569A00500034C0201A9E8F41C949E"
        "83C2207B599E07B1DFEE33885E9ED341E4F23C7D7697C920FA1B54C697E5E3F4BC0C6AD7D9F434"
        "081E96D341E3303C2C4EB3D3F4BC0B94A483E6E8779D4D06CDD1EF3BA80E0785E7A0B7BB0C6A97"
        "E7F3F0B9CC02B9DF7450780EA2DFDF2C50780EA2A3CBA0BA9B5C96B3F369F71954768FDFE4B4FB"
        "0C9297E1F2F2BCECA6CF41"
    )
    second = _deliver(
        "07912160130320F6440B916171056429F5000021405291651569320500034C0202E9E8301D4447"
        "9741F0B09C3E0785E56590BCCC0ED3CB6410FD0D7ABBCBA0B0FB4D4797E52E10"
    )
    assert first.sender.value == second.sender.value == "+16175046925"
    assert first.timestamp == datetime(2012, 4, 25, 19, 56, 50, tzinfo=_tz(-4))
    assert first.concat is not None
    assert second.concat is not None
    assert (first.concat.reference, first.concat.total, first.concat.sequence) == (0x4C, 2, 1)
    assert second.concat.sequence == 2
    assert first.text + second.text == (
        "This is a very long test designed to exercise multi part capability. It should "
        "show up as one message, not as two, as the underlying encoding represents "
        "that the parts are related to one another. "
    )


def test_stored_submit() -> None:  # MM test_pdu_stored_by_us: a SUBMIT read back from storage
    message = decode_pdu(
        "002100098136397339F70008224F60597D4F60597D4F60597D4F60597D4F60597D4F60597D4F60597D4F60597D4F60"
    )
    assert isinstance(message, Submit)
    assert message.smsc is None
    assert message.destination.value == "639337937"
    assert message.text == "你好你好你好你好你好你好你好你好你"
    assert message.status_report_request


def test_status_report() -> None:  # MM test_pdu_not_stored: an SMS-STATUS-REPORT
    report = decode_pdu("07914356060013F1065A098136397339F7219011700463802190117004638030")
    assert isinstance(report, StatusReport)
    assert report.smsc == "+34656000311"
    assert report.reference == 0x5A
    assert report.recipient.value == "639337937"
    assert report.submitted == datetime(2012, 9, 11, 7, 40, 36, tzinfo=_tz(2))
    assert report.discharged == report.submitted
    assert report.status == 0x30
    assert report.outcome is DeliveryStatus.PENDING
    assert not report.outcome.final


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(0x00, DeliveryStatus.DELIVERED), (0x02, DeliveryStatus.DELIVERED),
     (0x20, DeliveryStatus.PENDING), (0x41, DeliveryStatus.FAILED),
     (0x45, DeliveryStatus.FAILED), (0x62, DeliveryStatus.EXPIRED)],
)  # fmt: skip
def test_delivery_status_table(status: int, outcome: DeliveryStatus) -> None:
    assert DeliveryStatus.of(status) is outcome


# -- SMS-SUBMIT ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "text", "expected"),
    [
        (  # MM test_create_pdu_ucs2_no_smsc (validity 5 min)
            "+15555551234",
            "Да здравствует король, детка!",
            "0011000B915155551532F40008003A0414043000200437043404400430043204410442043204430435"
            "04420020043A043E0440043E043B044C002C0020043404350442043A04300021",
        ),
        (  # MM test_create_pdu_gsm_no_smsc
            "+15555551234",
            "Hi there...Tue 17th Jan 2012 05:30.18 pm (GMT+1) ΔΔΔΔΔ",
            "0011000B915155551532F400000036C834888E2ECBCB2E978B5A2F8362373A1AA40CBB4132584C0682D5"
            "7433982B8603C1DB20D4B1495DC552200804028100",
        ),
        (  # MM test_create_pdu_gsm_3: the last septet alone in its octet
            "+15556661234",
            "This is really cool ΔΔΔΔΔ",
            "0011000B915155661632F40000001954747A0E4ACF41F27298CDCE83C6EF371B0481402010",
        ),
    ],
)
def test_submit_matches_modemmanager(number: str, text: str, expected: str) -> None:
    (pdu,) = encode_submit(number, text, validity_minutes=5)
    assert pdu.hex == expected
    assert pdu.tpdu_length == len(expected) // 2 - 1


def test_submit_without_validity() -> None:  # MM test_create_pdu_gsm_no_validity
    (pdu,) = encode_submit("+15556661234", "This is really cool ΔΔΔΔΔ")
    assert (
        pdu.hex == "0001000B915155661632F4000019" + "54747A0E4ACF41F27298CDCE83C6EF371B0481402010"
    )


def test_submit_status_report_and_concat_header() -> None:
    pdus = encode_submit("+447700900123", "x" * 200, reference=7, status_report=True)
    assert len(pdus) == 2
    first = decode_pdu(pdus[0].hex)
    assert isinstance(first, Submit)
    assert first.status_report_request
    assert first.destination.value == "+447700900123"
    assert first.destination.type == 0x91
    assert first.concat is not None
    assert (first.concat.reference, first.concat.total, first.concat.sequence) == (7, 2, 1)
    assert pdus[0].hex.startswith("0061000C91447700091032")  # UDHI|SRR|SUBMIT, MR 00, "+"


@pytest.mark.parametrize(
    ("number", "field"),
    [("+19037029920", "0B919130079229F0"), ("9037029920", "0A8109732099 02".replace(" ", ""))],
)  # MM Address-Encoder intl / unknown
def test_address_encoding(number: str, field: str) -> None:
    assert encode_address(number).hex().upper() == field


@pytest.mark.parametrize(
    ("minutes", "vp"), [(5, 0), (720, 143), (750, 144), (1440, 167), (2 * 1440, 168),
                        (30 * 1440, 196), (35 * 1440, 197), (10**7, 255)],
)  # fmt: skip
def test_relative_validity(minutes: int, vp: int) -> None:
    assert relative_validity(minutes) == vp


def test_udh_headers() -> None:
    assert concat_header(0x4C, 2, 1) == bytes.fromhex("0500034C0201")
    parsed = parse_udh(bytes.fromhex("0804001002010A0100"))
    assert parsed.concat is not None
    assert parsed.concat.reference == 16
    assert len(parsed.elements) == 2
    assert parse_udh(bytes.fromhex("00030102 03".replace(" ", ""))).concat is None  # seq > total
    with pytest.raises(ProtocolGarbage):
        parse_udh(bytes.fromhex("0003"))


# -- round trips -----------------------------------------------------------------------------

GSM_TEXT = st.text(
    alphabet="@£$ΔΦ_ÆÉ !\"#%&'()*+,-./0123456789:;<=>?ABCXYZÄÖabcxyzäöñüà\n^{}\\[~]|€", max_size=500
)
UCS2_TEXT = st.text(alphabet="жäab 你好😀🇬🇧€", min_size=1, max_size=300).filter(
    lambda t: any(c in t for c in "ж你好😀🇬🇧")
)


def _decode_all(pdus: list[str]) -> str:
    texts = []
    for hex_pdu in pdus:
        message = decode_pdu(hex_pdu)
        assert isinstance(message, Submit)
        texts.append(message.text)
    return "".join(texts)


@settings(max_examples=60)
@given(GSM_TEXT, st.integers(0, 255), st.booleans())
def test_gsm7_round_trip(text: str, reference: int, report: bool) -> None:
    pdus = encode_submit("+447700900001", text, reference=reference, status_report=report)
    assert _decode_all([p.hex for p in pdus]) == text
    for pdu in pdus:
        assert pdu.tpdu_length == len(pdu.hex) // 2 - 1
        assert pdu.tpdu_length <= 164  # 140 octets of user data + the header fields


@settings(max_examples=60)
@given(UCS2_TEXT)
def test_ucs2_round_trip(text: str) -> None:
    pdus = encode_submit("+15550123", text)
    assert decode_pdu(pdus[0].hex).coding is Coding.UCS2  # type: ignore[union-attr]
    assert _decode_all([p.hex for p in pdus]) == text
