"""Waiting for a modem (:class:`ModemAccess`): a lock waited for that an open authorization takes
meanwhile is refused ``busy`` at once (it used to wait the full two minutes), and a switch
waits for a live call's end only so long, then is refused ``busy``. The modem is a stand-in
with the three things these waits read: its id, its action lock and whether a call is live."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from simbank.bank.rotation import Action
from simbank.bank.usage import UsageKind
from simbank.clock import ScriptedClock
from simbank.config.models import Config, GatewayConfig, PolicyConfig
from simbank.contract import Topics
from simbank.daemon.board import StatusBoard
from simbank.daemon.commands.access import ModemAccess
from simbank.daemon.inventory import SimInfo
from simbank.daemon.runtime import BankRuntime
from simbank.errors import Refused
from simbank.store.ledger import Ledger

HANG_GUARD_S = 20.0


@dataclass
class Cfg:
    id: str = "m1"


@dataclass
class Watch:
    changes: int = 0

    async def changed(self, timeout_s: float) -> None:
        self.changes += 1
        await asyncio.sleep(min(timeout_s, 0.01))


@dataclass
class Modem:
    cfg: Cfg = field(default_factory=Cfg)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    in_call: bool = True
    call_watch: Watch = field(default_factory=Watch)


def access() -> ModemAccess:
    return ModemAccess(cast(Any, None))  # neither wait reads the gateway


async def test_a_modem_held_while_waited_for_is_refused_at_once() -> None:
    gate, modem = access(), Modem()
    await modem.lock.acquire()  # an authorize is switching it
    waiter = asyncio.create_task(gate.lock(cast(Any, modem)))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    gate.holds["m1"] = "an authorized PBX call"  # ...and now holds it for its call
    async with asyncio.timeout(HANG_GUARD_S):
        with pytest.raises(Refused) as refused:
            await waiter
    assert refused.value.reason == "busy" and "authorized" in str(refused.value)
    assert modem.lock.locked()  # still the authorization's


async def test_a_free_lock_is_taken() -> None:
    gate, modem = access(), Modem()
    await gate.lock(cast(Any, modem))
    assert modem.lock.locked()


async def test_a_switch_waits_for_the_call_then_goes_on() -> None:
    gate, modem = access(), Modem()

    async def hang_up() -> None:
        await asyncio.sleep(0.1)
        modem.in_call = False

    ending = asyncio.create_task(hang_up())
    async with asyncio.timeout(HANG_GUARD_S):
        await gate._call_ended(cast(Any, modem))
    await ending
    assert not modem.in_call and modem.call_watch.changes >= 1


async def test_a_call_that_does_not_end_refuses_the_switch_busy() -> None:
    gate, modem = access(), Modem()
    gate.call_wait_s = 0.2
    async with asyncio.timeout(HANG_GUARD_S):
        with pytest.raises(Refused) as refused:
            await gate._call_ended(cast(Any, modem))
    assert refused.value.reason == "busy" and "live call" in str(refused.value)


# -- which modem a voice action goes to while calls are live (review #5) -------------------------
# A real runtime (ledger, inventory, planner) over two single-slot stand-in modems.

M1_SIM, M2_SIM = "89990100000000001501", "89990100000000001502"
T0 = 1_780_000_000.0
CALL = Action(UsageKind.CALL, max_duration_s=60)
SMS = Action(UsageKind.SMS)


@dataclass
class Sup:
    cfg: Cfg
    iccid: str
    in_call: bool = False
    ready: bool = True
    usable_slots: int = 1
    active_slot: int = 1
    driver: None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    call_watch: Watch = field(default_factory=Watch)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[ModemAccess, dict[str, Sup]]]:
    policy = PolicyConfig(quiet_hours=[], calls_per_hour=4, min_call_gap_s=0)
    config = Config(
        gateway=GatewayConfig(id="gw1", state_dir=tmp_path / "state"),
        policies={"default": policy},
    )
    ledger = Ledger.open(config.gateway.state_dir, durable=False)
    rt = BankRuntime(
        config, ledger, StatusBoard(Sink(), Topics("simbank", "gw1")), ScriptedClock(T0)
    )
    sups = {"m1": Sup(Cfg("m1"), M1_SIM), "m2": Sup(Cfg("m2"), M2_SIM)}
    rt.supervisors = cast(Any, sups)
    for modem_id, sup in sups.items():
        rt.slots[(modem_id, 1)] = sup.iccid
        rt.sims[sup.iccid] = SimInfo(sup.iccid, modem=modem_id, slot=1)
    # m2's SIM has made two calls this hour: m1's SIM has more headroom, so m1 is preferred.
    for _ in range(2):
        row = ledger.book(M2_SIM, UsageKind.CALL, T0 - 100, modem="m2")
        ledger.complete(row, T0 - 90, "completed", 10)
    gate = ModemAccess(rt)
    gate.call_wait_s = 0.3
    try:
        yield gate, sups
    finally:
        ledger.close()


class Sink:
    def set_retained(self, topic: str, payload: bytes) -> None:
        pass

    def publish(self, topic: str, payload: bytes, *args: Any, **kw: Any) -> None:
        pass


async def test_a_call_goes_to_the_modem_without_a_call(
    gateway: tuple[ModemAccess, dict[str, Sup]],
) -> None:
    gate, sups = gateway
    sup, iccid = await gate.acquire(lambda: CALL, None)
    assert (sup.cfg.id, iccid) == ("m1", M1_SIM)  # the most headroom
    sup.lock.release()
    sups["m1"].in_call = True
    sup, iccid = await gate.acquire(lambda: CALL, None)
    assert (sup.cfg.id, iccid) == ("m2", M2_SIM)
    sup.lock.release()


async def test_a_call_on_a_modem_whose_call_does_not_end_is_refused_busy(
    gateway: tuple[ModemAccess, dict[str, Sup]],
) -> None:
    gate, sups = gateway
    sups["m1"].in_call = sups["m2"].in_call = True  # nothing without a call: wait, refuse
    async with asyncio.timeout(HANG_GUARD_S):
        with pytest.raises(Refused) as refused:
            await gate.acquire(lambda: CALL, None)
    assert refused.value.reason == "busy" and "live call" in str(refused.value)
    assert not sups["m1"].lock.locked() and not sups["m2"].lock.locked()
    sups["m2"].in_call = False  # forced onto m1 although m2 is free: m1's call is waited for
    async with asyncio.timeout(HANG_GUARD_S):
        with pytest.raises(Refused) as refused:
            await gate.acquire(lambda: CALL, "m1")
    assert refused.value.reason == "busy" and refused.value.data.get("modem") == "m1"


async def test_a_call_waits_for_the_live_call_to_end_then_goes_on(
    gateway: tuple[ModemAccess, dict[str, Sup]],
) -> None:
    gate, sups = gateway
    m1 = sups["m1"]
    m1.in_call = True
    order: list[str] = []

    async def hang_up() -> None:
        await asyncio.sleep(0.1)
        order.append("hung up")
        m1.in_call = False

    ending = asyncio.create_task(hang_up())
    async with asyncio.timeout(HANG_GUARD_S):
        sup, _ = await gate.acquire(lambda: CALL, "m1")
    order.append("acquired")
    await ending
    assert sup is cast(Any, m1) and order == ["hung up", "acquired"]
    sup.lock.release()


async def test_an_sms_may_use_a_modem_in_a_call(
    gateway: tuple[ModemAccess, dict[str, Sup]],
) -> None:
    gate, sups = gateway
    sups["m1"].in_call = sups["m2"].in_call = True
    async with asyncio.timeout(HANG_GUARD_S):
        sup, iccid = await gate.acquire(lambda: SMS, "m1")
    assert (sup.cfg.id, iccid) == ("m1", M1_SIM) and sups["m1"].call_watch.changes == 0
    sup.lock.release()
