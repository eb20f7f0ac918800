"""The supervisor's reconnect waits go through the injected clock (never a bare sleep), and
its reconnect policy counts failures as the modem's published state needs.

A scripted clock: time moves only when the supervisor sleeps on it, so nothing here depends
on how fast the machine is.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from simbank.clock import ScriptedClock
from simbank.config.models import ModemConfig
from simbank.contract import Topics
from simbank.daemon.board import StatusBoard
from simbank.daemon.modem.reconnect import ABSENT_BACKOFF_MAX_S, FAILED_BACKOFF_MAX_S, Reconnect
from simbank.daemon.modem.supervisor import ModemSupervisor


class _Published:
    def set_retained(self, topic: str, payload: bytes) -> None:
        pass

    def publish(self, topic: str, payload: bytes) -> None:
        pass


async def test_retry_waits_are_slept_on_the_injected_clock(tmp_path: Path) -> None:
    """A modem whose port is missing is looked for again after each backoff delay, and every
    one of those waits is a sleep of the injected clock, of the delay the policy chose."""
    clock = ScriptedClock(1_700_000_000.0)
    cfg = ModemConfig(id="m1", port=str(tmp_path / "ttyUSB-gone"), slots=1)
    board = StatusBoard(_Published(), Topics("simbank", "gw"))
    sup = ModemSupervisor(cfg, board, poll_interval_s=3600.0, clock=clock)
    enough = asyncio.Event()
    clock.on_sleep = lambda _s: enough.set() if len(clock.sleeps) >= 8 else None
    task = asyncio.create_task(sup.run(), name="supervisor-under-test")
    try:
        await enough.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert clock.sleeps[:8] == list(sup.retry_delays)[:8]
    assert board.modems["m1"].state == "absent"
    assert sup.failures == 0  # an unplugged modem is away, not failing
    assert all(0 < d <= ABSENT_BACKOFF_MAX_S * 1.2 for d in clock.sleeps)


@pytest.mark.parametrize(
    ("reasons", "failures", "failed"),
    [
        (["open_failed"], 1, False),
        (["open_failed", "open_failed"], 2, True),
        (["open_failed", "timeout"], 1, False),  # another failure starts its own count
        (["timeout", "timeout", "timeout"], 3, True),
        (["timeout", "timeout", "session_ended"], 0, False),
        (["timeout", "timeout", "port_missing"], 0, False),
        (["port_missing", "port_missing"], 0, False),
    ],
)
def test_reconnect_counts_the_same_failure_in_a_row(
    reasons: list[str], failures: int, failed: bool
) -> None:
    policy = Reconnect()
    for reason in reasons:
        policy.session_ended(reason, stable=False)
    assert (policy.failures, policy.failed) == (failures, failed)
    assert len(policy.retry_delays) == len(reasons)


def test_a_stable_session_starts_the_count_and_the_backoff_again() -> None:
    policy = Reconnect()
    grown = [policy.session_ended("timeout", stable=False) for _ in range(12)]
    assert max(grown) <= FAILED_BACKOFF_MAX_S * 1.2
    assert grown[-1] > 60  # minutes, not seconds, for a modem that keeps failing
    first = policy.session_ended("timeout", stable=True)
    assert policy.failures == 0
    assert first <= 0.5 * 1.2
    assert policy.failure_reason == "timeout"
