"""The daemon's capacity publisher against a real ledger and board: what it publishes (the
contract's payload, on the gateway's topic), only on a change or when the refresh is due, and
when it looks again by the clock (the next SIM to free, else the minute's refresh). The modem
is a stand-in holding the few attributes the planner's view reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from simbank.bank.usage import UsageKind
from simbank.clock import ScriptedClock
from simbank.config.models import Config, GatewayConfig, PolicyConfig
from simbank.contract import Capacity, RegistrationInfo, SignalInfo, Topics
from simbank.daemon.board import StatusBoard
from simbank.daemon.capacity import REFRESH_S, CapacityPublisher
from simbank.daemon.inventory import SimInfo
from simbank.daemon.runtime import BankRuntime
from simbank.store.ledger import Ledger

ICCID = "89990100000000000039"
T0 = 1_780_000_000.0
TOPIC = "simbank/gw1/capacity"


class Recorder:
    def __init__(self) -> None:
        self.retained: list[tuple[str, bytes]] = []

    def set_retained(self, topic: str, payload: bytes) -> None:
        self.retained.append((topic, payload))

    def publish(self, topic: str, payload: bytes, *args: Any, **kw: Any) -> None:
        pass

    def capacity(self) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p in self.retained if t == TOPIC]


@pytest.fixture
async def rig(
    tmp_path: Path,
) -> AsyncIterator[tuple[BankRuntime, CapacityPublisher, Recorder, Any]]:
    policy = PolicyConfig(quiet_hours=[], calls_per_hour=1, min_call_gap_s=0)
    config = Config(
        gateway=GatewayConfig(id="gw1", state_dir=tmp_path / "state"),
        policies={"default": policy},
    )
    ledger = Ledger.open(config.gateway.state_dir, durable=False)
    recorder = Recorder()
    board = StatusBoard(recorder, Topics("simbank", "gw1"))
    rt = BankRuntime(config, ledger, board, ScriptedClock(T0))
    modem = SimpleNamespace(
        ready=True, lock=asyncio.Lock(), usable_slots=1, active_slot=1, in_call=False
    )
    rt.supervisors = {"m1": modem}  # type: ignore[dict-item]
    rt.slots[("m1", 1)] = ICCID
    rt.sims[ICCID] = SimInfo(ICCID, modem="m1", slot=1)
    try:
        yield rt, CapacityPublisher(rt), recorder, modem
    finally:
        ledger.close()


async def test_publishes_the_summary_on_change_and_on_the_refresh(
    rig: tuple[BankRuntime, CapacityPublisher, Recorder, Any],
) -> None:
    rt, publisher, recorder, modem = rig
    assert publisher in rt.board.watchers  # every board change wakes it
    again = publisher.publish(T0)
    first = recorder.capacity()[-1]
    Capacity.model_validate(first)
    assert first["gateway"] == "gw1" and first["modems_ready"] == 1
    assert first["call"] == {"eligible": 1, "modems": 1, "next_free_at": None}
    assert again == T0 + REFRESH_S  # nothing frees by the clock: the refresh

    publisher.publish(T0 + 5)  # nothing changed: nothing published
    assert len(recorder.capacity()) == 1

    rt.ledger.book(ICCID, UsageKind.CALL, T0 + 10, reserved_s=0)  # its one call of the hour
    async with modem.lock:
        again = publisher.publish(T0 + 20)
    used = recorder.capacity()[-1]
    frees = datetime.fromtimestamp(T0 + 10 + 3600, UTC)
    assert used["call"]["eligible"] == 0 and used["modems_busy"] == 1
    assert datetime.fromisoformat(used["call"]["next_free_at"]) == frees
    assert used["sms"] == {"eligible": 1, "modems": 0, "next_free_at": None}  # m1 is busy
    assert again == T0 + 20 + REFRESH_S  # the refresh comes before the hour frees

    publisher.publish(T0 + 21)  # m1 free again: a change
    assert len(recorder.capacity()) == 3 and recorder.capacity()[-1]["modems_busy"] == 0
    publisher.publish(T0 + 20 + REFRESH_S)  # unchanged, not due: not published
    assert len(recorder.capacity()) == 3
    publisher.publish(T0 + 21 + REFRESH_S)  # unchanged, but due: published
    assert len(recorder.capacity()) == 4
    assert recorder.capacity()[-1]["computed_at"] != used["computed_at"]
    late = T0 + 10 + 3600 - 30  # the refresh is due, and the hour frees before the next
    assert publisher.publish(late) == T0 + 10 + 3600
    assert recorder.capacity()[-1]["call"]["eligible"] == 0

    rt.set_paused("maintenance")
    publisher.publish(T0 + 10 + 3600)
    stopped = recorder.capacity()[-1]
    assert stopped["traffic_stopped"] is True and stopped["call"]["eligible"] == 0
    rt.set_paused(None)
    publisher.publish(T0 + 10 + 3600)
    assert recorder.capacity()[-1]["call"] == {"eligible": 1, "modems": 1, "next_free_at": None}

    modem.ready = False
    publisher.publish(T0 + 10 + 3601)
    down = recorder.capacity()[-1]
    assert down["modems_ready"] == 0 and down["call"]["eligible"] == 0


async def test_a_modem_in_a_call_is_busy_for_calls_not_for_sms(
    rig: tuple[BankRuntime, CapacityPublisher, Recorder, Any],
) -> None:
    _, publisher, recorder, modem = rig
    before = publisher._signature()
    modem.in_call = True  # a call dialled past simbank (or an inbound one) is live
    assert publisher._signature() != before  # looked at once a second: the change is seen
    publisher.publish(T0)
    busy = recorder.capacity()[-1]
    assert busy["modems_busy"] == 1
    assert busy["call"] == {"eligible": 1, "modems": 0, "next_free_at": None}
    assert busy["sms"] == {"eligible": 1, "modems": 1, "next_free_at": None}  # SMS still goes


async def test_only_changes_that_matter_ask_for_a_new_summary(
    rig: tuple[BankRuntime, CapacityPublisher, Recorder, Any],
) -> None:
    """The board republishes a modem at every signal poll: on a big gateway, recomputing for
    each would take the loop every second. State, SIM, slot and registration count."""
    rt, publisher, _, _ = rig
    board = rt.board
    board.add_modem("m1", "/dev/ttyUSB2")
    board.update_modem("m1", state="ready", iccid=ICCID, active_slot=1)
    publisher._dirty.clear()
    board.update_modem("m1", signal=SignalInfo(rssi_dbm=-71, quality=3))
    board.event("sms_received", modem="m1")
    assert not publisher._dirty.is_set()
    board.update_modem("m1", state="switching")
    assert publisher._dirty.is_set()
    publisher._dirty.clear()
    board.update_modem("m1", registration=RegistrationInfo(state="denied"))
    assert publisher._dirty.is_set()
