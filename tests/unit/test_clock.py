"""The injected clocks: a scaled clock's waits and readings agree, intervals ignore the epoch,
and the scripted clock moves only when told."""

from __future__ import annotations

import pytest

from simbank.clock import Clock, LoopClock, ScaledClock, ScriptedClock, SystemClock


@pytest.mark.parametrize("scale", [1.0, 60.0, 1800.0])
def test_a_scaled_clock_waits_the_real_share_of_its_seconds(scale: float) -> None:
    clock = ScaledClock(scale, start=1_700_000_000.0)
    assert clock.real(scale * 2) == pytest.approx(2.0)
    assert clock.real(-5) == 0.0
    assert clock.now() >= 1_700_000_000.0
    # Intervals are on a steady scale of the clock's own rate, whatever the epoch start.
    assert 0.0 <= clock.monotonic() < clock.now() - 1_600_000_000.0


def test_a_scaled_clock_refuses_a_scale_that_cannot_run() -> None:
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0)


async def test_scaled_sleep_advances_the_clock_by_at_least_what_was_asked() -> None:
    clock = ScaledClock(1000.0)
    before = clock.monotonic()
    await clock.sleep(50.0)  # 50 ms of real time
    assert clock.monotonic() - before >= 50.0


async def test_the_scripted_clock_moves_only_when_slept_on_or_ticked() -> None:
    clock = ScriptedClock(100.0)
    heard: list[float] = []
    clock.on_sleep = heard.append
    assert (clock.now(), clock.now(), clock.monotonic()) == (100.0, 100.0, 100.0)
    await clock.sleep(2.5)
    await clock.sleep(-1.0)
    assert (clock.now(), clock.sleeps, heard) == (102.5, [2.5, -1.0], [2.5, -1.0])
    ticking = ScriptedClock(0.0, tick=1.0)
    assert [ticking.now() for _ in range(3)] == [1.0, 2.0, 3.0]
    assert ticking.monotonic() == 3.0


async def test_every_clock_completes_the_protocol() -> None:
    clocks: list[Clock] = [SystemClock(), ScaledClock(2.0), LoopClock(), ScriptedClock()]
    for clock in clocks:
        assert clock.real(1.0) > 0
        await clock.sleep(0)
        assert clock.monotonic() <= clock.monotonic()
