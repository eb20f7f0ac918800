"""A real driver on a simulated modem over a real PTY (open_port + AtChannel + GenericDriver),
probed, set up and registered: the fixture of the driver-against-simulator tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from simbank.at.channel import AtChannel
from simbank.drivers.generic import GenericDriver
from simbank.drivers.port import open_port
from simbank.drivers.types import SimStatus
from simbank.simulator import Scenario, SimulatedBank


@contextlib.asynccontextmanager
async def driver_on_simulator(
    directory: Path, iccid: str, dialect: str = "generic"
) -> AsyncIterator[tuple[SimulatedBank, GenericDriver]]:
    """One modem of ``dialect`` holding SIM ``iccid`` (time scale 10), and a driver on it that
    has probed the modem, set up its URCs and capabilities, and seen it registered."""
    scenario = Scenario.model_validate(
        {
            "time_scale": 10.0,
            "modems": [
                {
                    "id": "m1",
                    "dialect": dialect,
                    "slots": [{"iccid": iccid, "registration_delay_s": 1.0}],
                }
            ],
        }
    )
    async with SimulatedBank(scenario, directory=directory) as bank:
        channel: AtChannel = await open_port(str(bank.modems["m1"].path), 115200, "m1")
        try:
            modem = GenericDriver(channel)
            await modem.probe()
            await modem.setup_urcs()
            await modem.probe_capabilities()
            assert await modem.wait_sim_ready(10.0) is SimStatus.READY
            async with asyncio.timeout(10.0):
                while not any(reg.registered for reg in await modem.registrations()):
                    await asyncio.sleep(0.1)
            yield bank, modem
        finally:
            channel.close()
            await channel.wait_closed()
