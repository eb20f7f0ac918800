"""Idempotent transactions across a crash: the router against a real ledger file.

A request that changes something is marked started in the ledger before it acts. A "crash"
here is the handler's task cancelled mid-way and a fresh router (a new daemon life) opened on
the same file: the retry must be answered ``interrupted`` without running the handler again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simbank.bank.usage import UsageKind
from simbank.clock import ScriptedClock
from simbank.contract import Request, Topics
from simbank.daemon.router import RequestRouter, booking_key
from simbank.store.ledger import Ledger

ICCID = "89990100000000008008"
T0 = 1_780_000_000.0
CALL = {"number": "+15550100011", "max_duration_s": 40}


class Sink:
    """The router's publisher: answers are read from ``process``'s return value here."""

    def publish(self, topic: str, payload: bytes, correlation_data: bytes | None = None) -> None:
        return None


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def ledger(state_dir: Path) -> Iterator[Ledger]:
    opened = Ledger.open(state_dir)
    yield opened
    opened.close()


class Calls:
    """A ``call`` handler that books like the real one and waits until released."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.runs = 0
        self.started_seen: list[float | None] = []
        self.release = asyncio.Event()

    async def __call__(self, req: Request) -> dict[str, Any]:
        self.runs += 1
        key = json.dumps(req.transaction, sort_keys=True, separators=(",", ":"))
        self.started_seen.append(self.ledger.transaction_started("call", key))
        txn = booking_key(req.transaction)
        self.ledger.book(ICCID, UsageKind.CALL, T0, reserved_s=40, transaction=txn)
        await self.release.wait()
        return {"outcome": "completed"}


def router(ledger: Ledger, handler: Any) -> RequestRouter:
    return RequestRouter(Topics("t", "gw1"), Sink(), {"call": handler}, ledger, ScriptedClock(T0))


def payload(transaction: Any) -> bytes:
    return json.dumps({**CALL, "transaction": transaction}).encode()


async def test_the_mark_is_on_disk_before_the_handler_acts_and_cleared_with_the_answer(
    ledger: Ledger,
) -> None:
    calls = Calls(ledger)
    calls.release.set()
    answer = json.loads(await router(ledger, calls).process("call", payload("t1")))
    assert answer["status"] == "ok"
    assert calls.started_seen == [T0]
    assert ledger.transaction_started("call", '"t1"') is None
    assert ledger.find_response("call", '"t1"') is not None


async def test_a_retry_after_a_crash_is_interrupted_and_not_run_again(
    ledger: Ledger, state_dir: Path
) -> None:
    transaction = {"job": 7, "try": "a"}
    calls = Calls(ledger)
    first_life = asyncio.create_task(router(ledger, calls).process("call", payload(transaction)))
    while calls.runs == 0:
        await asyncio.sleep(0)
    first_life.cancel()  # the daemon dies mid-call: no response is ever stored
    await asyncio.gather(first_life, return_exceptions=True)

    with Ledger.open(state_dir) as reopened:  # the next life
        again = Calls(reopened)
        second_life = router(reopened, again)
        raw = await second_life.process("call", payload(transaction))
        answer = json.loads(raw)
        assert again.runs == 0
        assert answer["status"] == "error" and answer["code"] == "interrupted"
        assert answer["transaction"] == transaction
        (booking,) = answer["detail"]["bookings"]
        assert booking["kind"] == "call" and booking["iccid"] == ICCID
        assert booking["outcome"] is None and booking["charged"] == "in full"
        assert booking["charged_s"] == 40
        # Stored like any answer: the same again, and the mark is gone.
        assert await second_life.process("call", payload(transaction)) == raw
        assert reopened.transaction_started("call", '{"job":7,"try":"a"}') is None
        # Another transaction runs.
        again.release.set()
        fresh = json.loads(await second_life.process("call", payload("t-new")))
        assert fresh["status"] == "ok" and again.runs == 1


async def test_in_one_life_a_repeat_waits_for_the_first_and_does_not_run_twice(
    ledger: Ledger,
) -> None:
    calls = Calls(ledger)
    live = router(ledger, calls)
    first = asyncio.create_task(live.process("call", payload("t1")))
    while calls.runs == 0:
        await asyncio.sleep(0)
    second = asyncio.create_task(live.process("call", payload("t1")))
    await asyncio.sleep(0.01)
    calls.release.set()
    assert await first == await second
    assert calls.runs == 1


async def test_a_crashing_handler_answers_once_and_is_not_run_again(ledger: Ledger) -> None:
    runs = 0

    async def broken(_req: Request) -> dict[str, Any]:
        nonlocal runs
        runs += 1
        raise RuntimeError("bug")

    live = router(ledger, broken)
    answer = json.loads(await live.process("call", payload("t1")))
    assert answer["code"] == "modem_error" and answer["transaction"] == "t1"
    assert json.loads(await live.process("call", payload("t1"))) == answer
    assert runs == 1


async def test_without_a_transaction_nothing_is_marked(ledger: Ledger) -> None:
    calls = Calls(ledger)
    calls.release.set()
    live = router(ledger, calls)
    body = json.dumps(CALL).encode()
    assert json.loads(await live.process("call", body))["status"] == "ok"
    assert json.loads(await live.process("call", body))["status"] == "ok"
    assert calls.runs == 2
