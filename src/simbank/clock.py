"""The daemon's notion of time, injected: ``now()`` and ``sleep()`` (the simulator's ``SimClock``
has the same two). Code that decides on elapsed time takes a :class:`Clock`, so its tests can
run on a scripted clock instead of asserting wall-clock figures on a loaded machine."""

from __future__ import annotations

import asyncio
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time."""
        ...


class LoopClock:
    """The running event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
