"""Drivers against the simulated modem bank over real PTYs (pyserial through open_port).

Each dialect is probed with the generic driver, detected from its identity, then its own
driver reads the ICCID, switches slots (verified by the ICCID read back) and follows
registration through URCs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simbank.at import channel as at_channel
from simbank.at.channel import AtChannel
from simbank.at.results import Command, Urc
from simbank.drivers import generic
from simbank.drivers.generic import GenericDriver
from simbank.drivers.port import open_port
from simbank.drivers.registry import driver_for_identity
from simbank.drivers.types import NewSms, Registration, RegStat, Signal, SimStatus
from simbank.errors import AtTimeout, CommandError, ModemUnresponsive
from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.scenario import make_iccid

pytestmark = pytest.mark.integration

DIALECTS = ["generic", "quectel", "simcom", "huawei", "fibocom"]
SLOTS = {"generic": 1, "quectel": 2, "simcom": 2, "huawei": 2, "fibocom": 2}
TIME_SCALE = 10.0  # simulated seconds per real second


def _iccid(dialect: str, slot: int) -> str:
    return make_iccid(DIALECTS.index(dialect) * 10 + slot)


def _scenario() -> Scenario:
    return Scenario.model_validate(
        {
            "time_scale": TIME_SCALE,
            "modems": [
                {
                    "id": dialect,
                    "dialect": dialect,
                    "slots": [
                        {"iccid": _iccid(dialect, slot), "registration_delay_s": 3.0}
                        for slot in range(1, SLOTS[dialect] + 1)
                    ],
                }
                for dialect in DIALECTS
            ],
        }
    )


@pytest.fixture
async def bank(tmp_path: Path) -> AsyncIterator[SimulatedBank]:
    async with SimulatedBank(_scenario(), directory=tmp_path) as simulated:
        yield simulated


@pytest.fixture
async def channels(bank: SimulatedBank) -> AsyncIterator[dict[str, AtChannel]]:
    opened: dict[str, AtChannel] = {}
    try:
        for dialect in DIALECTS:
            opened[dialect] = await open_port(str(bank.modems[dialect].path), 115200, dialect)
        yield opened
    finally:
        for channel in opened.values():
            channel.close()
        for channel in opened.values():
            await channel.wait_closed()


async def _detect(channel: AtChannel, slots: int) -> GenericDriver:
    identity = await GenericDriver(channel).probe()
    driver = driver_for_identity(identity.manufacturer, identity.model)(channel, slots)
    driver.identity = identity
    return driver


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_probe_detects_dialect_and_reads_iccid(
    channels: dict[str, AtChannel], dialect: str
) -> None:
    driver = await _detect(channels[dialect], SLOTS[dialect])
    assert driver.dialect == dialect
    assert driver.identity is not None
    assert driver.identity.imei is not None
    assert driver.identity.imei.startswith("35000000")
    await driver.setup_urcs()
    assert await driver.wait_sim_ready(10.0) is SimStatus.READY
    assert await driver.read_iccid() == _iccid(dialect, 1)
    assert await driver.active_slot() == 1
    imsi = await driver.read_imsi()
    assert imsi is not None
    assert imsi.startswith("00101")
    signal = await driver.signal()
    assert signal.rssi_dbm is not None


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if SLOTS[d] > 1])
async def test_slot_switch_verified_by_iccid(channels: dict[str, AtChannel], dialect: str) -> None:
    driver = await _detect(channels[dialect], SLOTS[dialect])
    await driver.setup_urcs()
    assert await driver.wait_sim_ready(10.0) is SimStatus.READY
    for slot in (2, 1, 2):
        await driver.select_slot(slot)
        assert await driver.wait_sim_ready(10.0) is SimStatus.READY
        assert await driver.read_iccid() == _iccid(dialect, slot)
        assert await driver.active_slot() == slot
    with pytest.raises(ValueError, match="slot 3"):
        await driver.select_slot(3)


async def test_waiting_for_the_sim_stops_when_the_modem_itself_stops_answering(
    bank: SimulatedBank, channels: dict[str, AtChannel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hang right after a slot switch is not a SIM still initialising: the wait ends when a
    plain AT goes unanswered too, instead of polling +CPIN? until its own deadline."""
    # Shorter than on a real modem: AT+CPIN? gets 12 s there, the plain AT 3 s.
    monkeypatch.setattr(generic, "MEDIUM", 1.0)
    monkeypatch.setattr(at_channel, "SHORT", 0.5)
    driver = await _detect(channels["quectel"], 2)
    await driver.select_slot(2)
    bank.modems["quectel"].hang(True)
    # The wait ends on the unanswered AT (ModemUnresponsive), not on its 60 s deadline
    # (which would raise a SIM-not-ready error).
    with pytest.raises(ModemUnresponsive, match="does not answer AT"):
        await driver.wait_sim_ready(60.0)
    bank.modems["quectel"].hang(False)
    assert await driver.wait_sim_ready(10.0) is SimStatus.READY
    assert await driver.read_iccid() == _iccid("quectel", 2)


async def test_generic_rejects_a_second_slot(channels: dict[str, AtChannel]) -> None:
    driver = await _detect(channels["generic"], 1)
    with pytest.raises(ValueError, match="slot 2"):
        await driver.select_slot(2)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_registration_followed_by_urc(channels: dict[str, AtChannel], dialect: str) -> None:
    channel = channels[dialect]
    driver = await _detect(channel, SLOTS[dialect])
    seen: list[Registration | Signal] = []
    registered = asyncio.Event()

    def on_urc(urc: Urc) -> None:
        event = driver.parse_urc(urc)
        if isinstance(event, Registration | Signal):
            seen.append(event)
        if isinstance(event, Registration) and event.registered:
            registered.set()

    unsubscribe = channel.subscribe_all(on_urc)
    try:
        await driver.setup_urcs()
        await driver.set_radio(False)
        await driver.set_radio(True)
        async with asyncio.timeout(10.0):
            await registered.wait()
    finally:
        unsubscribe()
    regs = [event for event in seen if isinstance(event, Registration)]
    assert regs[-1].registered
    assert regs[-1].lac is not None
    current = await driver.registrations()
    assert current
    assert any(reg.registered for reg in current)
    assert all(reg.n in (2, 3) for reg in current)
    operator = await driver.operator()
    assert operator.name


async def _registered(driver: GenericDriver) -> None:
    async with asyncio.timeout(10.0):
        while not any(reg.registered for reg in await driver.registrations()):
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_call_sms_ussd(channels: dict[str, AtChannel], dialect: str) -> None:
    channel = channels[dialect]
    driver = await _detect(channel, SLOTS[dialect])
    ended: asyncio.Queue[Urc] = asyncio.Queue()

    def feed(urc: Urc) -> None:
        driver.parse_urc(urc)  # as the daemon does; feeds Huawei's ^CEND memory

    unsubscribe_all = channel.subscribe_all(feed)
    unsubscribe_busy = channel.subscribe("BUSY", ended.put_nowait)
    unsubscribe_carrier = channel.subscribe("NO CARRIER", ended.put_nowait)
    try:
        await driver.setup_urcs()
        await _registered(driver)
        assert await driver.ussd("*100#", timeout=10.0) == "Your balance is 10.00 TEST"
        references = await driver.send_sms("+15550100001", "hello from the tests")
        assert len(references) == 1 and references[0] >= 0
        # Last two digits 90-94: the simulated called party is busy.
        await driver.dial("+15550100091")
        calls = await driver.list_calls()
        assert [(c.id, c.number) for c in calls] == [(1, "+15550100091")]
        async with asyncio.timeout(10.0):
            assert (await ended.get()).name == "BUSY"
        cause = await driver.last_call_cause()
        assert (cause.code, cause.text) == (17, "User busy")
        assert await driver.list_calls() == []
        # 00-89 answer: hang up while it rings or talks.
        await driver.dial("+15550100042")
        assert len(await driver.list_calls()) == 1
        await driver.hangup()
        assert await driver.list_calls() == []
    finally:
        unsubscribe_all()
        unsubscribe_busy()
        unsubscribe_carrier()
    with pytest.raises(ValueError, match="dial string"):
        await driver.dial("+1555;ATH")


@pytest.mark.parametrize("dialect", ["quectel", "huawei"])
async def test_probe_resyncs_after_reboot(channels: dict[str, AtChannel], dialect: str) -> None:
    driver = await _detect(channels[dialect], SLOTS[dialect])
    await driver.reboot()
    identity = await driver.probe()  # the modem is still booting: AT is retried
    assert identity.manufacturer
    assert await driver.wait_sim_ready(10.0) is SimStatus.READY
    assert await driver.read_iccid() == _iccid(dialect, 1)


@pytest.mark.parametrize("dialect", ["quectel", "huawei"])
async def test_probe_cancels_an_sms_prompt_a_dead_client_left_open(
    bank: SimulatedBank, dialect: str
) -> None:
    """A daemon killed at ``> `` leaves the modem reading message text: the next probe's AT
    times out once, ESC cancels the message (nothing is sent) and the modem answers again."""
    modem = bank.modems[dialect]
    first = await open_port(str(modem.path), 115200, f"{dialect}-dead")
    try:
        dead = GenericDriver(first)
        await dead.probe()
        assert await dead.wait_sim_ready(10.0) is SimStatus.READY
        async with asyncio.timeout(10):
            while not any(r.registered for r in await dead.registrations()):
                await asyncio.sleep(0.05)
        await first.request("AT+CMGF=1")
        with pytest.raises(AtTimeout):  # the "> " prompt is not a final result
            await first.request(Command('AT+CMGS="+15550100123"', timeout=0.5))
    finally:
        first.close()
        await first.wait_closed()
    assert modem.awaiting_sms is not None
    channel = await open_port(str(modem.path), 115200, dialect)
    try:
        identity = await GenericDriver(channel).probe()
        assert identity.manufacturer
        assert modem.awaiting_sms is None
        assert bank.carrier.stats.sms == 0
    finally:
        channel.close()
        await channel.wait_closed()


def _troubled_scenario() -> Scenario:
    return Scenario.model_validate(
        {
            "time_scale": TIME_SCALE,
            "modems": [
                {
                    "id": "q",
                    "dialect": "quectel",
                    "slots": [
                        {"iccid": make_iccid(101), "behaviour": "denied", "reject_cause": 7},
                        {"behaviour": "absent"},
                    ],
                },
                {
                    "id": "g",
                    "dialect": "generic",
                    "slots": [
                        {"iccid": make_iccid(104), "behaviour": "denied", "reject_cause": 11}
                    ],
                },
                {
                    "id": "h",
                    "dialect": "huawei",
                    "slots": [
                        {"iccid": make_iccid(102), "behaviour": "puk"},
                        {"iccid": make_iccid(103), "behaviour": "barred"},
                    ],
                },
            ],
        }
    )


@pytest.fixture
async def troubled(tmp_path: Path) -> AsyncIterator[dict[str, AtChannel]]:
    async with SimulatedBank(_troubled_scenario(), directory=tmp_path) as simulated:
        opened = {
            name: await open_port(str(modem.path), 115200, name)
            for name, modem in simulated.modems.items()
        }
        try:
            yield opened
        finally:
            for channel in opened.values():
                channel.close()
                await channel.wait_closed()


async def test_denied_registration_carries_reject_cause_and_absent_slot(
    troubled: dict[str, AtChannel],
) -> None:
    channel = troubled["q"]
    driver = await _detect(channel, 2)
    denied: asyncio.Queue[Registration] = asyncio.Queue()

    def on_urc(urc: Urc) -> None:
        event = driver.parse_urc(urc)
        if isinstance(event, Registration) and event.stat is RegStat.DENIED:
            denied.put_nowait(event)

    unsubscribe = channel.subscribe_all(on_urc)
    try:
        await driver.setup_urcs()
        assert await driver.wait_sim_ready(10.0) is SimStatus.READY
        await driver.set_radio(False)
        await driver.set_radio(True)
        async with asyncio.timeout(10.0):
            report = await denied.get()
    finally:
        unsubscribe()
    assert driver.reg_modes[report.domain] == 3  # the EC25 profile accepts n=3
    assert (report.cause_type, report.reject_cause) == (0, 7)
    await driver.select_slot(2)
    assert await driver.wait_sim_ready(1.0) is SimStatus.ABSENT
    assert await driver.read_iccid() is None
    assert await driver.read_imsi() is None


async def test_puk_locked_sim_and_barred_calls(troubled: dict[str, AtChannel]) -> None:
    channel = troubled["h"]
    driver = await _detect(channel, 2)

    def feed(urc: Urc) -> None:
        driver.parse_urc(urc)

    unsubscribe = channel.subscribe_all(feed)
    try:
        await driver.setup_urcs()
        assert await driver.wait_sim_ready(10.0) is SimStatus.PUK
        await driver.select_slot(2)
        assert await driver.wait_sim_ready(10.0) is SimStatus.READY
        assert await driver.read_iccid() == make_iccid(103)
        await _registered(driver)
        with contextlib.suppress(CommandError):  # the modem may refuse at once or end later
            await driver.dial("+15550100042")
        async with asyncio.timeout(10.0):
            while (cause := await driver.last_call_cause()).code is None:
                await asyncio.sleep(0.1)
        assert cause.code == 8  # operator determined barring
    finally:
        unsubscribe()


async def test_denied_in_every_domain_answers_with_the_cause(
    troubled: dict[str, AtChannel],
) -> None:
    driver = await _detect(troubled["g"], 1)
    await driver.setup_urcs()
    assert set(driver.reg_modes.values()) == {3}
    async with asyncio.timeout(10.0):
        while True:
            regs = await driver.registrations()
            if regs and all(reg.stat is RegStat.DENIED for reg in regs):
                break
            await asyncio.sleep(0.1)
    assert {reg.domain for reg in regs} == set(driver.domains)
    assert {(reg.state, reg.cause_type, reg.reject_cause) for reg in regs} == {("denied", 0, 11)}


async def test_inbound_sms_reported_read_and_deleted(
    bank: SimulatedBank, channels: dict[str, AtChannel]
) -> None:
    channel = channels["simcom"]
    driver = await _detect(channel, SLOTS["simcom"])
    arrived: asyncio.Queue[NewSms] = asyncio.Queue()

    def on_urc(urc: Urc) -> None:
        event = driver.parse_urc(urc)
        if isinstance(event, NewSms):
            arrived.put_nowait(event)

    unsubscribe = channel.subscribe_all(on_urc)
    try:
        await driver.setup_urcs()
        assert await driver.wait_sim_ready(10.0) is SimStatus.READY
        index = bank.send_sms(_iccid("simcom", 1), "+15550100007", "Your code is 1234")
        async with asyncio.timeout(10.0):
            note = await arrived.get()
    finally:
        unsubscribe()
    assert (note.storage, note.index) == ("SM", index)
    message = await driver.read_sms(note.index)
    assert (message.sender, message.text) == ("+15550100007", "Your code is 1234")
    assert message.timestamp is not None
    await driver.delete_sms(note.index)
    with pytest.raises(CommandError):
        await driver.read_sms(note.index)
