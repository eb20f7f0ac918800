"""The simulator's USSD (simulator.ussd, simulator.messaging ``AT+CUSD``): the network's balance,
menu and unsupported answers, the codings real modems use (each decoded by the client's
``decode_ussd``, which the simulator never imports), the session habits in order relative to
the ``OK`` (modem-realism.md §B15, F4-F6) and Huawei's packed GSM-7 hex requests, over real PTYs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import get_args

import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st

from simbank.simulator.bank import SimulatedBank
from simbank.simulator.dialects import DIALECTS
from simbank.simulator.habits import UssdCoding, UssdRequest
from simbank.simulator.scenario import MIX_MODELS, DialectName, Scenario, SimSpec, make_iccid
from simbank.simulator.sim import SimCard
from simbank.simulator.ussd import (
    BALANCE_NOTICES,
    MENU_SESSION,
    MENU_TEXT,
    TARIFF_TEXT,
    Answer,
    UssdService,
    balance_notice,
    cusd_line,
    decode_request,
    gsm7_septets,
    network_answer,
    pack_septets,
    present,
    unpack_request,
)
from simbank.sms.ussd import decode_ussd, encode_ussd_request

CUSD = re.compile(r'^\+CUSD: (\d)(?:,"(.*)",(\d+))?$')
NOTICE = "Your balance is 10.00 TEST"
SERVICE = UssdService()
CODINGS: tuple[UssdCoding, ...] = get_args(UssdCoding)


def _notices() -> list[str]:
    return [balance_notice(t, 12.5, "TEST", "2027-01-31") for t in BALANCE_NOTICES.values()]


def _decoded(line: str) -> tuple[int, str | None, int | None]:
    """(<m>, the text as the client decodes it, <dcs>) of a ``+CUSD`` line."""
    match = CUSD.match(line)
    assert match is not None, line
    status, text, dcs = match.groups()
    if text is None:
        return int(status), None, None
    return int(status), decode_ussd(text, int(dcs)), int(dcs)


# -- the network (pure) ---------------------------------------------------------------------------

NETWORK = [
    # (request, session, balance text, override) -> Answer
    ("*100#", None, NOTICE, None, Answer(0, NOTICE)),
    ("*100#", None, None, None, Answer(0, "reply")),  # no prepaid balance
    ("*123#", None, NOTICE, None, Answer(0, "reply")),
    ("*111#", None, NOTICE, None, Answer(1, MENU_TEXT, MENU_SESSION)),
    ("1", MENU_SESSION, NOTICE, None, Answer(2, NOTICE)),
    ("1", MENU_SESSION, None, None, Answer(2, "reply")),
    ("2", MENU_SESSION, NOTICE, None, Answer(2, TARIFF_TEXT)),
    ("0", MENU_SESSION, NOTICE, None, Answer(2)),
    ("7", MENU_SESSION, NOTICE, None, Answer(1, f"Invalid choice. {MENU_TEXT}", MENU_SESSION)),
    ("*999#", None, NOTICE, None, Answer(4)),
    ("1", None, NOTICE, None, Answer(4)),  # a reply with no session open
    ("AA180C3602", None, NOTICE, None, Answer(4)),  # hex sent to a text modem: not a code
    ("*999#", None, NOTICE, "override", Answer(0, "override")),
    ("1", MENU_SESSION, NOTICE, "override", Answer(0, "override")),
]


@pytest.mark.parametrize(("request_", "session", "balance", "override", "expected"), NETWORK)
def test_the_network_answers_by_code_and_session(
    request_: str, session: str | None, balance: str | None, override: str | None, expected: Answer
) -> None:
    got = network_answer(
        request_,
        service=SERVICE,
        session=session,
        balance_text=balance,
        reply="reply",
        override=override,
    )
    assert got == expected


def test_the_balance_code_is_the_scenarios() -> None:
    service = UssdService(balance_code="*102#", menu_code="*200#", unsupported_codes=())
    kwargs = {"service": service, "session": None, "balance_text": NOTICE, "reply": "r"}
    assert network_answer("*102#", **kwargs) == Answer(0, NOTICE)  # type: ignore[arg-type]
    assert network_answer("*100#", **kwargs) == Answer(0, "r")  # type: ignore[arg-type]
    assert network_answer("*999#", **kwargs) == Answer(0, "r")  # type: ignore[arg-type]
    assert network_answer("*200#", **kwargs).status == 1  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("template", "balance", "expected"),
    [
        (BALANCE_NOTICES["en"], 10.0, "Your balance is 10.00 TEST"),
        (BALANCE_NOTICES["en-valid"], 3.456, "Your balance is 3.46 TEST. Valid till 2027-01-31"),
        (BALANCE_NOTICES["en"], -1.5, "Your balance is -1.50 TEST"),
        (BALANCE_NOTICES["ru"], 7, "Ваш баланс 7.00 TEST. Действует до 2027-01-31"),
    ],
)
def test_balance_notice(template: str, balance: float, expected: str) -> None:
    assert balance_notice(template, balance, "TEST", "2027-01-31") == expected


def test_an_answered_call_runs_a_prepaid_balance_down() -> None:
    card = SimCard(iccid=make_iccid(1), imsi="001010000000001", balance=0.25, call_cost=0.1)
    for expected in (0.15, 0.05, -0.05):
        card.charge_call()
        assert card.balance == expected
    assert card.balance_notice() == "Your balance is -0.05 TEST"
    free = SimCard(iccid=make_iccid(2), imsi="001010000000002")
    free.charge_call()
    assert free.balance == 10.0
    none = SimCard(iccid=make_iccid(3), imsi="001010000000003", balance=None, call_cost=1.0)
    none.charge_call()
    assert none.balance is None and none.balance_notice() is None


def test_a_scenario_refuses_a_notice_with_an_unknown_placeholder() -> None:
    with pytest.raises(ValueError, match="balance_text"):
        SimSpec(iccid=make_iccid(1), balance_text="You have {amount}")
    assert SimSpec(iccid=make_iccid(1), balance_text="{currency} {balance}").balance == 10.0


# -- the codings (pure; decoded by the client) ---------------------------------------------------

LABEL = {"text": 15, "gsm7_hex": 15, "ucs2_72": 72, "ucs2_15": 15}


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("notice", _notices())
def test_every_coding_decodes_to_the_notice(coding: UssdCoding, notice: str) -> None:
    status, text, dcs = _decoded(cusd_line(Answer(0, notice), coding))
    assert (status, text) == (0, notice)
    if notice.isascii():
        assert dcs == LABEL[coding]
    else:  # Cyrillic or Chinese: UCS-2, labelled 72 except by the mislabelling model
        assert dcs == (15 if coding == "ucs2_15" else 72)


@pytest.mark.parametrize(
    ("coding", "shown", "dcs"),
    [
        ("text", "Your balance is 10.00 TEST", 15),
        ("gsm7_hex", pack_septets(gsm7_septets(NOTICE) or []).hex().upper(), 15),
        ("ucs2_72", NOTICE.encode("utf-16-be").hex().upper(), 72),
        ("ucs2_15", NOTICE.encode("utf-16-be").hex().upper(), 15),
    ],
)
def test_the_shape_of_each_coding(coding: UssdCoding, shown: str, dcs: int) -> None:
    assert present(NOTICE, coding) == (shown, dcs)


def test_a_bare_status_line() -> None:
    assert cusd_line(Answer(2), "gsm7_hex") == "+CUSD: 2"
    assert cusd_line(Answer(4), "text") == "+CUSD: 4"


def test_gsm7_extension_characters_are_escaped_and_cr_fills_a_spare_octet() -> None:
    assert gsm7_septets("€[") == [0x1B, 0x65, 0x1B, 0x3C]
    assert gsm7_septets("ä") == [0x7B]
    assert gsm7_septets("中") is None
    assert len(pack_septets([0x31] * 7)) == 7  # 49 bits + a CR septet: still 7 octets
    assert pack_septets([0x31] * 7)[-1] >> 1 == 0x0D
    assert decode_ussd(present("1234567", "gsm7_hex")[0], 15) == "1234567"


# -- requests (pure) ------------------------------------------------------------------------------


def test_packed_star_100_hash() -> None:
    assert pack_septets(gsm7_septets("*100#") or []).hex().upper() == "AA180C3602"
    assert unpack_request("AA180C3602") == "*100#"


REQUESTS: list[tuple[str, UssdRequest, str | None]] = [
    ("*100#", "text", "*100#"),
    ("AA180C3602", "text", "AA180C3602"),
    ("*100#", "packed_hex", None),  # A10: the E1752 answers ERROR
    ("AA180C3602", "packed_hex", "*100#"),
    ("ZZ", "packed_hex", None),
    ("*100#", "either", "*100#"),
    ("AA180C3602", "either", "*100#"),
    ("1", "either", "1"),
    ("31", "packed_hex", "1"),  # a menu reply, packed
]


@pytest.mark.parametrize(("string", "mode", "expected"), REQUESTS)
def test_decode_request(string: str, mode: UssdRequest, expected: str | None) -> None:
    assert decode_request(string, mode) == expected


@given(st.text(alphabet="0123456789*#", min_size=1, max_size=40))
def test_the_clients_packed_requests_read_back(code: str) -> None:
    packed, dcs = encode_ussd_request(code, packed_hex=True)
    assert dcs == 15
    assert decode_request(packed, "packed_hex") == code


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60))
def test_any_text_reads_back_in_every_coding(text: str) -> None:
    for coding in CODINGS:
        shown, dcs = present(text, coding)
        if not text.isascii() or coding != "text":
            assert re.fullmatch(r"([0-9A-F]{2})*", shown), (coding, shown)
        if coding == "text" and text.isascii():
            assert shown == text and dcs == 15
        elif dcs == 72 or coding in ("ucs2_15", "ucs2_72") or gsm7_septets(text) is None:
            assert bytes.fromhex(shown).decode("utf-16-be") == text
        else:
            assert dcs == 15


# -- the models ---------------------------------------------------------------------------------


def test_the_mix_covers_every_ussd_habit() -> None:
    habits = [DIALECTS[name].habits for name in MIX_MODELS]
    assert {h.ussd_coding for h in habits} == set(CODINGS)
    assert {h.ussd_request for h in habits} == {"text", "packed_hex", "either"}
    assert any(h.ussd_before_ok for h in habits)
    assert any(h.ussd_extra_release for h in habits)
    assert any(h.ussd_unsupported_cme for h in habits)
    assert DIALECTS["huawei-e173"].habits.ussd_request_packed_hex


# -- over a PTY ---------------------------------------------------------------------------------


class Wire:
    """Raw lines from a simulated modem's PTY (pyserial in a worker thread)."""

    def __init__(self, path: Path) -> None:
        self.port = serial.Serial(str(path), timeout=0.02)
        self.lines: list[str] = []
        self._buffer = b""

    async def send(self, command: str) -> None:
        self.lines.clear()
        await asyncio.to_thread(self.port.write, command.encode("ascii") + b"\r")

    async def wait_for(self, *patterns: str) -> list[str]:
        """Read until a line matches each pattern, in order; return every line read."""
        async with asyncio.timeout(20):  # a hang guard, not a latency bound
            while True:
                position = 0
                for line in self.lines:
                    if position < len(patterns) and re.match(patterns[position], line):
                        position += 1
                if position == len(patterns):
                    return list(self.lines)
                chunk = await asyncio.to_thread(self.port.read, 4096)
                self._buffer += chunk
                while b"\r\n" in self._buffer:
                    raw, self._buffer = self._buffer.split(b"\r\n", 1)
                    text = raw.decode("latin-1").strip()
                    if text:
                        self.lines.append(text)

    async def cmd(self, command: str, *patterns: str) -> list[str]:
        await self.send(command)
        return await self.wait_for(*patterns)


def _index(lines: list[str], pattern: str) -> int:
    return next(i for i, line in enumerate(lines) if re.match(pattern, line))


FINAL = r"^(OK|ERROR|\+CME ERROR: .*)$"
ANSWER = r"^\+CUSD: [0-9]"


@asynccontextmanager
async def _wires(
    tmp_path: Path, models: tuple[DialectName, ...], **sim: object
) -> AsyncIterator[tuple[SimulatedBank, dict[DialectName, Wire]]]:
    scenario = Scenario.model_validate(
        {
            "time_scale": 100.0,
            "modems": [
                {
                    "id": f"m{number}",
                    "dialect": name,
                    "slots": [
                        {"iccid": make_iccid(700 + number), "registration_delay_s": 0.2, **sim}
                    ],
                }
                for number, name in enumerate(models, start=1)
            ],
        }
    )
    async with SimulatedBank(scenario, directory=tmp_path) as bank:
        wires: dict[DialectName, Wire] = {}
        try:
            for number, name in enumerate(models, start=1):
                modem = bank.modems[f"m{number}"]
                await modem.wait_registered()
                wires[name] = Wire(modem.path)
                await wires[name].cmd("ATE0;+CMEE=1", "^OK$")
            yield bank, wires
        finally:
            for wire in wires.values():
                wire.port.close()


def _request(name: DialectName, code: str) -> str:
    if DIALECTS[name].habits.ussd_request_packed_hex:
        code = encode_ussd_request(code, packed_hex=True)[0]
    return f'AT+CUSD=1,"{code}",15'


async def test_every_model_answers_the_balance_code_in_its_coding(tmp_path: Path) -> None:
    async with _wires(tmp_path, MIX_MODELS, balance_text=BALANCE_NOTICES["en-valid"]) as (
        _bank,
        wires,
    ):
        expected = "Your balance is 10.00 TEST. Valid till 2027-01-31"
        for name, wire in wires.items():
            lines = await wire.cmd(_request(name, "*100#"), ANSWER)
            status, text, dcs = _decoded(lines[_index(lines, ANSWER)])
            assert (status, text) == (0, expected), name
            assert dcs == LABEL[DIALECTS[name].habits.ussd_coding], name


async def test_a_chinese_notice_goes_out_as_ucs2(tmp_path: Path) -> None:
    models: tuple[DialectName, ...] = ("generic", "huawei-e173", "quectel-ec21")
    async with _wires(tmp_path, models, balance_text=BALANCE_NOTICES["zh"], currency="元") as (
        bank,
        wires,
    ):
        bank.set_balance(make_iccid(701), 3.2)
        for name, wire in wires.items():
            lines = await wire.cmd(_request(name, "*100#"), ANSWER)
            _status, text, dcs = _decoded(lines[_index(lines, ANSWER)])
            assert text is not None and "余额为" in text, name
            assert dcs == (15 if name == "quectel-ec21" else 72), name
            assert ("3.20元" in text) is (name == "generic")


async def test_the_answer_after_ok_before_ok_and_the_extra_release(tmp_path: Path) -> None:
    models: tuple[DialectName, ...] = ("generic", "generic-wavecom", "generic-zte")
    async with _wires(tmp_path, models) as (_bank, wires):
        plain = await wires["generic"].cmd(_request("generic", "*100#"), "^OK$", ANSWER)
        assert _index(plain, "^OK$") < _index(plain, ANSWER)
        # No extra release: the next command's OK comes with no +CUSD: 2 before it.
        after = await wires["generic"].cmd("AT", "^OK$")
        assert not any(line.startswith("+CUSD") for line in after)

        held = await wires["generic-wavecom"].cmd(_request("generic-wavecom", "*100#"), FINAL)
        assert _index(held, ANSWER) < _index(held, "^OK$")  # B15
        assert _decoded(held[_index(held, ANSWER)])[1] == NOTICE

        zte = await wires["generic-zte"].cmd(
            _request("generic-zte", "*100#"), "^OK$", r"^\+CUSD: 0,", r"^\+CUSD: 2$"
        )
        assert _index(zte, "^OK$") < _index(zte, r"^\+CUSD: 0,") < _index(zte, r"^\+CUSD: 2$")


async def test_unsupported_codes(tmp_path: Path) -> None:
    models: tuple[DialectName, ...] = ("generic", "simcom-sim7600")
    async with _wires(tmp_path, models) as (_bank, wires):
        plain = await wires["generic"].cmd('AT+CUSD=1,"*999#",15', "^OK$", r"^\+CUSD: 4$")
        assert _index(plain, "^OK$") < _index(plain, r"^\+CUSD: 4$")
        simcom = await wires["simcom-sim7600"].cmd('AT+CUSD=1,"*999#",15', FINAL)
        assert simcom[-2:] == ["+CUSD: 4", "+CME ERROR: 100"]


async def test_a_menu_session_continued_ended_and_cancelled(tmp_path: Path) -> None:
    async with _wires(tmp_path, ("generic", "huawei-e173")) as (bank, wires):
        wire = wires["generic"]
        lines = await wire.cmd('AT+CUSD=1,"*111#",15', ANSWER)
        assert _decoded(lines[-1]) == (1, MENU_TEXT, 15)
        lines = await wire.cmd('AT+CUSD=1,"1",15', ANSWER)
        assert _decoded(lines[-1]) == (2, NOTICE, 15)  # ended by the network, text kept
        await wire.cmd('AT+CUSD=1,"*111#",15', r"^\+CUSD: 1,")
        assert await wire.cmd("AT+CUSD=2", FINAL) == ["OK"]
        assert bank.sim(make_iccid(701)).ussd_session is None
        lines = await wire.cmd('AT+CUSD=1,"1",15', ANSWER)
        assert lines[-1] == "+CUSD: 4"  # no session any more
        await wire.cmd('AT+CUSD=1,"*111#",15', r"^\+CUSD: 1,")
        lines = await wire.cmd('AT+CUSD=1,"0",15', ANSWER)
        assert lines[-1] == "+CUSD: 2"

        # The packed-hex model: a menu reply packed too ("1" is 31).
        e173 = wires["huawei-e173"]
        await e173.cmd(_request("huawei-e173", "*111#"), r"^\+CUSD: 1,")
        lines = await e173.cmd('AT+CUSD=1,"31",15', ANSWER)
        assert _decoded(lines[-1])[:2] == (2, NOTICE)


async def test_packed_hex_requests(tmp_path: Path) -> None:
    models: tuple[DialectName, ...] = ("huawei-e173", "huawei-e3372", "generic")
    async with _wires(tmp_path, models) as (bank, wires):
        e173 = wires["huawei-e173"]
        assert await e173.cmd('AT+CUSD=1,"*100#",15', FINAL) == ["ERROR"]  # A10
        before = bank.carrier.stats.ussd
        lines = await e173.cmd('AT+CUSD=1,"AA180C3602",15', ANSWER)
        assert _decoded(lines[-1]) == (0, NOTICE, 15)
        assert bank.carrier.stats.ussd == before + 1
        for code in ("*100#", "AA180C3602"):  # either
            lines = await wires["huawei-e3372"].cmd(f'AT+CUSD=1,"{code}",15', ANSWER)
            assert _decoded(lines[-1]) == (0, NOTICE, 72)
        lines = await wires["generic"].cmd('AT+CUSD=1,"AA180C3602",15', ANSWER)
        assert lines[-1] == "+CUSD: 4"  # a text modem sends the hex as it is


async def test_balance_and_override_from_the_operator_side(tmp_path: Path) -> None:
    async with _wires(tmp_path, ("generic",)) as (bank, wires):
        wire, iccid = wires["generic"], make_iccid(701)
        bank.set_balance(iccid, 0.25)
        assert bank.balance(iccid) == 0.25
        lines = await wire.cmd('AT+CUSD=1,"*100#",15', ANSWER)
        assert _decoded(lines[-1])[1] == "Your balance is 0.25 TEST"
        bank.set_ussd_reply(iccid, "Service suspended")
        lines = await wire.cmd('AT+CUSD=1,"*999#",15', ANSWER)
        assert _decoded(lines[-1])[:2] == (0, "Service suspended")
        bank.set_ussd_reply(iccid, None)
        bank.set_balance(iccid, None)
        lines = await wire.cmd('AT+CUSD=1,"*100#",15', ANSWER)
        assert _decoded(lines[-1])[1] == "Your balance is 10.00 TEST"  # the fixed ussd_reply
