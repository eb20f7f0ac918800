"""Simulated modems with two AT ports sharing one radio, over real PTYs (pyserial-asyncio-fast
through the test PBX, ``simbank.simulator.pbx``): one call whichever port dials it, URCs on the
modem's URC port only, SIMCom's ``+CLCC`` URCs, inbound calls answered on the second port."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.pbx import ACTIVE, ALERTING, ListedCall, Pbx, PbxError
from simbank.simulator.scenario import make_iccid

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

NUMBER = "+15550100123"  # answers (tail 00-89)
BUSY_NUMBER = "+15550100191"  # busy (tail 90-94)
CALLER = "+447700900123"
SCALE = 50.0  # 1 simulated second = 20 ms
#: Fast call progress; an answered call stays up (talk_s) until a test hangs it up.
TIMING = {"ring_s": 1.0, "talk_s": 1000.0, "incoming_ring_s": 1.0, "boot_s": 1.0}


def _scenario(dialect: str = "generic", **modem: Any) -> Scenario:
    return Scenario.model_validate(
        {
            "time_scale": SCALE,
            "timing": TIMING,
            "modems": [
                {
                    "id": "m1",
                    "dialect": dialect,
                    "slots": [{"iccid": make_iccid(1501), "registration_delay_s": 0.0}],
                    **modem,
                }
            ],
        }
    )


@asynccontextmanager
async def _two_ports(
    tmp_path: Path, dialect: str = "generic", urc_port: int = 1
) -> AsyncIterator[tuple[SimulatedBank, Pbx, Pbx]]:
    """The bank, a client on port 1 (simbankd's) and one on port 2 (the PBX's)."""
    async with (
        SimulatedBank(_scenario(dialect, ports=2, urc_port=urc_port), tmp_path) as bank,
        Pbx(bank.modems["m1"].path) as first,
        Pbx(bank.aux_port("m1")) as second,
    ):
        yield bank, first, second


async def test_a_call_dialled_on_port_2_is_one_call_of_the_radio(tmp_path: Path) -> None:
    async with _two_ports(tmp_path) as (bank, first, second):
        modem = bank.modems["m1"]
        assert modem.aux_link == tmp_path / "m1.at2"
        assert Path(os.readlink(tmp_path / "m1.at2")).exists()
        await second.dial(NUMBER)
        await second.wait_connected()
        expected = ListedCall(1, False, ACTIVE, NUMBER)
        assert await first.calls() == [expected]
        assert await second.calls() == [expected]
        with pytest.raises(PbxError) as busy:
            await first.dial("+15550100124")  # one radio: a second call is refused
        assert busy.value.result == "ERROR"
        await first.hangup()  # the other port ends it
        assert await first.calls() == []
        assert await second.calls() == []
        assert await second.wait_unsolicited("NO CARRIER") == "NO CARRIER"
        assert modem.hangups == ["ATH"]
        assert "NO CARRIER" not in first.unsolicited  # port 1 hung up: just its OK


async def test_each_port_has_its_own_echo_and_cmee(tmp_path: Path) -> None:
    async with _two_ports(tmp_path, "quectel-ec21") as (bank, first, second):
        await second.command("AT+CMEE=2")
        assert await second.command("AT+CMEE?") == ["+CMEE: 2"]
        assert await first.command("AT+CMEE?") == ["+CMEE: 0"]
        with pytest.raises(PbxError) as verbose:
            await second.command("AT+CPIN=1234")  # the SIM is ready: not allowed
        assert verbose.value.result == "+CME ERROR: operation not allowed"
        await first.command("AT+CMEE=1")
        with pytest.raises(PbxError) as numeric:
            await first.command("AT+CPIN=1234")
        assert numeric.value.result == "+CME ERROR: 3"
        # basic commands answer on the second port from the modem's one state
        assert await second.command("AT+CGMI") == ["Quectel"]
        assert await second.command("ATI") == ["Quectel", "EC21", "Revision: EC21EFAR06A01M4G"]
        assert await second.command("AT+CPIN?") == ["+CPIN: READY"]
        assert await second.command("AT+CSQ") == ["+CSQ: 20,99"]
        assert await second.command("AT+CREG?") == ["+CREG: 0,1"]
        # echo: both clients turned it off on their own port; port 2 turns its own back on
        await second.command("ATE1")
        assert bank.modems["m1"].settings.echo is False
        assert bank.modems["m1"].aux is not None and bank.modems["m1"].aux.echo is True
        assert await first.command("AT") == []


@pytest.mark.parametrize("urc_port", [1, 2])
async def test_simcom_clcc_urcs_go_to_the_urc_port_only(tmp_path: Path, urc_port: int) -> None:
    async with _two_ports(tmp_path, "simcom", urc_port) as (_bank, first, second):
        urcs, quiet = (first, second) if urc_port == 1 else (second, first)
        assert await first.command("AT+CLCC=?") == ["+CLCC: (0-1)"]
        await first.command("AT+CLCC=1")
        assert await second.command("AT+CLCC?") == ["+CLCC: 1"]  # one radio, one setting
        await second.dial(NUMBER)
        # no AT+CLCC polling on the URC port: a +CLCC URC would pass for a line of its answer
        lines = [await urcs.wait_unsolicited(r"\+CLCC: ") for _ in range(3)]
        assert lines == [f'+CLCC: 1,0,{stat},0,0,"{NUMBER}",145' for stat in (2, ALERTING, ACTIVE)]
        assert await quiet.calls() == [ListedCall(1, False, ACTIVE, NUMBER)]
        await second.hangup()
        assert await urcs.wait_unsolicited(r"\+CLCC: ") == f'+CLCC: 1,0,6,0,0,"{NUMBER}",145'
        await quiet.command("AT")  # anything sent to it would have come before this answer
        assert not [line for line in quiet.unsolicited if line.startswith("+CLCC")]


async def test_other_models_refuse_the_clcc_urc(tmp_path: Path) -> None:
    async with (
        SimulatedBank(_scenario("quectel-ec21"), tmp_path) as bank,
        Pbx(bank.modems["m1"].path) as first,
    ):
        with pytest.raises(PbxError) as refused:
            await first.command("AT+CLCC=1")
        assert refused.value.result == "ERROR"
        assert await first.command("AT+CLCC=?") == []


@pytest.mark.parametrize("urc_port", [1, 2])
async def test_an_incoming_call_rings_on_the_urc_port_and_port_2_answers(
    tmp_path: Path, urc_port: int
) -> None:
    async with _two_ports(tmp_path, urc_port=urc_port) as (bank, first, second):
        urcs, quiet = (first, second) if urc_port == 1 else (second, first)
        await urcs.command("AT+CLIP=1")
        bank.modems["m1"].incoming_call(CALLER, rings=500)
        assert await urcs.wait_unsolicited("RING") == "RING"
        assert await urcs.wait_unsolicited(r"\+CLIP") == f'+CLIP: "{CALLER}",145,,,,0'
        await second.command("ATA")
        assert await first.calls() == [ListedCall(1, True, ACTIVE, CALLER)]
        await quiet.command("AT")
        assert "RING" not in quiet.unsolicited
        bank.modems["m1"].end_call("NO CARRIER", 16)  # the caller hangs up
        assert await second.wait_unsolicited("NO CARRIER") == "NO CARRIER"  # the answering port
        await first.command("AT")
        assert "NO CARRIER" not in first.unsolicited


async def test_the_pbx_dials_waits_and_hangs_up(tmp_path: Path) -> None:
    async with _two_ports(tmp_path) as (bank, first, pbx):
        await pbx.dial(NUMBER)
        call = await pbx.wait_connected()
        assert call == ListedCall(1, False, ACTIVE, NUMBER)
        assert bank.carrier.stats.calls_answered == 1
        await pbx.hangup()
        assert await pbx.wait_state(ACTIVE) is None
        assert bank.modems["m1"].hangups == ["ATH"]
        await pbx.dial(BUSY_NUMBER)
        with pytest.raises(PbxError) as busy:
            await pbx.wait_connected()
        assert busy.value.result == "BUSY"
        await first.command("AT")
        assert "BUSY" not in first.unsolicited  # the dialling port heard it, not port 1


async def test_unplug_takes_both_ports_and_replug_brings_them_back(tmp_path: Path) -> None:
    async with SimulatedBank(_scenario("generic", ports=2), tmp_path) as bank:
        modem = bank.modems["m1"]
        modem.unplug()
        assert not (tmp_path / "m1").exists()
        assert not (tmp_path / "m1.at2").exists()
        modem.replug()
        await modem.wait_registered()
        async with Pbx(bank.aux_port("m1")) as second:
            assert await second.command("AT+CPIN?") == ["+CPIN: READY"]


async def test_a_one_port_modem_is_as_before(tmp_path: Path) -> None:
    async with SimulatedBank(_scenario(), tmp_path) as bank, Pbx(bank.modems["m1"].path) as only:
        modem = bank.modems["m1"]
        assert modem.aux_link is None
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m1"]
        with pytest.raises(ValueError, match="one AT port"):
            bank.aux_port("m1")
        await only.command("AT+CLIP=1")
        modem.incoming_call(CALLER, rings=500)
        assert await only.wait_unsolicited("RING") == "RING"
        await only.command("ATH")
        await only.dial(BUSY_NUMBER)
        assert await only.wait_unsolicited("BUSY") == "BUSY"
        assert modem.hangups == ["ATH"]
