"""The daemon's notion of time, injected: one :class:`Clock` with ``now()`` (calendar time),
``monotonic()`` (intervals), ``sleep()`` and ``real()`` (wall seconds a wait of the clock
takes). Code that decides on elapsed time takes a Clock, so its tests can run on a scripted
clock instead of asserting wall-clock figures on a loaded machine.

- :class:`SystemClock`: production; ``now()`` is the wall clock (epoch seconds: quotas, quiet
  hours and days are calendar things), ``monotonic()`` the steady one.
- :class:`ScaledClock`: a day in minutes against a simulator running at the same scale.
- :class:`LoopClock`: the event loop's own time (the systemd watchdog's pacing).
- :class:`ScriptedClock`: moves only when slept on: tests and the fuzz harness.

(The simulator has its own ``SimClock``: the modem's side of the wire keeps its own time.)

What is *not* on the Clock, on purpose: guards and pacing in wall-clock seconds (an AT
command's timeout, the SIM-ready and registration timeouts, the poll interval, the status
line every 5 s, the shutdown guard). A scaled clock must not shrink them to milliseconds: the
modem answers at its own pace whatever the test's scale.

Every wait of the daemon that stands for modem or network time (a retry gap, a call's length,
a SIM settling) goes through ``sleep()``, so a scaled clock scales all of them alike.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on this clock's scale (epoch seconds for the bank's clocks): for calendar
        decisions (days, quiet hours, when a quota frees up)."""
        ...

    def monotonic(self) -> float:
        """Seconds at this clock's rate on a steady scale (only differences mean anything):
        for intervals (a call's length, a retry window), which a wall-clock step (NTP
        setting the clock of a box without a battery-backed RTC) must not stretch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` of this clock's time."""
        ...

    def real(self, seconds: float) -> float:
        """Wall-clock seconds that ``seconds`` of this clock take (a margin kept in real time
        is ``clock seconds = real margin / real(1)``)."""
        ...


class LoopClock:
    """The running event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def real(self, seconds: float) -> float:
        return max(0.0, seconds)


class SystemClock:
    """The wall clock at its own pace: what production runs on."""

    scale = 1.0

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def real(self, seconds: float) -> float:
        """Wall-clock seconds that ``seconds`` of this clock take."""
        return max(0.0, seconds)


class ScaledClock:
    """Epoch time that runs ``scale`` times faster than the wall clock, from ``start``.

    ``ScaledClock(60, start=t0)`` makes a simulated hour pass in a real minute; every
    ``sleep()`` is divided by the same factor, so waits and timestamps stay consistent."""

    def __init__(self, scale: float, start: float | None = None) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._start = time.time() if start is None else start
        self._origin = time.monotonic()

    def now(self) -> float:
        return self._start + self.monotonic()

    def monotonic(self) -> float:
        return (time.monotonic() - self._origin) * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(self.real(seconds))

    def real(self, seconds: float) -> float:
        """Wall-clock seconds that ``seconds`` of this clock take."""
        return max(0.0, seconds) / self.scale


class ScriptedClock:
    """A clock that moves only when something sleeps on it (or by ``tick`` at each ``now()``):
    for tests and the fuzz harness, where no decision may depend on how fast the machine is.
    Every sleep is recorded in ``sleeps`` and handed to ``on_sleep``; it returns at once."""

    def __init__(self, start: float = 0.0, *, tick: float = 0.0) -> None:
        self.t = start
        self.tick = tick
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[float], None] | None = None

    def now(self) -> float:
        self.t += self.tick
        return self.t

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        await asyncio.sleep(0)

    def real(self, seconds: float) -> float:
        return max(0.0, seconds)
