"""The restart pickup, driver side, over real PTYs for every dialect: ``AT+CMGL="ALL"`` lists
the messages stored while nobody listened, and ``ensure_radio_on`` undoes the ``AT+CFUN=4`` a
crash in the middle of a slot switch leaves behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simbank.at.channel import AtChannel
from simbank.drivers.generic import GenericDriver
from simbank.drivers.parse.messaging import parse_cmgl
from simbank.drivers.port import open_port
from simbank.drivers.registry import driver_for_identity
from simbank.drivers.types import SimStatus
from simbank.errors import ProtocolGarbage
from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.scenario import make_iccid

pytestmark = pytest.mark.integration

DIALECTS = ["generic", "quectel", "simcom", "huawei", "fibocom"]


def _iccid(dialect: str) -> str:
    return make_iccid(600 + DIALECTS.index(dialect))


@pytest.fixture
async def bank(tmp_path: Path) -> AsyncIterator[SimulatedBank]:
    scenario = Scenario.model_validate(
        {
            "modems": [
                {"id": d, "dialect": d, "slots": [{"iccid": _iccid(d), "registration_delay_s": 0}]}
                for d in DIALECTS
            ]
        }
    )
    async with SimulatedBank(scenario, directory=tmp_path) as simulated:
        yield simulated


async def _driver(bank: SimulatedBank, dialect: str) -> tuple[GenericDriver, AtChannel]:
    channel = await open_port(str(bank.modems[dialect].path), 115200, dialect)
    identity = await GenericDriver(channel).probe()
    driver = driver_for_identity(identity.manufacturer, identity.model)(channel, 1)
    await driver.setup_urcs()
    assert await driver.wait_sim_ready(10.0) is SimStatus.READY
    return driver, channel


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_stored_messages_are_listed_with_index_sender_time_and_text(
    bank: SimulatedBank, dialect: str
) -> None:
    first = bank.send_sms(_iccid(dialect), "+15550100007", "Your code is 1234")
    second = bank.send_sms(_iccid(dialect), "+15550100008", 'two\nlines, "quoted"')
    driver, channel = await _driver(bank, dialect)
    try:
        await driver.read_sms(first)  # one read, one unread: "ALL" lists both
        listed = await driver.list_sms()
        assert [(i, m.sender, m.text) for i, m in listed] == [
            (first, "+15550100007", "Your code is 1234"),
            (second, "+15550100008", 'two\nlines, "quoted"'),
        ]
        assert [m.status for _, m in listed] == ["REC READ", "REC UNREAD"]
        assert all(m.timestamp is not None for _, m in listed)
        for index, _ in listed:
            await driver.delete_sms(index)
        assert await driver.list_sms() == []
    finally:
        channel.close()
        await channel.wait_closed()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_the_radio_left_off_by_a_crash_is_turned_back_on(
    bank: SimulatedBank, dialect: str
) -> None:
    driver, channel = await _driver(bank, dialect)
    try:
        assert await driver.ensure_radio_on() is False
        await driver.set_radio(False)
        assert bank.modems[dialect].cfun == 4
        assert await driver.ensure_radio_on() is True
        assert bank.modems[dialect].cfun == 1
    finally:
        channel.close()
        await channel.wait_closed()


@pytest.mark.parametrize(
    ("header", "index", "status", "sender", "stamp"),
    [
        # 27.005 §3.4.2 text mode, <alpha> empty, <scts> quoted (SIMCom, Quectel, Huawei).
        (
            '+CMGL: 1,"REC UNREAD","+15550100007",,"26/11/28,21:00:05+04"',
            1,
            "REC UNREAD",
            "+15550100007",
            "2026-11-28T21:00:05+01:00",
        ),
        # With <alpha>, <tooa> and <length> (AT+CSDH=1).
        (
            '+CMGL: 12,"REC READ","+15550100008","Bob","26/11/28,21:00:05-08",145,5',
            12,
            "REC READ",
            "+15550100008",
            "2026-11-28T21:00:05-02:00",
        ),
        # <scts> unquoted, so its comma splits it in two fields.
        (
            '+CMGL: 3,"REC READ","+15550100009",,26/11/28,21:00:05+00',
            3,
            "REC READ",
            "+15550100009",
            "2026-11-28T21:00:05+00:00",
        ),
        # A stored outgoing message has no <scts>.
        ('+CMGL: 4,"STO SENT","+15550100010",', 4, "STO SENT", "+15550100010", None),
    ],
)
def test_cmgl_headers(header: str, index: int, status: str, sender: str, stamp: str | None) -> None:
    got_index, message = parse_cmgl(header, "text")
    assert (got_index, message.status, message.sender, message.text) == (
        index,
        status,
        sender,
        "text",
    )
    assert (message.timestamp.isoformat() if message.timestamp else None) == stamp


@pytest.mark.parametrize(
    "header", ['+CMGL: "REC READ","+15550100007"', "+CMGL: 1", '+CMGL: x,"REC READ","+1"']
)
def test_cmgl_garbage(header: str) -> None:
    with pytest.raises(ProtocolGarbage):
        parse_cmgl(header, "")
