"""``call/complete`` and the expiry of authorizations against a real ledger, as a restart finds
them (no modem needed): left open and expired meanwhile, booked but never listed, completed in
an earlier run, unknown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simbank.bank.usage import UsageKind
from simbank.clock import ScriptedClock
from simbank.config.models import Config, GatewayConfig
from simbank.contract import COMMANDS, Topics
from simbank.daemon.board import StatusBoard
from simbank.daemon.commands import Handlers
from simbank.daemon.commands.pbx import OPEN_KEY, TXN_PREFIX
from simbank.daemon.runtime import BankRuntime
from simbank.errors import Refused
from simbank.store.ledger import Ledger

ICCID = "89990100000000000021"
T0 = 1_780_000_000.0


class Recorder:
    def set_retained(self, topic: str, payload: bytes) -> None:
        pass

    def publish(self, topic: str, payload: bytes) -> None:
        pass


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[BankRuntime, Handlers, ScriptedClock]]:
    config = Config(gateway=GatewayConfig(id="gw1", state_dir=tmp_path / "state"))
    ledger = Ledger.open(config.gateway.state_dir, durable=False)
    ledger.set_sim_state(ICCID, "available", T0)
    board = StatusBoard(Recorder(), Topics("simbank", "gw1"))
    clock = ScriptedClock(T0)
    rt = BankRuntime(config, ledger, board, clock)
    try:
        yield rt, Handlers(rt), clock
    finally:
        ledger.close()


def left_open(rt: BankRuntime, booking: str, reserved_s: int, *, listed: bool) -> int:
    """What a previous run left: the booked row, and (``listed``) its entry in the settings."""
    row = rt.ledger.book(
        ICCID,
        UsageKind.CALL,
        T0,
        reserved_s=reserved_s,
        modem="m1",
        transaction=TXN_PREFIX + booking,
    )
    if listed:
        entry = {
            "booking": booking,
            "row": row,
            "modem": "m1",
            "iccid": ICCID,
            "reserved_s": reserved_s,
            "booked_at": T0,
            "expires_at": T0 + reserved_s + 120,
            "destination": None,
        }
        rt.ledger.put_setting(OPEN_KEY, {"open": [entry]}, T0)
    return row


async def complete(h: Handlers, booking: str, **extra: Any) -> dict[str, Any]:
    payload = {"booking": booking, "duration_s": 30, "outcome": "completed", **extra}
    return await h.pbx.complete(COMMANDS["call/complete"].model_validate(payload))


def charged(rt: BankRuntime, row: int) -> tuple[str | None, int]:
    record = next(r for r in rt.ledger.usage_records(ICCID, 0) if r.id == row)
    return record.outcome, record.charged_s


async def test_expired_while_down_is_settled_as_used(
    gateway: tuple[BankRuntime, Handlers, ScriptedClock],
) -> None:
    rt, h, clock = gateway
    row = left_open(rt, "expiredbooking1", 60, listed=True)
    clock.t = T0 + 10
    await h.pbx.restore()
    assert "expiredbooking1" in h.pbx.open
    assert h.pbx.expire_due() == 0  # not yet
    assert charged(rt, row) == (None, 60)  # open: counted in full
    clock.t = T0 + 60 + 120
    assert h.pbx.expire_due() == 1
    assert charged(rt, row) == ("unknown", 60)
    assert not h.pbx.open and rt.ledger.get_setting(OPEN_KEY) == {"open": []}
    for _ in range(2):  # and so it stays
        with pytest.raises(Refused) as refused:
            await complete(h, "expiredbooking1")
        assert refused.value.reason == "unknown_booking" and refused.value.data["expired"]


async def test_booked_but_never_listed_still_completes(
    gateway: tuple[BankRuntime, Handlers, ScriptedClock],
) -> None:
    rt, h, _ = gateway
    row = left_open(rt, "unlistedbooking", 300, listed=False)
    await h.pbx.restore()
    assert not h.pbx.open
    first = await complete(h, "unlistedbooking", outcome="busy", duration_s=0)
    assert (first["outcome"], first["duration_s"], first["iccid"]) == ("busy", 0, ICCID)
    assert charged(rt, row) == ("busy", 0)
    assert await complete(h, "unlistedbooking", duration_s=99) == first


async def test_completed_in_an_earlier_run_answers_from_the_ledger(
    gateway: tuple[BankRuntime, Handlers, ScriptedClock],
) -> None:
    rt, h, _ = gateway
    row = left_open(rt, "donebooking0001", 300, listed=False)
    rt.ledger.complete(row, T0 + 50, "completed", 41)
    answer = await complete(h, "donebooking0001", duration_s=5, outcome="failed", cause=21)
    assert (answer["outcome"], answer["duration_s"], answer["cause"]) == ("completed", 41, None)
    assert charged(rt, row) == ("completed", 41)


async def test_completed_but_still_listed_when_the_daemon_died(
    gateway: tuple[BankRuntime, Handlers, ScriptedClock],
) -> None:
    """The row was completed, then the daemon died before it rewrote the open list: the next
    run neither holds the modem for it nor fails on it (it used to raise LedgerError in the
    expiry task, which stopped the daemon at every start)."""
    rt, h, clock = gateway
    row = left_open(rt, "crashedbooking1", 60, listed=True)
    rt.ledger.complete(row, T0 + 30, "completed", 25)
    await h.pbx.restore()
    assert not h.pbx.open
    assert rt.ledger.get_setting(OPEN_KEY) == {"open": []}
    answer = await complete(h, "crashedbooking1")
    assert (answer["outcome"], answer["duration_s"]) == ("completed", 25)
    clock.t = T0 + 1000
    assert h.pbx.expire_due() == 0
    assert charged(rt, row) == ("completed", 25)


async def test_a_row_completed_behind_an_open_entry_answers_its_result(
    gateway: tuple[BankRuntime, Handlers, ScriptedClock],
) -> None:
    """Listed open in this run while its row is already completed: complete and expiry
    answer from the row, they do not raise."""
    rt, h, clock = gateway
    row = left_open(rt, "crashedbooking2", 60, listed=True)
    await h.pbx.restore()
    assert "crashedbooking2" in h.pbx.open
    rt.ledger.complete(row, T0 + 30, "completed", 25)
    clock.t = T0 + 1000
    assert h.pbx.expire_due() == 1  # settled from the row, no LedgerError
    assert not h.pbx.open
    assert charged(rt, row) == ("completed", 25)


async def test_unknown_booking(gateway: tuple[BankRuntime, Handlers, ScriptedClock]) -> None:
    _, h, _ = gateway
    with pytest.raises(Refused) as refused:
        await complete(h, "neverbooked0000")
    assert refused.value.reason == "unknown_booking"
    assert "expired" not in refused.value.data


@pytest.mark.parametrize(
    "payload",
    [
        {"booking": "short", "duration_s": 1, "outcome": "completed"},
        {"booking": "validbooking01", "duration_s": -1, "outcome": "completed"},
        {"booking": "validbooking01", "duration_s": 1, "outcome": "hung_up"},
        {"booking": "validbooking01", "duration_s": 1, "outcome": "failed", "cause": 256},
        {"booking": "valid/booking01", "duration_s": 1, "outcome": "completed"},
    ],
)
def test_complete_requests_are_validated(payload: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        COMMANDS["call/complete"].model_validate(payload)
