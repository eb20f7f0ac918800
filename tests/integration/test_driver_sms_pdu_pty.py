"""PDU-mode reading and delivery reports by the real driver against the simulated modem over a
real PTY (open_port + AtChannel + GenericDriver): PDU mode and delivery reports are probed at
connect, a 3-part UCS-2 inbound message is listed as its three parts (concatenation kept for
the reassembly), and a send that asks for a report gets a +CDS matched by its reference."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from simdriver import driver_on_simulator

from simbank.drivers.generic import GenericDriver
from simbank.drivers.types import DeliveryReport, SmsMessage
from simbank.simulator import SimulatedBank
from simbank.simulator.scenario import make_iccid

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

NUMBER = "+447700900123"  # fictional (Ofcom drama range)
SENDER = "+15550100007"  # fictional
ICCID = make_iccid(1)
TEXT = "中国联通提醒您：您的账户余额不足，请及时充值。" * 7  # 161 characters: 3 UCS-2 parts


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[tuple[SimulatedBank, GenericDriver]]:
    async with driver_on_simulator(tmp_path, ICCID) as found:
        yield found


async def test_a_3_part_ucs2_message_is_listed_in_pdu_mode_as_its_parts(
    driver: tuple[SimulatedBank, GenericDriver],
) -> None:
    bank, modem = driver
    assert modem.capabilities["pdu_mode"] is True  # probed at connect, before any send
    assert modem.capabilities["delivery_reports"] is True
    bank.deliver_sms_parts(ICCID, SENDER, TEXT)
    async with asyncio.timeout(10.0):
        while len(stored := await modem.list_sms()) < 3:
            await asyncio.sleep(0.1)
    messages = [message for _, message in stored]
    assert all(isinstance(message, SmsMessage) for message in messages)
    parts = sorted(
        (m for m in messages if isinstance(m, SmsMessage)),
        key=lambda m: m.concat[2] if m.concat else 0,
    )
    assert {(m.sender, m.coding, m.undecodable) for m in parts} == {(SENDER, "ucs2", False)}
    assert [(m.concat[1], m.concat[2]) for m in parts if m.concat] == [(3, 1), (3, 2), (3, 3)]
    assert len({m.concat[0] for m in parts if m.concat}) == 1
    assert "".join(m.text for m in parts) == TEXT
    # one of them read alone, then deleted; the modem is back in text mode after each
    index = stored[0][0]
    again = await modem.read_sms(index)
    first = stored[0][1]
    assert isinstance(again, SmsMessage) and isinstance(first, SmsMessage)
    assert (again.status, again.text, again.concat) == ("REC READ", first.text, first.concat)
    await modem.delete_sms(index)
    assert len(await modem.list_sms()) == 2
    response = await modem.channel.request("AT+CMGF?")
    assert "+CMGF: 1" in response.lines


@pytest.mark.parametrize(("status", "outcome"), [(None, "delivered"), (0x41, "failed")])
async def test_a_report_requested_comes_back_as_a_cds_with_the_send_reference(
    driver: tuple[SimulatedBank, GenericDriver], status: int | None, outcome: str
) -> None:
    bank, modem = driver
    if status is not None:
        bank.carrier.fail_delivery(NUMBER, status)
    with modem.channel.expect_urc("+CDS") as cds:
        references = await modem.send_sms(NUMBER, "report this one", status_report=True)
        urc = await cds.wait(20.0)
    report = modem.parse_urc(urc)
    assert isinstance(report, DeliveryReport)
    assert report.reference == references[0]
    assert report.outcome == outcome
    assert report.recipient == NUMBER
