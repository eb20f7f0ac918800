"""USSD session logic (simbank.drivers.ussd) through the real AtChannel and codec, over a
scripted transport: each command line the channel writes is answered with scripted reads
(each read a separate ``data_received``), and the tests assert the AT sequence and the
outcome — the request's form and its one fallback, the form cached per connection, every
session code (0/1/2/3/4/5), a bare ``+CUSD: 2`` skipped before the reply and ignored after it,
``+CUSD`` before or after the ``OK``, ``+CUSD: 4`` with a ``+CME ERROR``, cancel after m=1.
The pure rules (verdict, ranking, form refusals) are table-tested first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from simbank.at.channel import AtChannel
from simbank.at.codes import CmeError
from simbank.at.results import FinalResult, ResultKind
from simbank.drivers.generic import GenericDriver
from simbank.drivers.huawei import HuaweiDriver
from simbank.drivers.types import UssdReply
from simbank.drivers.ussd import (
    CAPABILITY,
    FORM_REFUSAL_CODES,
    Verdict,
    form_refused,
    pick_reply,
    verdict,
)
from simbank.errors import AtTimeout, CommandError, SimStateError

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
PLAIN = 'AT+CUSD=1,"*100#",15'
PACKED = 'AT+CUSD=1,"AA180C3602",15'  # *100# as packed GSM-7 hex (ModemManager's Huawei form)
REPLY = b'\r\n+CUSD: 0,"Your balance is 10.00 TEST",15\r\n'
TEXT = "Your balance is 10.00 TEST"

# -- the pure rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        (0, "done", Verdict.ANSWER),
        (0, None, Verdict.ANSWER),
        (1, "menu", Verdict.ANSWER),
        (2, "ended, with the reply", Verdict.ANSWER),
        (2, None, Verdict.SKIP),
        (2, "", Verdict.SKIP),
        (3, None, Verdict.SKIP),
        (4, None, Verdict.UNSUPPORTED),
        (4, "text anyway", Verdict.UNSUPPORTED),
        (5, None, Verdict.NETWORK_TIMEOUT),
        (9, "unknown m with text", Verdict.ANSWER),
        (9, None, Verdict.SKIP),
    ],
)
def test_verdict_table(status: int, text: str | None, expected: Verdict) -> None:
    assert verdict(UssdReply(status=status, text=text, dcs=15)) is expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([], None),
        (["+CUSD: 2"], None),
        (["+CUSD: 2", "+CUSD: 3"], None),
        (['+CUSD: 0,"A",15'], (0, "A")),
        # python-gsmmodem issue 14 (Vodacom): the release line comes first
        (['+CUSD: 2,"Initiating Release",15', '+CUSD: 0,"A",15'], (0, "A")),
        (['+CUSD: 0,"A",15', '+CUSD: 2,"Initiating Release",15'], (0, "A")),
        (["+CUSD: 2", '+CUSD: 2,"B",15'], (2, "B")),
        (["+CUSD: 4", '+CUSD: 2,"B",15'], (2, "B")),
        (["+CUSD: 2", "+CUSD: 4"], (4, None)),
        (['+CUSD: 1,"M",15', '+CUSD: 0,"A",15'], (1, "M")),  # equals: the first
    ],
)
def test_pick_reply_ranks_lines_read_together(
    lines: list[str], expected: tuple[int, str | None] | None
) -> None:
    reply = pick_reply(lines)
    assert (None if reply is None else (reply.status, reply.text)) == expected


@pytest.mark.parametrize(
    ("final", "refused"),
    [
        (FinalResult(ResultKind.ERROR, None, "ERROR"), True),
        (FinalResult(ResultKind.ERROR, None, "COMMAND NOT SUPPORT"), True),
        *[
            (FinalResult(ResultKind.CME_ERROR, int(code), f"+CME ERROR: {int(code)}"), True)
            for code in sorted(FORM_REFUSAL_CODES)
        ],
        (FinalResult(ResultKind.CME_ERROR, 30, "+CME ERROR: 30"), False),  # no network
        (FinalResult(ResultKind.CME_ERROR, 14, "+CME ERROR: 14"), False),  # SIM busy
        (FinalResult(ResultKind.CME_ERROR, 11, "+CME ERROR: 11"), False),  # SIM PIN
        (FinalResult(ResultKind.CME_ERROR, None, "+CME ERROR: gibberish"), False),
        (FinalResult(ResultKind.CMS_ERROR, 500, "+CMS ERROR: 500"), False),
    ],
)
def test_form_refusal_table(final: FinalResult, refused: bool) -> None:
    assert form_refused(final) is refused


def test_unknown_is_a_form_refusal_because_simcom_sends_it_after_m4() -> None:
    assert CmeError.UNKNOWN in FORM_REFUSAL_CODES


# -- a scripted port under the real AtChannel -----------------------------------------------

Script = Callable[[str], list[bytes]]


class ScriptedPort(asyncio.Transport):
    """The modem end of a channel: every command line written is recorded and answered with
    ``script(line)``, each read delivered by its own ``data_received`` on the loop."""

    def __init__(self, channel: AtChannel, script: Script) -> None:
        super().__init__()
        self.channel = channel
        self.script = script
        self.sent: list[str] = []
        self._closing = False
        self._buffer = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += bytes(data)
        while b"\r" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\r")
            text = line.decode("latin-1").strip()
            if text:
                self.sent.append(text)
                for read in self.script(text):
                    asyncio.get_running_loop().call_soon(self._deliver, read)

    def push(self, data: bytes) -> None:
        """Unsolicited bytes, on the next loop turn."""
        asyncio.get_running_loop().call_soon(self._deliver, data)

    def _deliver(self, data: bytes) -> None:
        if not self._closing:
            self.channel.data_received(data)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            asyncio.get_running_loop().call_soon(self.channel.connection_lost, None)


class Modem:
    """A channel over a scripted port, and a driver on it."""

    def __init__(self, script: Script, driver: type[GenericDriver] = GenericDriver) -> None:
        self.channel = AtChannel("ussd-test")
        self.port = ScriptedPort(self.channel, script)
        self.channel.connection_made(self.port)
        self.driver = driver(self.channel)

    @property
    def sent(self) -> list[str]:
        return self.port.sent


@pytest.fixture
async def closing() -> AsyncIterator[list[Modem]]:
    modems: list[Modem] = []
    yield modems
    for modem in modems:
        modem.channel.close()
        await modem.channel.wait_closed()


def scripted(answers: dict[str, list[bytes]], default: list[bytes] | None = None) -> Script:
    """Answers by exact command line; anything else gets ``default`` (OK)."""
    return lambda line: answers.get(line, default if default is not None else [OK])


async def start(
    closing: list[Modem], script: Script, driver: type[GenericDriver] = GenericDriver
) -> Modem:
    modem = Modem(script, driver)
    closing.append(modem)
    return modem


# -- the request's form ------------------------------------------------------------------------


async def test_plain_answered_after_ok_sends_one_request_and_caches_text(
    closing: list[Modem],
) -> None:
    modem = await start(closing, scripted({PLAIN: [OK, REPLY]}))
    assert await modem.driver.ussd("*100#", timeout=2.0) == TEXT
    assert modem.sent == [PLAIN]
    assert modem.driver.capabilities[CAPABILITY] is False


async def test_reply_before_ok_is_read_from_the_response(closing: list[Modem]) -> None:
    modem = await start(closing, scripted({PLAIN: [REPLY, OK]}))
    assert await modem.driver.ussd("*100#", timeout=2.0) == TEXT
    assert modem.sent == [PLAIN]


@pytest.mark.parametrize("refusal", [ERROR, b"\r\n+CME ERROR: 100\r\n"])
async def test_a_refused_plain_request_is_sent_once_packed_and_that_form_kept(
    closing: list[Modem], refusal: bytes
) -> None:
    modem = await start(closing, scripted({PLAIN: [refusal], PACKED: [OK, REPLY]}))
    assert await modem.driver.ussd("*100#", timeout=2.0) == TEXT
    assert modem.sent == [PLAIN, PACKED]
    assert modem.driver.capabilities[CAPABILITY] is True
    # the next request goes straight in the form that worked
    assert await modem.driver.ussd("*100#", timeout=2.0) == TEXT
    assert modem.sent == [PLAIN, PACKED, PACKED]


async def test_huawei_sends_packed_first_and_falls_back_to_text_once(
    closing: list[Modem],
) -> None:
    modem = await start(closing, scripted({PACKED: [ERROR], PLAIN: [OK, REPLY]}), HuaweiDriver)
    assert await modem.driver.ussd("*100#", timeout=2.0) == TEXT
    assert modem.sent == [PACKED, PLAIN]
    assert modem.driver.capabilities[CAPABILITY] is False


async def test_huawei_packed_answer_needs_no_fallback(closing: list[Modem]) -> None:
    modem = await start(closing, scripted({PACKED: [OK, REPLY]}), HuaweiDriver)
    assert await modem.driver.ussd("*100#", timeout=2.0) == TEXT
    assert modem.sent == [PACKED]


async def test_a_known_form_is_not_changed_by_a_refusal(closing: list[Modem]) -> None:
    modem = await start(closing, scripted({PLAIN: [OK, b"\r\n+CUSD: 4\r\n"]}))
    modem.driver.capabilities[CAPABILITY] = False
    with pytest.raises(CommandError) as caught:
        await modem.driver.ussd("*100#", timeout=2.0)
    assert caught.value.code == 4
    assert modem.sent == [PLAIN]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"\r\n+CME ERROR: 30\r\n", CommandError),  # no network: not the form
        (b"\r\n+CME ERROR: 11\r\n", SimStateError),  # SIM PIN
    ],
)
async def test_errors_that_say_nothing_about_the_form_are_raised_at_once(
    closing: list[Modem], answer: bytes, error: type[Exception]
) -> None:
    modem = await start(closing, scripted({PLAIN: [answer]}))
    with pytest.raises(error):
        await modem.driver.ussd("*100#", timeout=2.0)
    assert modem.sent == [PLAIN]
    assert CAPABILITY not in modem.driver.capabilities


async def test_both_forms_refused_raises_the_modem_error(closing: list[Modem]) -> None:
    modem = await start(closing, scripted({}, default=[ERROR]))
    with pytest.raises(CommandError) as caught:
        await modem.driver.ussd("*100#", timeout=2.0)
    assert caught.value.code is None
    assert modem.sent == [PLAIN, PACKED]
    assert CAPABILITY not in modem.driver.capabilities


# -- session codes ----------------------------------------------------------------------------


async def test_m4_to_the_text_form_is_not_supported_and_not_retried_packed(
    closing: list[Modem],
) -> None:
    """The network read the code and does not support it: a packed retry would only reach it
    as literal hex (and could teach the wrong form); found in review."""
    modem = await start(closing, scripted({}, default=[OK, b"\r\n+CUSD: 4\r\n"]))
    with pytest.raises(CommandError) as caught:
        await modem.driver.ussd("*999#", timeout=2.0)
    assert (caught.value.code, caught.value.retryable) == (4, False)
    assert caught.value.raw == "+CUSD: 4"
    assert len(modem.sent) == 1
    assert CAPABILITY not in modem.driver.capabilities


async def test_m4_to_a_packed_request_falls_back_to_text(closing: list[Modem]) -> None:
    """A text-only modem passes Huawei's packed request on literally; the network answers 4;
    the text form then works and is kept."""
    huawei = scripted({PACKED: [OK, b"\r\n+CUSD: 4\r\n"], PLAIN: [OK, REPLY]})
    modem = await start(closing, huawei, HuaweiDriver)
    assert await modem.driver.ussd("*100#", timeout=2.0) == TEXT
    assert modem.sent == [PACKED, PLAIN]
    assert modem.driver.capabilities[CAPABILITY] is False


async def test_m4_with_a_cme_error_is_not_supported(closing: list[Modem]) -> None:
    """SIMCom: ``+CUSD: 4`` then ``+CME ERROR: unknown`` as the command's final result."""
    m4 = b"\r\n+CUSD: 4\r\n\r\n+CME ERROR: unknown\r\n"
    modem = await start(closing, scripted({}, default=[m4]))
    with pytest.raises(CommandError) as caught:
        await modem.driver.ussd("*999#", timeout=2.0)
    assert (caught.value.code, caught.value.retryable) == (4, False)


async def test_m4_then_an_error_in_the_other_form_still_says_not_supported(
    closing: list[Modem],
) -> None:
    modem = await start(closing, scripted({PLAIN: [OK, b"\r\n+CUSD: 4\r\n"], PACKED: [ERROR]}))
    with pytest.raises(CommandError) as caught:
        await modem.driver.ussd("*100#", timeout=2.0)
    assert caught.value.code == 4


async def test_m5_is_a_network_timeout(closing: list[Modem]) -> None:
    modem = await start(closing, scripted({PLAIN: [OK, b"\r\n+CUSD: 5\r\n"]}))
    with pytest.raises(AtTimeout) as caught:
        await modem.driver.ussd("*100#", timeout=2.0)
    assert caught.value.code == 5
    assert modem.sent == [PLAIN, "AT+CUSD=2"]  # no stale session left for the next request


async def test_m2_keeps_its_text(closing: list[Modem]) -> None:
    modem = await start(closing, scripted({PLAIN: [OK, b'\r\n+CUSD: 2,"Bye now",15\r\n']}))
    assert await modem.driver.ussd("*100#", timeout=2.0) == "Bye now"
    assert modem.sent == [PLAIN]


@pytest.mark.parametrize(
    "reads",
    [
        [OK, b"\r\n+CUSD: 2\r\n", REPLY],  # bare release URC, then the reply
        [b"\r\n+CUSD: 2\r\n", OK, REPLY],  # bare release inside the response
        [OK, b"\r\n+CUSD: 3\r\n", REPLY],  # another local client responded
        [b"\r\n+CUSD: 2\r\n" + REPLY + OK],  # all in one read before the OK
    ],
)
async def test_a_bare_release_before_the_reply_is_skipped(
    closing: list[Modem], reads: list[bytes]
) -> None:
    modem = await start(closing, scripted({PLAIN: reads}))
    assert await modem.driver.ussd("*100#", timeout=2.0) == TEXT
    assert modem.sent == [PLAIN]


async def test_a_bare_release_after_the_reply_is_ignored(closing: list[Modem]) -> None:
    modem = await start(closing, scripted({PLAIN: [OK, REPLY, b"\r\n+CUSD: 2\r\n"]}))
    assert await modem.driver.ussd("*100#", timeout=2.0) == TEXT
    # the next command is answered as usual: the extra release changed nothing
    assert await modem.driver.ussd("*100#", timeout=2.0) == TEXT
    assert modem.sent == [PLAIN, PLAIN]


async def test_only_releases_then_silence_times_out(closing: list[Modem]) -> None:
    modem = await start(closing, scripted({PLAIN: [OK, b"\r\n+CUSD: 2\r\n"]}))
    with pytest.raises(AtTimeout) as caught:
        await modem.driver.ussd("*100#", timeout=0.2)
    assert caught.value.code is None
    assert modem.sent == [PLAIN]  # an OK is no refusal: no second form


MENU = b'\r\n+CUSD: 1,"Select: 1 Balance, 0 Exit",15\r\n'


async def test_further_action_returns_the_menu_and_cancels_the_session(
    closing: list[Modem],
) -> None:
    modem = await start(closing, scripted({'AT+CUSD=1,"*111#",15': [OK, MENU]}))
    assert await modem.driver.ussd("*111#", timeout=2.0) == "Select: 1 Balance, 0 Exit"
    assert modem.sent == ['AT+CUSD=1,"*111#",15', "AT+CUSD=2"]


async def test_a_refused_cancel_is_not_an_error(closing: list[Modem]) -> None:
    """Gammu issue 292: a Huawei E1752C answers ``AT+CUSD=2`` with ERROR."""
    modem = await start(
        closing, scripted({'AT+CUSD=1,"*111#",15': [OK, MENU], "AT+CUSD=2": [ERROR]})
    )
    assert await modem.driver.ussd("*111#", timeout=2.0) == "Select: 1 Balance, 0 Exit"
    assert modem.sent[-1] == "AT+CUSD=2"


async def test_keep_open_lets_the_caller_answer_the_menu(closing: list[Modem]) -> None:
    modem = await start(
        closing,
        scripted(
            {
                'AT+CUSD=1,"*111#",15': [OK, MENU],
                'AT+CUSD=1,"1",15': [OK, b'\r\n+CUSD: 2,"Your balance is 10.00 TEST",15\r\n'],
            }
        ),
    )
    assert await modem.driver.ussd("*111#", timeout=2.0, keep_open=True) == (
        "Select: 1 Balance, 0 Exit"
    )
    assert await modem.driver.ussd("1", timeout=2.0) == TEXT
    assert modem.sent == ['AT+CUSD=1,"*111#",15', 'AT+CUSD=1,"1",15']


@pytest.mark.parametrize("code", ["", "*100#;ATH", 'x"', "*" * 161])
async def test_not_a_ussd_string(closing: list[Modem], code: str) -> None:
    modem = await start(closing, scripted({}))
    with pytest.raises(ValueError, match="USSD"):
        await modem.driver.ussd(code, timeout=1.0)
    assert modem.sent == []
