"""The simulated modem bank driven through real PTYs with plain pyserial (in a thread)."""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import serial

from simbank.simulator import SimulatedBank
from simbank.simulator.scenario import Scenario, make_iccid
from simbank.simulator.sim import swapped_bcd

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

FINAL = re.compile(r"^(OK|ERROR|\+CME ERROR: .*|\+CMS ERROR: .*|NO CARRIER|BUSY|NO ANSWER)$")
URC = re.compile(
    r"^(RDY|\+CPIN: |\+QUSIM|\+QIND|SMS DONE|PB DONE|\^SIMST|\+SIM READY|\+PBREADY|\^RSSI"
    r"|\^MODE|\^SRVST|\^HCSQ|\+C5?G?E?REG: |\+CIEV|\^BOOT|\+CFUN: )"
)
SCALE = 100.0  # 1 simulated second = 10 ms

ICCID_A = make_iccid(101)
ICCID_B = make_iccid(102)


class Client:
    """A minimal line-based AT client over pyserial, reading in a worker thread."""

    def __init__(self, path: Path) -> None:
        self.port = serial.Serial(str(path), timeout=0.02)
        self.buffer = b""
        self.lines: list[str] = []

    def close(self) -> None:
        self.port.close()

    async def _read_some(self) -> None:
        chunk = await asyncio.to_thread(self.port.read, 4096)
        self.buffer += chunk
        while b"\r\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            text = line.decode("latin-1").strip()
            if text:
                self.lines.append(text)

    async def send(self, data: bytes) -> None:
        await asyncio.to_thread(self.port.write, data)

    async def cmd(self, command: str, timeout: float = 3.0) -> list[str]:
        """Send a command; return the lines up to and including the final result (URCs and
        stale input dropped)."""
        self.lines.clear()
        self.buffer = b""
        await asyncio.to_thread(self.port.reset_input_buffer)
        await self.send(command.encode() + b"\r")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index, line in enumerate(self.lines):
                if FINAL.match(line):
                    result = self.lines[: index + 1]
                    del self.lines[: index + 1]
                    name = re.match(r"AT([+^]?[A-Z0-9]*)", command.upper())
                    own = name.group(1) + ":" if name and name.group(1) else None
                    return [
                        x
                        for x in result
                        if x != command and (not URC.match(x) or (own and x.startswith(own)))
                    ]
            await self._read_some()
        raise TimeoutError(f"{command}: no final result, got {self.lines!r}")

    async def expect(self, pattern: str, timeout: float = 3.0) -> str:
        """Wait for a line matching ``pattern`` (URCs), consuming lines before it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index, line in enumerate(self.lines):
                if regex.search(line):
                    del self.lines[: index + 1]
                    return line
            await self._read_some()
        raise TimeoutError(f"no line matching {pattern!r}, got {self.lines!r}")

    async def wait_prompt(self, timeout: float = 3.0) -> None:
        """Wait for the SMS prompt ``> `` (no line end)."""
        deadline = time.monotonic() + timeout
        while not self.buffer.endswith(b"> "):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no prompt, got {self.buffer!r}")
            await self._read_some()
        self.buffer = b""

    async def read_raw(self, seconds: float) -> bytes:
        deadline = time.monotonic() + seconds
        data = b""
        while time.monotonic() < deadline:
            data += await asyncio.to_thread(self.port.read, 4096)
        return data


def scenario(
    modems: list[dict[str, Any]],
    carrier: dict[str, Any] | None = None,
    timing: dict[str, Any] | None = None,
) -> Scenario:
    return Scenario.model_validate(
        {
            "time_scale": SCALE,
            "timing": timing or {},
            "carrier": carrier or {},
            "modems": modems,
        }
    )


def one_modem(dialect: str = "quectel", **sim: Any) -> Scenario:
    slots = [{"iccid": ICCID_A, **sim}]
    if dialect != "generic":
        slots.append({"iccid": ICCID_B})
    return scenario([{"id": "m1", "dialect": dialect, "slots": slots}])


@asynccontextmanager
async def running(sc: Scenario, tmp_path: Path) -> AsyncIterator[tuple[SimulatedBank, Client]]:
    async with SimulatedBank(sc, directory=tmp_path) as bank:
        client = Client(bank.modems["m1"].path)
        try:
            assert (await client.cmd("ATE0"))[-1] == "OK"
            yield bank, client
        finally:
            client.close()
    assert not os.path.lexists(tmp_path / "m1")
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("sim-") and not t.done()]
    assert not leftover


# -- identity, ICCID and slots per dialect -----------------------------------------------------

DIALECT_CASES = [
    ("generic", "Generic", "AT+CCID", "+CCID: "),
    ("quectel", "Quectel", "AT+QCCID", "+QCCID: "),
    ("simcom", "SIMCOM INCORPORATED", "AT+CICCID", "+ICCID: "),
    ("huawei", "Huawei Technologies Co., Ltd.", "AT^ICCID?", "^ICCID: "),
    ("fibocom", "Fibocom", "AT+CCID", "+CCID: "),
]


@pytest.mark.parametrize(("dialect", "manufacturer", "iccid_cmd", "prefix"), DIALECT_CASES)
async def test_identity_and_iccid(
    tmp_path: Path, dialect: str, manufacturer: str, iccid_cmd: str, prefix: str
) -> None:
    async with running(one_modem(dialect), tmp_path) as (bank, c):
        assert await c.cmd("AT+CGMI") == [manufacturer, "OK"]
        assert (await c.cmd("AT+CGMM"))[0] == bank.modems["m1"].dialect.model
        assert (await c.cmd("AT+CGSN"))[0].startswith("35000000")
        assert await c.cmd(iccid_cmd) == [prefix + ICCID_A, "OK"]
        crsm = await c.cmd("AT+CRSM=176,12258,0,0,10")
        assert crsm == [f'+CRSM: 144,0,"{swapped_bcd(ICCID_A)}"', "OK"]
        assert (await c.cmd("AT+CIMI"))[0].startswith("00101")
        assert await c.cmd("AT+FOO") == ["ERROR"]


SLOT_CASES = [
    ("quectel", "AT+QUIMSLOT?", "+QUIMSLOT: 1", "AT+QUIMSLOT=2", "+QUIMSLOT: 2", "AT+QCCID"),
    ("quectel", "AT+QDSIM?", "+QDSIM: 0", "AT+QDSIM=1", "+QDSIM: 1", "AT+QCCID"),
    (
        "simcom",
        "AT+SMSIMCFG?",
        "+SMSIMCFG: 1,1",
        "AT+SMSIMCFG=1,2",
        "+SMSIMCFG: 1,2",
        "AT+CICCID",
    ),
    ("huawei", "AT^SCICHG?", "^SCICHG: 0,1", "AT^SCICHG=1,0", "^SCICHG: 1,0", "AT^ICCID?"),
    ("fibocom", "AT+GTDUALSIM?", "+GTDUALSIM: 0", "AT+GTDUALSIM=1", "+GTDUALSIM: 1", "AT+CCID"),
]


@pytest.mark.parametrize(("dialect", "query", "before", "select", "after", "iccid"), SLOT_CASES)
async def test_slot_switch_changes_iccid(
    tmp_path: Path, dialect: str, query: str, before: str, select: str, after: str, iccid: str
) -> None:
    async with running(one_modem(dialect), tmp_path) as (bank, c):
        assert await c.cmd("AT+CMEE=1") == ["OK"]
        assert await c.cmd(query) == [before, "OK"]
        assert (await c.cmd(iccid))[0].endswith(ICCID_A)
        assert await c.cmd("AT+CFUN=4") == ["OK"]
        assert await c.cmd(select) == ["OK"]
        assert await c.cmd(query) == [after, "OK"]
        assert await c.cmd("AT+CFUN=1") == ["OK"]
        # SIM busy while it initialises, then READY (polled)
        for _ in range(100):
            answer = await c.cmd("AT+CPIN?")
            if answer[0] == "+CPIN: READY":
                break
            assert answer == ["+CME ERROR: 14"]
            await asyncio.sleep(0.01)
        assert (await c.cmd(iccid))[0].endswith(ICCID_B)
        assert bank.modems["m1"].active_slot == 2
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()


async def test_generic_is_single_slot_and_echo(tmp_path: Path) -> None:
    sc = one_modem("generic")
    async with SimulatedBank(sc, directory=tmp_path) as bank:
        c = Client(bank.modems["m1"].path)
        try:
            c.lines.clear()
            await c.send(b"AT\r")
            raw = await c.read_raw(0.1)
            assert raw.startswith(b"AT\r")  # echo on by default
            assert await c.cmd("ATE0") == ["OK"]
            await c.send(b"AT\r")
            assert await c.read_raw(0.1) == b"\r\nOK\r\n"
            assert await c.cmd("AT+QUIMSLOT?") == ["ERROR"]
        finally:
            c.close()


async def test_boot_banner_after_cfun_reset(tmp_path: Path) -> None:
    async with running(one_modem("quectel"), tmp_path) as (_bank, c):
        assert await c.cmd("AT+CFUN=1,1") == ["OK"]
        assert await c.expect("^RDY$") == "RDY"
        await c.expect(r"^\+CPIN: READY$")
        await c.expect(r"^\+QIND: SMS DONE$")
        # settings were reset by the reboot: echo is on again
        lines = await c.cmd("AT")
        assert lines == ["OK"]


async def test_cmee_forms(tmp_path: Path) -> None:
    sc = scenario([{"id": "m1", "dialect": "quectel", "slots": [{"behaviour": "absent"}]}])
    async with running(sc, tmp_path) as (_bank, c):
        assert await c.cmd("AT+CPIN?") == ["ERROR"]
        assert await c.cmd("AT+CMEE=1") == ["OK"]
        assert await c.cmd("AT+CPIN?") == ["+CME ERROR: 10"]
        assert await c.cmd("AT+QCCID") == ["+CME ERROR: 10"]
        assert await c.cmd("AT+CMEE=2") == ["OK"]
        assert await c.cmd("AT+CPIN?") == ["+CME ERROR: SIM not inserted"]
        assert await c.cmd("AT+CREG?") == ["+CREG: 0,0", "OK"]


# -- registration -------------------------------------------------------------------------------


async def test_registration_urc_forms(tmp_path: Path) -> None:
    async with running(one_modem("quectel"), tmp_path) as (bank, c):
        modem = bank.modems["m1"]
        async with asyncio.timeout(20):
            await modem.wait_registered()
        assert await c.cmd("AT+CREG=1;+CGREG=2;+CEREG=3") == ["OK"]
        assert await c.cmd("AT+CREG?") == ["+CREG: 1,1", "OK"]
        assert await c.cmd("AT+CEREG?") == ['+CEREG: 3,1,"1A2B","0012ABCD",7', "OK"]
        bank.sim(ICCID_A).deny(6)
        await c.expect(r"^\+CREG: 3$")
        await c.expect(r"^\+CGREG: 3$")
        assert await c.expect(r"^\+CEREG: ") == "+CEREG: 3,,,,0,6"
        assert await c.cmd("AT+CEREG?") == ["+CEREG: 3,3,,,,0,6", "OK"]
        assert await c.cmd("AT+CEER") == ['+CEER: "CC INFO","Illegal ME"', "OK"]


async def test_generic_four_digit_ci_and_rac(tmp_path: Path) -> None:
    async with running(one_modem("generic"), tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("AT+CREG=2;+CGREG=2;+C5GREG=2") == ["OK"]
        assert await c.cmd("AT+CREG?") == ['+CREG: 2,1,"1A2B","ABCD",0', "OK"]
        assert await c.cmd("AT+CGREG?") == ['+CGREG: 2,1,"1A2B","ABCD",0,"01"', "OK"]
        assert await c.cmd("AT+C5GREG?") == ['+C5GREG: 2,1,"001A2B","0012ABCD",11', "OK"]


async def test_fibocom_refuses_n3(tmp_path: Path) -> None:
    async with running(one_modem("fibocom"), tmp_path) as (_bank, c):
        assert await c.cmd("AT+CEREG=?") == ["+CEREG: (0-2)", "OK"]
        assert await c.cmd("AT+CEREG=3") == ["ERROR"]
        assert await c.cmd("AT+CEREG=2") == ["OK"]
        assert await c.cmd("AT+C5GREG=2") == ["ERROR"]


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [("home", "+CEREG: 2,1,"), ("roaming", "+CEREG: 2,5,"), ("searching", "+CEREG: 2,2")],
)
async def test_registration_behaviours(tmp_path: Path, behaviour: str, expected: str) -> None:
    async with running(one_modem("simcom", behaviour=behaviour), tmp_path) as (_bank, c):
        assert await c.cmd("AT+CEREG=2") == ["OK"]
        await asyncio.sleep(0.1)
        assert (await c.cmd("AT+CEREG?"))[0].startswith(expected)


async def test_denied_reports_cause(tmp_path: Path) -> None:
    sc = one_modem("huawei", behaviour="denied", reject_cause=3)
    async with running(sc, tmp_path) as (_bank, c):
        assert await c.cmd("AT+CREG=3") == ["OK"]
        await asyncio.sleep(0.1)
        assert await c.cmd("AT+CREG?") == ["+CREG: 3,3,,,,0,3", "OK"]
        assert await c.cmd("AT+COPS?") == ["+COPS: 0", "OK"]


async def test_pin_and_puk(tmp_path: Path) -> None:
    sc = scenario(
        [
            {
                "id": "m1",
                "dialect": "quectel",
                "slots": [
                    {"iccid": ICCID_A, "behaviour": "pin"},
                    {"iccid": ICCID_B, "behaviour": "puk"},
                ],
            }
        ]
    )
    async with running(sc, tmp_path) as (bank, c):
        assert await c.cmd("AT+CMEE=1") == ["OK"]
        assert await c.cmd("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
        assert await c.cmd("AT+CIMI") == ["+CME ERROR: 11"]
        assert await c.cmd("AT+QCCID") == [f"+QCCID: {ICCID_A}", "OK"]
        assert await c.cmd('AT+CPIN="0000"') == ["+CME ERROR: 16"]
        assert await c.cmd('AT+CPIN="1234"') == ["OK"]
        await c.expect(r"^\+CPIN: READY$")
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("AT+QUIMSLOT=2") == ["OK"]
        await c.expect(r"^\+CPIN: SIM PUK$")
        assert await c.cmd("AT+CPIN?") == ["+CPIN: SIM PUK", "OK"]
        assert await c.cmd("AT+CIMI") == ["+CME ERROR: 12"]
        assert await c.cmd('AT+CPIN="12345678","4321"') == ["OK"]
        await c.expect(r"^\+CPIN: READY$")


# -- calls ----------------------------------------------------------------------------------------


async def test_call_answered_then_no_carrier(tmp_path: Path) -> None:
    async with running(one_modem("huawei"), tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("ATD+15550100042;") == ["OK"]
        clcc = (await c.cmd("AT+CLCC"))[0]
        assert clcc.startswith("+CLCC: 1,0,")
        assert '"+15550100042",145' in clcc
        cend = await c.expect(r"^\^CEND: ", timeout=5)
        assert cend.endswith(",104,16")
        await c.expect("^NO CARRIER$")
        assert await c.cmd("AT+CEER") == ['+CEER: "Normal call clearing"', "OK"]
        assert bank.carrier.stats.calls == 1
        assert bank.carrier.stats.calls_answered == 1


@pytest.mark.parametrize(
    ("number", "result"), [("+15550100091", "BUSY"), ("+15550100097", "NO ANSWER")]
)
async def test_call_busy_and_no_answer(tmp_path: Path, number: str, result: str) -> None:
    async with running(one_modem("quectel"), tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd(f"ATD{number};") == ["OK"]
        await c.expect(f"^{result}$", timeout=5)


async def test_hangup_and_barred(tmp_path: Path) -> None:
    async with running(one_modem("huawei", behaviour="barred"), tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("ATD+15550100010;") == ["OK"]
        assert (await c.expect(r"^\^CEND: ")).endswith(",8")
        await c.expect("^NO CARRIER$")
        assert await c.cmd("AT+CEER") == ['+CEER: "Operator determined barring"', "OK"]
        bank.sim(ICCID_A).set_behaviour("home")
        assert await c.cmd("ATD+15550100010;") == ["OK"]
        assert await c.cmd("ATH") == ["OK"]
        assert await c.cmd("AT+CLCC") == ["OK"]


async def test_call_without_network(tmp_path: Path) -> None:
    async with running(one_modem("quectel", behaviour="searching"), tmp_path) as (_bank, c):
        assert await c.cmd("AT+CMEE=1") == ["OK"]
        assert await c.cmd("ATD+15550100010;") == ["+CME ERROR: 30"]


# -- SMS and USSD -----------------------------------------------------------------------------------


async def test_sms_prompt_flow(tmp_path: Path) -> None:
    async with running(one_modem("simcom"), tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("AT+CMGF=1") == ["OK"]
        await c.send(b'AT+CMGS="+15550100123"\r')
        raw = b""
        for _ in range(50):
            raw += await asyncio.to_thread(c.port.read, 64)
            if raw.endswith(b"> "):
                break
        assert raw.endswith(b"\r\n> ")
        assert await c.cmd("hello there\x1a") == ["+CMGS: 1", "OK"]
        assert bank.modems["m1"].sent_sms == [("+15550100123", "hello there")]
        await c.send(b'AT+CMGS="+15550100123"\r')
        await c.wait_prompt()
        assert await c.cmd("never mind\x1b") == ["OK"]
        assert bank.carrier.stats.sms == 1


async def test_inbound_sms_and_ussd(tmp_path: Path) -> None:
    async with running(one_modem("quectel"), tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("AT+CMGF=1;+CNMI=2,1,0,0,0") == ["OK"]
        index = bank.send_sms(ICCID_A, "+15550100777", "Your code is 1234")
        assert await c.expect(r"^\+CMTI: ") == f'+CMTI: "SM",{index}'
        read = await c.cmd(f"AT+CMGR={index}")
        assert read[0].startswith('+CMGR: "REC UNREAD","+15550100777",,"')
        assert read[1:] == ["Your code is 1234", "OK"]
        assert (await c.cmd('AT+CMGL="ALL"'))[0].startswith(f'+CMGL: {index},"REC READ"')
        assert await c.cmd(f"AT+CMGD={index}") == ["OK"]
        assert await c.cmd("AT+CMEE=1") == ["OK"]
        assert await c.cmd(f"AT+CMGR={index}") == ["+CMS ERROR: 321"]
        bank.set_ussd_reply(ICCID_A, "Balance 5.00")
        assert await c.cmd('AT+CUSD=1,"*100#",15') == ["OK"]
        assert await c.expect(r"^\+CUSD: ") == '+CUSD: 0,"Balance 5.00",15'


# -- carrier model ---------------------------------------------------------------------------------


async def test_carrier_blocks_after_hidden_limit_and_block_follows_iccid(tmp_path: Path) -> None:
    sc = scenario(
        [
            {"id": "m1", "dialect": "quectel", "slots": [{"iccid": ICCID_A}, {"iccid": ICCID_B}]},
            {"id": "m2", "dialect": "simcom", "slots": [{"behaviour": "absent"}]},
        ],
        carrier={"test": {"calls_per_hour": 2, "action": "deny", "deny_cause": 8}},
        timing={"talk_s": 1},
    )
    async with running(sc, tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("AT+CEREG=3") == ["OK"]
        for _ in range(2):
            assert await c.cmd("ATD+15550100010;") == ["OK"]
            await c.expect("^NO CARRIER$", timeout=5)
        assert not bank.carrier.is_blocked(ICCID_A)
        assert await c.cmd("ATD+15550100010;") == ["OK"]
        assert await c.expect(r"^\+CEREG: 3") == "+CEREG: 3,,,,0,8"
        assert bank.carrier.is_blocked(ICCID_A)
        assert bank.carrier.stats.blocks[0].reason == "calls_per_hour"
        assert bank.carrier.stats.calls_by_iccid[ICCID_A] == 3
        # the block follows the ICCID into another modem
        bank.modems["m1"].select_slot(2)
        bank.move_sim(ICCID_A, "m2", 1)
        c2 = Client(bank.modems["m2"].path)
        try:
            assert await c2.cmd("ATE0;+CREG=3") == ["OK"]
            await asyncio.sleep(0.2)
            assert await c2.cmd("AT+CREG?") == ["+CREG: 3,3,,,,0,8", "OK"]
        finally:
            c2.close()


async def test_carrier_bar_action_on_min_gap(tmp_path: Path) -> None:
    sc = scenario(
        [{"id": "m1", "dialect": "huawei", "slots": [{"iccid": ICCID_A}]}],
        carrier={"test": {"min_call_gap_s": 600, "action": "bar"}},
        timing={"talk_s": 1},
    )
    async with running(sc, tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        assert await c.cmd("ATD+15550100010;") == ["OK"]
        assert (await c.expect(r"^\^CEND: ", timeout=5)).endswith(",16")
        assert await c.cmd("ATD+15550100010;") == ["OK"]
        assert (await c.expect(r"^\^CEND: ")).endswith(",8")
        assert bank.carrier.block_of(ICCID_A) is not None
        assert bank.modems["m1"].reg.registered  # barred, still registered


# -- faults ----------------------------------------------------------------------------------------


async def test_unplug_and_replug(tmp_path: Path) -> None:
    async with running(one_modem("quectel"), tmp_path) as (bank, c):
        modem = bank.modems["m1"]
        first = os.readlink(modem.path)
        modem.unplug()
        assert not os.path.lexists(modem.path)
        with pytest.raises(serial.SerialException):
            await asyncio.to_thread(c.port.read, 10)
        with pytest.raises(serial.SerialException):
            serial.Serial(str(modem.path))
        modem.replug()
        assert os.path.islink(modem.path)
        assert os.readlink(modem.path) != first  # a new /dev/pts/N (the old one is still held)
        c.close()
        c2 = Client(modem.path)
        try:
            await c2.expect("^RDY$")
            assert await c2.cmd("ATE0") == ["OK"]
            assert await c2.cmd("AT+CGMI") == ["Quectel", "OK"]
        finally:
            c2.close()


async def test_client_reopen_keeps_modem_alive(tmp_path: Path) -> None:
    async with running(one_modem("simcom"), tmp_path) as (bank, c):
        c.close()
        await asyncio.sleep(0.05)
        c2 = Client(bank.modems["m1"].path)
        try:
            assert await c2.cmd("AT") == ["OK"]
        finally:
            c2.close()


async def test_hang_slow_split_garbage_storm(tmp_path: Path) -> None:
    async with running(one_modem("huawei"), tmp_path) as (bank, c):
        modem = bank.modems["m1"]
        modem.hang()
        with pytest.raises(TimeoutError):
            await c.cmd("AT", timeout=0.2)
        modem.hang(False)
        assert await c.cmd("AT") == ["OK"]
        modem.slow(0.2)
        started = time.monotonic()
        assert await c.cmd("AT") == ["OK"]
        assert time.monotonic() - started >= 0.2
        modem.slow(0)
        modem.split_bytes()
        assert await c.cmd("AT+CGMM") == ["ME909s-120", "OK"]
        modem.split_bytes(False)
        modem.inject_garbage(b"\xff\x00garbage\r\n")
        assert "garbage" in await c.expect("garbage")
        assert len(modem.inject_garbage(16)) == 16
        assert await c.cmd("AT") == ["OK"]
        assert await c.cmd("AT+CEER") == ['+CEER: "No cause information"', "OK"]
        modem.urc_storm(50)
        assert await c.cmd("AT+CSQ") == [f"+CSQ: {modem.signal},99", "OK"]
        modem.set_signal(7)
        assert await c.cmd("AT+CSQ") == ["+CSQ: 7,99", "OK"]


async def test_garbled_input_never_crashes(tmp_path: Path) -> None:
    async with running(one_modem("fibocom"), tmp_path) as (_bank, c):
        for junk in [
            b"hello\r",
            b"AT+\r",
            b'AT+CMGS="\r',
            b"AT+CREG=x\r",
            b"ATD;\r",
            b"A" * 2000 + b"\r",
        ]:
            c.lines.clear()
            await c.send(junk)
            await c.expect("^ERROR$")
        await c.send(random.Random(1234).randbytes(4096))
        await c.send(b"\x1b\rAT\r")
        await c.expect("^OK$")
        assert await c.cmd("AT") == ["OK"]


async def test_asyncio_client_sees_connection_lost_on_unplug(tmp_path: Path) -> None:
    serial_asyncio_fast = pytest.importorskip("serial_asyncio_fast")
    async with SimulatedBank(one_modem("simcom"), directory=tmp_path) as bank:
        modem = bank.modems["m1"]
        reader, writer = await serial_asyncio_fast.open_serial_connection(
            url=str(modem.path), baudrate=115200, exclusive=True
        )
        try:
            writer.write(b"ATE0\r")
            async with asyncio.timeout(20):
                assert (await reader.readuntil(b"OK\r\n")).endswith(b"\r\nOK\r\n")
            modem.unplug()
            with pytest.raises(serial.SerialException):
                async with asyncio.timeout(20):
                    await reader.read(100)
            assert writer.transport.is_closing()
        finally:
            writer.close()


async def test_cli_runs_demo_until_sigterm(tmp_path: Path) -> None:
    import signal
    import sys

    demo = Path(__file__).resolve().parents[2] / "config" / "scenarios" / "demo.toml"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simbank.simulator.cli",
        "--scenario",
        str(demo),
        "--dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(10):
            lines = [(await process.stdout.readline()).decode().split() for _ in range(8)]
        assert lines[0] == ["m1", "quectel", str(tmp_path / "m1")]
        assert [line[0] for line in lines] == [f"m{n}" for n in range(1, 9)]
        c = Client(tmp_path / "m3")
        try:
            assert await c.cmd("ATE0") == ["OK"]
            assert await c.cmd("AT+CGMM") == ["ME909s-120", "OK"]
        finally:
            c.close()
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    assert not any(tmp_path.iterdir())


async def test_operator_signal_and_radio_commands(tmp_path: Path) -> None:
    async with running(one_modem("quectel"), tmp_path) as (bank, c):
        modem = bank.modems["m1"]
        async with asyncio.timeout(20):
            await modem.wait_registered()
        assert await c.cmd("AT+COPS?") == ['+COPS: 0,0,"TEST NETWORK",7', "OK"]
        assert await c.cmd("AT+COPS=3,2") == ["OK"]
        assert await c.cmd("AT+COPS?") == ['+COPS: 0,2,"00101",7', "OK"]
        assert (await c.cmd("AT+CESQ"))[0].startswith("+CESQ: 99,99,255,255,")
        assert await c.cmd("ATI") == ["Quectel", "EC25", "Revision: EC25EFAR06A06M4G", "OK"]
        assert await c.cmd("AT+CREG=1") == ["OK"]
        assert await c.cmd("AT+CFUN=0") == ["OK"]
        assert await c.cmd("AT+CFUN?") == ["+CFUN: 0", "OK"]
        assert await c.cmd("AT+CSQ") == ["+CSQ: 99,99", "OK"]
        assert await c.cmd("AT+CREG?") == ["+CREG: 1,0", "OK"]
        assert await c.cmd("AT+CFUN=1") == ["OK"]
        await c.expect(r"^\+CREG: 1$")
        modem.set_signal(25)
        assert await c.expect(r"^\+QIND: ") == '+QIND: "csq",25,99'


async def test_urc_storm_and_direct_sms_delivery(tmp_path: Path) -> None:
    async with running(one_modem("huawei"), tmp_path) as (bank, c):
        async with asyncio.timeout(20):
            await bank.modems["m1"].wait_registered()
        bank.modems["m1"].urc_storm(30)
        raw = await c.read_raw(0.2)
        assert raw.count(b"\r\n^HCSQ: ") == 10
        assert await c.cmd("AT+CMGF=1;+CNMI=2,2,0,0,0") == ["OK"]
        bank.send_sms(ICCID_A, "+15550100888", "direct")
        await c.expect(r'^\+CMT: "\+15550100888",,"')
        assert await c.expect("direct") == "direct"
