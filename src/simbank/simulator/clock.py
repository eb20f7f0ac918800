"""Simulated time: every simulated delay is divided by the scenario's time scale."""

from __future__ import annotations

import asyncio
import time


class SimClock:
    """Maps simulated seconds to wall-clock seconds (``time_scale`` simulated s per real s)."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._origin = time.monotonic()

    def now(self) -> float:
        """Simulated seconds since the clock was created."""
        return (time.monotonic() - self._origin) * self.time_scale

    def real(self, sim_seconds: float) -> float:
        """Wall-clock seconds that ``sim_seconds`` simulated seconds take."""
        return max(0.0, sim_seconds) / self.time_scale

    async def sleep(self, sim_seconds: float) -> None:
        """Sleep for ``sim_seconds`` of simulated time."""
        await asyncio.sleep(self.real(sim_seconds))
