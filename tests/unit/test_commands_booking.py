"""Book before act, once for every chargeable command: ``booked()`` commits the booking before
the act, and completes it whatever the act does (an unknown end stays charged in full).

Against a real ledger (SQLite in a temporary directory) and a real runtime and board."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simbank.bank.usage import UsageKind
from simbank.clock import ScriptedClock
from simbank.config.models import Config, GatewayConfig
from simbank.contract import Topics
from simbank.daemon.board import StatusBoard
from simbank.daemon.commands import Handlers
from simbank.daemon.commands.booking import booked
from simbank.daemon.runtime import BankRuntime
from simbank.errors import AtTimeout, Refused
from simbank.store.ledger import Ledger

ICCID = "89990100000000000013"
NUMBER = "+15550100"
T0 = 1_780_000_000.0


class Recorder:
    def __init__(self) -> None:
        self.retained: list[tuple[str, dict[str, object]]] = []

    def set_retained(self, topic: str, payload: bytes) -> None:
        self.retained.append((topic, json.loads(payload)))

    def publish(self, topic: str, payload: bytes) -> None:
        pass


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[BankRuntime]:
    config = Config(gateway=GatewayConfig(id="gw1", state_dir=tmp_path / "state"))
    ledger = Ledger.open(config.gateway.state_dir, durable=False)
    board = StatusBoard(Recorder(), Topics("simbank", "gw1"))
    try:
        yield BankRuntime(config, ledger, board, ScriptedClock(T0, tick=1.0))
    finally:
        ledger.close()


def _calls_shown(rt: BankRuntime) -> int:
    return rt.board.sims[ICCID].usage.calls_day


async def test_a_call_is_booked_before_the_act_and_completed_after(runtime: BankRuntime) -> None:
    seen_during: list[tuple[bool, int]] = []
    async with booked(
        runtime, ICCID, UsageKind.CALL, modem="m1", transaction='"t1"', reserved_s=120,
        destination=NUMBER,
    ) as booking:  # fmt: skip
        (record,) = runtime.ledger.usage_records(ICCID, 0)
        seen_during.append((record.completed, _calls_shown(runtime)))
        booking.outcome, booking.duration_s = "completed", 42
    assert seen_during == [(False, 1)]  # committed, and shown, before the act
    (record,) = runtime.ledger.usage_records(ICCID, 0)
    assert (record.kind, record.reserved_s, record.modem, record.transaction) == (
        UsageKind.CALL, 120, "m1", '"t1"',
    )  # fmt: skip
    assert record.destination == runtime.ledger.hasher.hash(NUMBER)  # never in clear
    assert (record.outcome, record.duration_s) == ("completed", 42)
    assert record.completed_at is not None and record.completed_at > record.booked_at


@pytest.mark.parametrize(
    "error",
    [Refused("busy", "no"), AtTimeout("AT+CSQ"), RuntimeError("bug"), asyncio.CancelledError()],
)
async def test_an_act_that_fails_stays_charged_in_full(
    runtime: BankRuntime, error: BaseException
) -> None:
    with pytest.raises(type(error)):
        async with booked(
            runtime, ICCID, UsageKind.CALL, modem="m1", transaction=None, reserved_s=90,
            destination=NUMBER,
        ):  # fmt: skip
            raise error
    (record,) = runtime.ledger.usage_records(ICCID, 0)
    assert (record.outcome, record.duration_s) == ("unknown", 90)
    assert record.completed
    assert _calls_shown(runtime) == 1


@pytest.mark.parametrize(
    ("kind", "outcome"), [(UsageKind.SMS, "sent"), (UsageKind.USSD, "answered")]
)
async def test_sms_and_ussd_charge_no_seconds(
    runtime: BankRuntime, kind: UsageKind, outcome: str
) -> None:
    async with booked(runtime, ICCID, kind, modem="m2", transaction=None) as booking:
        booking.outcome = outcome
    with pytest.raises(AtTimeout):
        async with booked(runtime, ICCID, kind, modem="m2", transaction=None):
            raise AtTimeout("AT+CMGS")
    records = runtime.ledger.usage_records(ICCID, 0)
    assert [(r.kind, r.outcome, r.duration_s, r.reserved_s) for r in records] == [
        (kind, outcome, 0, 0), (kind, "unknown", 0, 0),
    ]  # fmt: skip


async def test_the_command_table_is_the_contracts(runtime: BankRuntime) -> None:
    assert sorted(Handlers(runtime).table()) == sorted(
        [
            "status", "call", "sms/send", "ussd", "sim/rotate", "sim/select", "sim/disable",
            "sim/enable", "sim/release", "sim/report", "modem/reset", "traffic/pause",
            "traffic/resume", "sms/list", "sms/ack", "balance/check", "call/authorize",
            "call/complete", "storage/backup", "storage/confirm",
        ]
    )  # fmt: skip


async def test_runtime_reads_time_from_its_clock(runtime: BankRuntime) -> None:
    runtime.set_paused("maintenance")
    stored = runtime.ledger.get_setting("traffic_paused")
    assert stored == {"paused": True, "reason": "maintenance"}
    assert runtime.clock.now() > T0
