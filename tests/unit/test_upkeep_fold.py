"""The daemon's daily fold (``LedgerUpkeep.fold_now``) against a real ledger file: it folds
what time has really put past the horizon, and nothing more when the wall clock is stepped
ahead (a bad NTP server, a mistyped ``date``) — folded rows never come back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simbank.bank.usage import UsageKind
from simbank.clock import ScriptedClock
from simbank.config.models import Config, GatewayConfig
from simbank.config.storage import StorageConfig
from simbank.contract import Topics
from simbank.daemon.board import StatusBoard
from simbank.daemon.runtime import BankRuntime
from simbank.daemon.upkeep import LedgerUpkeep
from simbank.store.ledger import Ledger

ICCID = "89990100000000000021"
DAY = 86400.0
T0 = 1_780_000_000.0


class SteppedClock(ScriptedClock):
    """Time that runs (``t``, also the monotonic clock) and a wall clock that may be set
    ahead of it (``step``)."""

    step = 0.0

    def now(self) -> float:
        return super().now() + self.step


class Quiet:
    def set_retained(self, topic: str, payload: bytes) -> None:
        json.loads(payload)

    def publish(self, topic: str, payload: bytes) -> None:
        json.loads(payload)


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[BankRuntime]:
    config = Config(
        gateway=GatewayConfig(id="gw1", state_dir=tmp_path / "state"),
        storage=StorageConfig(retention_days=35),
    )
    ledger = Ledger.open(config.gateway.state_dir, durable=False)
    for day in range(200):  # a call a day for 200 days, up to T0
        at = T0 - day * DAY
        ledger.complete(
            ledger.book(ICCID, UsageKind.CALL, at, reserved_s=60), at + 60, "completed", 30
        )
    try:
        yield BankRuntime(
            config, ledger, StatusBoard(Quiet(), Topics("simbank", "gw1")), SteppedClock(T0)
        )
    finally:
        ledger.close()


def _rows(rt: BankRuntime) -> int:
    return len(rt.ledger.usage_records(ICCID, float("-inf")))


async def test_a_wall_clock_stepped_ahead_folds_nothing_it_should_not(rt: BankRuntime) -> None:
    upkeep = LedgerUpkeep.of(rt)
    assert isinstance(rt.clock, SteppedClock)
    rt.clock.step = 365 * DAY  # the box boots a year ahead
    before = rt.ledger.calls_booked(ICCID, float("-inf"))
    await upkeep.fold_now()
    # Folded only what is past the horizon from the ledger's own last day (plus a day): the
    # last 35 days (and the billing month's reach) are still there row by row.
    recent = rt.ledger.usage_records(ICCID, T0 - 34 * DAY)
    assert len(recent) == 35
    assert _rows(rt) < 200  # the old ones did fold
    assert rt.ledger.calls_booked(ICCID, float("-inf")) == before  # and are counted still


async def test_time_that_really_passes_is_folded(rt: BankRuntime) -> None:
    upkeep = LedgerUpkeep.of(rt)
    await upkeep.fold_now()
    kept = _rows(rt)
    assert 35 <= kept < 200
    assert isinstance(rt.clock, SteppedClock)
    await rt.clock.sleep(100 * DAY)  # a hundred days of running, wall and monotonic alike
    await upkeep.fold_now()
    # Every row is now past the horizon: only the newest stays (its id is never reused).
    assert _rows(rt) == 1 < kept
