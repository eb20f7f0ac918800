"""Waiting for a modem (:class:`ModemAccess`): a lock waited for that an open authorization takes
meanwhile is refused ``busy`` at once (it used to wait the full two minutes), and a switch
waits for a live call's end only so long, then is refused ``busy``. The modem is a stand-in
with the three things these waits read: its id, its action lock and whether a call is live."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from simbank.daemon.commands.access import ModemAccess
from simbank.errors import Refused

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
