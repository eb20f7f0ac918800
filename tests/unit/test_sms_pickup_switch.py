"""The SMS pickup and a slot switch that begins while a read waits its turn (in PDU mode a
read first waits for ``AT+CMGF=0``): what is read then may be the next SIM's, so it is not
handed over under the old ICCID, nor deleted; the next listing reads it for the right SIM.
Found in review (issue 13)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from simbank.bank.sim_identity import SimIdentity
from simbank.daemon.modem.sms_pickup import SmsPickup
from simbank.drivers.types import DeliveryReport, SmsMessage

OLD, NEW = "89860000000000000001", "89860000000000000002"


class Observer:
    def __init__(self) -> None:
        self.got: list[tuple[str | None, str]] = []

    async def sms_received(
        self, modem_id: str, iccid: str | None, index: int, message: SmsMessage
    ) -> None:
        self.got.append((iccid, message.text))

    def delivery_report(self, modem_id: str, report: DeliveryReport) -> None:
        raise AssertionError("no report here")


class Driver:
    """Lists (or reads) one message of whichever card is in the slot once its turn comes."""

    def __init__(self, slot: dict[str, str]) -> None:
        self.slot = slot
        self.deleted: list[int] = []

    def _message(self) -> SmsMessage:
        return SmsMessage("REC UNREAD", "+447700900456", datetime.now(UTC), self.slot["card"])

    async def list_sms(self) -> list[tuple[int, SmsMessage]]:
        await asyncio.sleep(0)  # the AT+CMGF=0 round trip: the switch runs meanwhile
        return [(1, self._message())]

    async def read_sms(self, index: int, storage: str | None = None) -> SmsMessage:
        await asyncio.sleep(0)
        return self._message()

    async def delete_sms(self, index: int, storage: str | None = None) -> None:
        self.deleted.append(index)


async def _race(listing: bool) -> tuple[Observer, Driver]:
    sim = SimIdentity()
    sim.read_back(sim.begin_read(), 1, OLD)
    state = {"switching": False}
    slot = {"card": OLD}
    observer = Observer()
    pickup = SmsPickup("m1", observer, sim, lambda: not state["switching"] and sim.known)
    pickup.sim_adopted(another_card=True, iccid=OLD, ready=True)
    if not listing:
        pickup.tries = 0
        pickup.announced(1)
    driver = Driver(slot)
    task = asyncio.create_task(pickup.take(driver))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    state["switching"] = True  # ModemSupervisor.switch_to: switching, card unknown, select
    sim.changed("switch")
    slot["card"] = NEW
    await task
    return observer, driver


async def test_a_listing_overtaken_by_a_switch_is_dropped() -> None:
    observer, driver = await _race(listing=True)
    assert observer.got == [] and driver.deleted == []


async def test_a_read_overtaken_by_a_switch_is_dropped() -> None:
    observer, driver = await _race(listing=False)
    assert observer.got == [] and driver.deleted == []
