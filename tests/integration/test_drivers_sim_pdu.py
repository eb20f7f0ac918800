"""PDU-mode sending by the real driver to the simulated modem over a real PTY (open_port +
AtChannel + GenericDriver): a 400-character UCS-2 text goes as 6 concatenated SMS-SUBMITs, the
simulated network records each, and the modem is back in text mode for reading afterwards. A
modem without PDU mode (probed) keeps text mode for everything: GSM-7 goes, UCS-2 is refused
before anything is sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from simdriver import driver_on_simulator

from simbank.drivers.generic import GenericDriver
from simbank.errors import CommandError
from simbank.simulator import SimulatedBank
from simbank.simulator.scenario import make_iccid

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NUMBER = "+447700900123"  # fictional (Ofcom drama range)
SENDER = "+15550100007"  # fictional
ICCID = make_iccid(1)
TEXT = "你好世界，这是一条测试短信。" * 28 + "再见再见再见再见"  # 400 characters outside GSM-7


@pytest.fixture
def dialect() -> str:
    return "generic"


@pytest.fixture
async def driver(
    tmp_path: Path, dialect: str
) -> AsyncIterator[tuple[SimulatedBank, GenericDriver]]:
    async with driver_on_simulator(tmp_path, ICCID, dialect) as found:
        yield found


async def test_a_400_character_ucs2_text_goes_as_6_concatenated_segments(
    driver: tuple[SimulatedBank, GenericDriver],
) -> None:
    bank, modem = driver
    assert len(TEXT) == 400
    references = await modem.send_sms(NUMBER, TEXT, status_report=True)
    assert len(references) == 6
    assert modem.capabilities["pdu_mode"] is True
    segments = bank.carrier.stats.sms_segments_by_iccid[ICCID]
    assert [s.message_reference for s in segments] == references
    assert {(s.destination, s.coding, s.status_report) for s in segments} == {
        (NUMBER, "ucs2", True)
    }
    concats = [s.concat for s in segments]
    assert all(concat is not None for concat in concats)
    assert [(c[1], c[2]) for c in concats if c] == [(6, n) for n in range(1, 7)]
    assert len({c[0] for c in concats if c}) == 1
    assert "".join(s.text for s in segments) == TEXT
    assert bank.carrier.stats.sms_by_iccid[ICCID] == 6

    # Back in text mode: reading works as before, and a second send takes a new reference.
    response = await modem.channel.request("AT+CMGF?")
    assert "+CMGF: 1" in response.lines
    bank.send_sms(ICCID, SENDER, "still read in text mode")
    async with asyncio.timeout(10.0):
        while not (stored := await modem.list_sms()):
            await asyncio.sleep(0.1)
    assert [(m.sender, m.text) for _, m in stored] == [(SENDER, "still read in text mode")]
    assert len(await modem.send_sms(NUMBER, "short one")) == 1
    last = bank.carrier.stats.sms_segments_by_iccid[ICCID][-1]
    assert (last.text, last.coding, last.concat) == ("short one", "gsm7", None)


@pytest.mark.parametrize("dialect", ["generic-textonly"])
async def test_a_modem_without_pdu_mode_works_in_text_mode(
    driver: tuple[SimulatedBank, GenericDriver],
) -> None:
    bank, modem = driver
    assert modem.capabilities["pdu_mode"] is False
    assert len(await modem.send_sms(NUMBER, "plain GSM-7 text")) == 1
    (sent,) = bank.carrier.stats.sms_segments_by_iccid[ICCID]
    assert (sent.text, sent.coding) == ("plain GSM-7 text", "text")
    with pytest.raises(CommandError):
        await modem.send_sms(NUMBER, "你好")
    assert len(bank.carrier.stats.sms_segments_by_iccid[ICCID]) == 1
    bank.send_sms(ICCID, SENDER, "read in text mode")
    async with asyncio.timeout(10.0):
        while not (stored := await modem.list_sms()):
            await asyncio.sleep(0.1)
    assert [(m.sender, m.text, m.concat) for _, m in stored] == [
        (SENDER, "read in text mode", None)
    ]
