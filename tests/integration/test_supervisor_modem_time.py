"""The supervisor's modem-time waits go through the injected clock: the liveness checks after
a hang, the reboot of a reset, the radio-off of a re-attach, and a call's talk time (reported
in clock seconds). A simulated modem over a real PTY; the supervisor on a scripted clock that
moves only when it is slept on — no wall-clock figure is asserted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from simbank.clock import ScriptedClock
from simbank.config.models import ModemConfig
from simbank.contract import Topics
from simbank.daemon.board import StatusBoard
from simbank.daemon.modem.liveness import LIVENESS_GAP_S, REBOOT_SETTLE_S
from simbank.daemon.modem.supervisor import RADIO_OFF_S, ModemSupervisor
from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

ICCID = make_iccid(701)


class _Published:
    def set_retained(self, topic: str, payload: bytes) -> None:
        pass

    def publish(self, topic: str, payload: bytes) -> None:
        pass


@dataclass
class Rig:
    bank: SimulatedBank
    board: StatusBoard
    sup: ModemSupervisor
    clock: ScriptedClock

    async def until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):  # a hang guard, not a figure under test
            while not predicate():
                await asyncio.sleep(0.02)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    scenario = Scenario(
        time_scale=20.0,
        timing=Timing(boot_s=1.0, sim_init_s=0.5, ring_s=0.0, talk_s=100_000.0),
        modems=[ModemSpec(id="m1", dialect="quectel", slots=[SimSpec(iccid=ICCID)])],
    )
    async with SimulatedBank(scenario, directory=tmp_path / "ports") as bank:
        clock = ScriptedClock(1_700_000_000.0)
        cfg = ModemConfig(id="m1", port=str(bank.modems["m1"].path), slots=1)
        board = StatusBoard(_Published(), Topics("simbank", "gw"))
        sup = ModemSupervisor(cfg, board, poll_interval_s=0.5, clock=clock)
        task = asyncio.create_task(sup.run(), name="supervisor-under-test")
        try:
            test_rig = Rig(bank, board, sup, clock)
            await test_rig.until(lambda: sup.ready and sup.iccid == ICCID)
            yield test_rig
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_reset_and_reattach_wait_on_the_clock(rig: Rig) -> None:
    async with rig.sup.lock:
        rig.clock.sleeps.clear()
        await rig.sup.reattach()
        assert rig.clock.sleeps == [RADIO_OFF_S]
        rig.clock.sleeps.clear()
        await rig.sup.reset()
        assert rig.clock.sleeps[0] == REBOOT_SETTLE_S
    assert rig.sup.iccid == ICCID  # read back after the reboot
    assert rig.board.modems["m1"].state == "ready"


async def test_a_hang_is_checked_on_the_clock(rig: Rig) -> None:
    """The modem stops answering: the liveness check's gap is slept on the injected clock (the
    modem comes back during it, so it is found alive and no reboot follows)."""
    modem = rig.bank.modems["m1"]
    gaps: list[float] = []

    def on_sleep(seconds: float) -> None:
        if seconds == LIVENESS_GAP_S:
            gaps.append(seconds)
            modem.hang(False)

    rig.clock.sleeps.clear()
    rig.clock.on_sleep = on_sleep
    modem.hang(True)
    await rig.until(lambda: bool(gaps), timeout=60.0)
    await rig.until(lambda: rig.sup.ready and rig.sup.iccid == ICCID)
    assert rig.clock.sleeps == [LIVENESS_GAP_S]  # found alive: no reboot, no retry wait
    assert rig.sup.sessions == 1  # the port was never given up


async def test_a_call_lasts_its_length_on_the_clock(rig: Rig) -> None:
    """``max_duration_s`` is talk time on the injected clock, and so is the duration reported."""
    async with rig.sup.lock:
        result = await rig.sup.call("+15550100123", 30.0)
    assert result.outcome == "completed"
    assert result.duration_s == 30
