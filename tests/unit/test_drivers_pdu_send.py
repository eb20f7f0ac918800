"""GenericDriver.send_sms without a PTY: a scripted channel (the real AtCodec frames every answer)
records each command, and the tests assert the exact AT sequence: PDU mode probed on the first
send, one ``AT+CMGS=<tpdu length>`` + hex per segment, text mode restored after (failure or
not), and the text-mode fallback for modems without PDU mode."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scripted import ERROR, OK, PROMPT, Answer, ScriptedChannel
from structlog.testing import capture_logs

from simbank.at.channel import AtChannel
from simbank.at.results import LONG, Command
from simbank.drivers.generic import GenericDriver
from simbank.drivers.parse.messaging import parse_cmgf_modes
from simbank.errors import CommandError, ProtocolGarbage
from simbank.sms.dcs import Coding
from simbank.sms.pdu import Submit, decode_pdu
from simbank.sms.segments import segment

NUMBER = "+447700900123"  # fictional (Ofcom drama range)


class ScriptedModem(ScriptedChannel):
    """A scripted channel that also numbers message references (``next_mr``)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer)
        self._mr = 0

    def next_mr(self) -> int:
        self._mr += 1
        return self._mr


def pdu_modem(*, fail_segment: int | None = None) -> ScriptedModem:
    """A modem with PDU mode: the ``fail_segment``-th AT+CMGS (1-based) is refused."""
    cmgs = 0

    def answer(command: Command) -> bytes:
        nonlocal cmgs
        if command.text == "AT+CMGF=?":
            return b"\r\n+CMGF: (0,1)\r\n" + OK
        if command.text.startswith("AT+CMGS="):
            cmgs += 1
            if cmgs == fail_segment:
                return PROMPT + b"\r\n+CMS ERROR: 500\r\n"
            return PROMPT + b"\r\n+CMGS: %d\r\n" % modem.next_mr() + OK
        return OK

    modem = ScriptedModem(answer)
    return modem


def text_modem(cmgf_test: bytes | None = ERROR, cmgf0: bytes | None = ERROR) -> ScriptedModem:
    """A text-mode-only modem; how it answers ``AT+CMGF=?`` and ``AT+CMGF=0`` is chosen."""

    def answer(command: Command) -> bytes | None:
        if command.text == "AT+CMGF=?":
            return cmgf_test
        if command.text == "AT+CMGF=0":
            return cmgf0
        if command.text.startswith("AT+CMGS="):
            return PROMPT + b"\r\n+CMGS: %d\r\n" % modem.next_mr() + OK
        return OK

    modem = ScriptedModem(answer)
    return modem


def driver_on(modem: ScriptedModem) -> GenericDriver:
    return GenericDriver(cast(AtChannel, modem))


def send(driver: GenericDriver, text: str, **kwargs: Any) -> list[int]:
    return asyncio.run(driver.send_sms(NUMBER, text, **kwargs))


def submits(modem: ScriptedModem) -> list[tuple[Command, Submit]]:
    out = []
    for command in modem.sent:
        if command.text.startswith("AT+CMGS="):
            assert command.payload is not None
            decoded = decode_pdu(command.payload)
            assert isinstance(decoded, Submit)
            out.append((command, decoded))
    return out


# -- PDU mode -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count", "coding"),
    [
        ("hello from the tests", 1, Coding.GSM7),
        ("x" * 400, 3, Coding.GSM7),  # 153 + 153 + 94 septets
        ("短信" * 200, 6, Coding.UCS2),  # 400 UCS-2 characters: 67 per segment
    ],
)
def test_pdu_mode_sends_one_cmgs_per_segment_then_back_to_text_mode(
    text: str, count: int, coding: Coding
) -> None:
    modem = pdu_modem()
    driver = driver_on(modem)
    references = send(driver, text)
    assert references == list(range(1, count + 1))
    lengths = [
        command.text.removeprefix("AT+CMGS=") for command in modem.sent if "CMGS" in command.text
    ]
    assert modem.texts == [
        "AT+CMGF=?",
        "AT+CMGF=0",
        *(f"AT+CMGS={n}" for n in lengths),
        "AT+CMGF=1",
    ]
    assert driver.capabilities["pdu_mode"] is True
    sent = submits(modem)
    assert len(sent) == count
    assert "".join(submit.text for _, submit in sent) == text
    for sequence, (command, submit) in enumerate(sent, start=1):
        assert command.payload is not None
        smsc_octets = int(command.payload[:2], 16)
        assert int(command.text.removeprefix("AT+CMGS=")) == len(command.payload) // 2 - 1 - (
            smsc_octets
        )
        assert command.sensitive
        assert command.timeout == LONG
        assert command.prefix == "+CMGS"
        assert submit.destination.value == NUMBER
        assert submit.coding is coding
        assert submit.status_report_request is False
        if count == 1:
            assert submit.concat is None
        else:
            assert submit.concat is not None
            assert (submit.concat.total, submit.concat.sequence) == (count, sequence)
    if count > 1:
        assert len({submit.concat.reference for _, submit in sent if submit.concat}) == 1


def test_the_second_send_switches_without_probing_and_takes_a_new_reference() -> None:
    modem = pdu_modem()
    driver = driver_on(modem)
    send(driver, "y" * 200)
    first = {s.concat.reference for _, s in submits(modem) if s.concat}
    modem.sent.clear()
    send(driver, "z" * 200, status_report=True)
    assert modem.texts[0] == "AT+CMGF=0"
    assert modem.texts[-1] == "AT+CMGF=1"
    second = submits(modem)
    assert all(submit.status_report_request for _, submit in second)
    assert {s.concat.reference for _, s in second if s.concat} != first


def test_the_concatenation_reference_wraps_within_0_to_255() -> None:
    modem = pdu_modem()
    driver = driver_on(modem)
    seen = []
    for _ in range(258):
        modem.sent.clear()
        send(driver, "w" * 161)
        concat = submits(modem)[0][1].concat
        assert concat is not None
        seen.append(concat.reference)
    assert all(0 <= reference <= 255 for reference in seen)
    assert len(set(seen[:256])) == 256


def test_a_failed_segment_raises_is_logged_and_text_mode_is_restored() -> None:
    modem = pdu_modem(fail_segment=2)
    driver = driver_on(modem)
    with capture_logs() as logs, pytest.raises(CommandError):
        send(driver, "短信" * 200)
    assert modem.texts[-1] == "AT+CMGF=1"
    assert [t for t in modem.texts if t.startswith("AT+CMGS=")].__len__() == 2
    failed = [entry for entry in logs if entry["event"] == "sms_segment_failed"]
    assert len(failed) == 1
    assert failed[0]["segment"] == 2
    assert failed[0]["segments"] == 6
    assert failed[0]["sent"] == 1
    assert failed[0]["code"] == 500
    # Privacy: neither the number nor the text in any log entry.
    flat = repr(logs)
    assert "7700900123" not in flat
    assert "短信" not in flat


# -- text-mode fallback -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmgf_test", "cmgf0"),
    [
        (ERROR, ERROR),  # no test form at all
        (b"\r\n+CMGF: (1)\r\n" + OK, OK),  # lists text mode only
        (b"\r\n+CMGF: (0,1)\r\n" + OK, b"\r\n+CMS ERROR: 303\r\n"),  # lists 0, refuses it
        (None, None),  # silence
        (b"\r\n+CMGF: garbage\r\n" + OK, OK),
        (b"\r\n+CME ERROR: 4\r\n", OK),
    ],
)
def test_a_modem_without_pdu_mode_sends_one_segment_as_today(
    cmgf_test: bytes | None, cmgf0: bytes | None
) -> None:
    modem = text_modem(cmgf_test, cmgf0)
    driver = driver_on(modem)
    assert send(driver, "hello") == [1]
    assert driver.capabilities["pdu_mode"] is False
    cmgs = [command for command in modem.sent if command.text.startswith("AT+CMGS")]
    assert [(c.text, c.payload, c.sensitive) for c in cmgs] == [
        (f'AT+CMGS="{NUMBER}"', "hello", True)
    ]
    assert "AT+CMGF=1" not in modem.texts  # text mode was never left
    modem.sent.clear()
    assert send(driver, "again") == [2]
    assert modem.texts == [f'AT+CMGS="{NUMBER}"']  # probed once


def test_a_long_gsm7_text_in_text_mode_goes_as_separate_messages() -> None:
    modem = text_modem()
    driver = driver_on(modem)
    text = "x" * 400
    assert send(driver, text) == [1, 2, 3]
    payloads = [c.payload for c in modem.sent if c.text.startswith("AT+CMGS")]
    assert payloads == list(segment(text).parts)


def test_a_text_outside_gsm7_in_text_mode_is_refused_before_anything_is_sent() -> None:
    modem = text_modem()
    driver = driver_on(modem)
    with pytest.raises(CommandError, match="no PDU mode: a text outside GSM-7 cannot be sent"):
        send(driver, "Привет")
    assert not any(t.startswith("AT+CMGS") for t in modem.texts)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        ("+44 7700 900123", "hi"),
        ("", "hi"),
        ("TESTNET", "hi"),
        (NUMBER, "a\x1ab"),
        (NUMBER, "\x1b"),
    ],
)
def test_bad_input_is_refused_before_the_modem_is_asked(number: str, text: str) -> None:
    modem = pdu_modem()
    with pytest.raises(ValueError):
        asyncio.run(driver_on(modem).send_sms(number, text))
    assert modem.sent == []


# -- the +CMGF test answer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "modes"),
    [
        ("+CMGF: (0,1)", {0, 1}),
        ("+CMGF: (0-1)", {0, 1}),
        ("+CMGF: ( 0 , 1 )", {0, 1}),
        ("+CMGF: 0,1", {0, 1}),
        ("+CMGF: (1)", {1}),
        ("+CMGF: (0)", {0}),
        ("+cmgf: (0,1)", {0, 1}),
        ("+CMGF:", set()),
        ("+CMGF: (a,b)", set()),
        ("+CMGF: (0-99999)", set()),
        ("+CMGF: (0,1", {0, 1}),
    ],
)
def test_parse_cmgf_modes(line: str, modes: set[int]) -> None:
    assert parse_cmgf_modes(line) == modes


def test_parse_cmgf_modes_wants_its_prefix() -> None:
    with pytest.raises(ProtocolGarbage):
        parse_cmgf_modes("+CMGS: 5")


@given(st.text(max_size=30))
def test_parse_cmgf_modes_never_raises_on_a_cmgf_line(body: str) -> None:
    modes = parse_cmgf_modes("+CMGF: " + body)
    assert all(mode >= 0 for mode in modes)
