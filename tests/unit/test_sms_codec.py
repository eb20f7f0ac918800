"""The GSM 03.38 alphabet, septet packing and segmentation (simbank.sms.alphabet, .septets,
.segments). Real split cases from ModemManager's src/tests/test-sms-part-3gpp.c
(github.com/linux-mobile-broadband/ModemManager @ 03223fe78612b9551f34f9740d8ba52b951e6226,
the Text-Split tests)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.sms.alphabet import decode_septets, encode_septets, is_gsm7, septet_length
from simbank.sms.dcs import Coding, cbs_coding, sms_coding
from simbank.sms.segments import segment
from simbank.sms.septets import pack, packed_length, unpack

GSM_CHARS = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = "\f^{}\\[~]|€"


@pytest.mark.parametrize(
    ("text", "septets"),
    [("A", b"A"), ("@", b"\x00"), ("€", b"\x1be"), ("{x}", b"\x1b(x\x1b)"), ("Δ", b"\x10")],
)
def test_alphabet_table(text: str, septets: bytes) -> None:
    assert encode_septets(text) == septets
    assert decode_septets(septets) == text


def test_not_gsm7() -> None:
    assert not is_gsm7("你好")
    assert not is_gsm7("😀")
    assert is_gsm7(GSM_CHARS + EXTENSION)
    assert septet_length("€[]") == 6
    with pytest.raises(UnicodeEncodeError):
        encode_septets("ж")


def test_escape_to_unknown_code_shows_the_default_character() -> None:
    # 23.038 §6.2.1.1: ESC + a code the extension table lacks → the default character
    assert decode_septets(b"\x1bA\x1b") == "A"


@pytest.mark.parametrize(
    ("text", "packed"),
    [
        ("hellohello", "E8329BFD4697D9EC37"),  # MM test_pdu3's user data
        ("This is really cool ΔΔΔΔΔ", "54747A0E4ACF41F27298CDCE83C6EF371B0481402010"),  # MM GSM-3
    ],
)
def test_packing_real_user_data(text: str, packed: str) -> None:
    assert pack(encode_septets(text)).hex().upper() == packed
    assert decode_septets(unpack(bytes.fromhex(packed), len(text))) == text


def test_unpack_needs_enough_octets() -> None:
    with pytest.raises(ValueError, match="septets"):
        unpack(b"\x41", 3)


@given(st.binary().map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
def test_pack_round_trip(septets: bytes, fill: int) -> None:
    packed = pack(septets, fill)
    assert len(packed) == packed_length(len(septets), fill)
    assert unpack(packed, len(septets), fill) == septets


@given(st.text(alphabet=GSM_CHARS + EXTENSION))
def test_alphabet_round_trip(text: str) -> None:
    assert decode_septets(encode_septets(text)) == text


@pytest.mark.parametrize(
    ("dcs", "coding"),
    [(0x00, Coding.GSM7), (0x04, Coding.EIGHT_BIT), (0x08, Coding.UCS2), (0x18, Coding.UCS2),
     (0xF1, Coding.GSM7), (0xF4, Coding.EIGHT_BIT), (0xE0, Coding.UCS2), (0xC0, Coding.GSM7)],
)  # fmt: skip
def test_sms_dcs(dcs: int, coding: Coding) -> None:
    assert sms_coding(dcs) is coding


@pytest.mark.parametrize(
    ("dcs", "coding"),
    [(15, Coding.GSM7), (0, Coding.GSM7), (72, Coding.UCS2), (68, Coding.EIGHT_BIT),
     (64, Coding.GSM7), (0x11, Coding.UCS2), (0x10, Coding.GSM7), (0xF4, Coding.EIGHT_BIT),
     (None, None), (300, None)],
)  # fmt: skip
def test_cbs_dcs(dcs: int | None, coding: Coding | None) -> None:
    assert cbs_coding(dcs) is coding


# -- segmentation ----------------------------------------------------------------------------

DIGITS_40 = "0123456789" * 4


@pytest.mark.parametrize(
    ("text", "coding", "parts"),
    [
        ("Hello", Coding.GSM7, ["Hello"]),  # MM Text-Split/short
        ("你好", Coding.UCS2, ["你好"]),  # short-UCS2
        (DIGITS_40 * 4, Coding.GSM7, [DIGITS_40 * 4]),  # max-single-pdu
        ("你好" * 35, Coding.UCS2, ["你好" * 35]),  # max-single-pdu-UCS2
        (  # two-pdu
            DIGITS_40 * 4 + "0",
            Coding.GSM7,
            [DIGITS_40 * 3 + "012345678901234567890123456789012", "34567890"],
        ),
        ("你好" * 35 + "好", Coding.UCS2, ["你好" * 33 + "你", "好你好好"]),  # two-pdu-UCS2
        ("", Coding.GSM7, [""]),
    ],
)
def test_segment_modemmanager_cases(text: str, coding: Coding, parts: list[str]) -> None:
    plan = segment(text)
    assert plan.coding is coding
    assert list(plan.parts) == parts
    assert plan.count == len(parts)


def test_extension_pair_never_split() -> None:
    text = "a" * 152 + "€" + "b" * 10  # 164 septets: two parts; the € would straddle 153/154
    plan = segment(text)
    assert plan.parts == ("a" * 152, "€" + "b" * 10)


def test_surrogate_pair_never_split() -> None:
    text = "ж" * 66 + "😀" + "ж" * 10  # the emoji would straddle units 67/68
    plan = segment(text)
    assert plan.coding is Coding.UCS2
    assert plan.parts[0] == "ж" * 66
    assert plan.parts[1].startswith("😀")


def test_400_char_ucs2_is_six_segments() -> None:
    assert segment("ж" * 400).count == 6  # the end-to-end case: ceil(400 / 67)


@given(st.text(alphabet=GSM_CHARS + EXTENSION + "жä😀你", max_size=700))
def test_segments_reassemble_and_fit(text: str) -> None:
    plan = segment(text)
    assert "".join(plan.parts) == text
    single, per_part = (160, 153) if plan.coding is Coding.GSM7 else (70, 67)
    limit = single if plan.count == 1 else per_part
    for part in plan.parts:
        if plan.coding is Coding.GSM7:
            assert septet_length(part) <= limit
        else:
            assert len(part.encode("utf-16-be")) // 2 <= limit
