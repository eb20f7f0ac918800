"""The SIM and gateway commands that need no modem, through the command table, against a real
ledger: the operator's state moves and the traffic switch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from simbank.clock import ScriptedClock
from simbank.config.models import Config, GatewayConfig
from simbank.contract import COMMANDS, Topics
from simbank.daemon.board import StatusBoard
from simbank.daemon.commands import Handlers
from simbank.daemon.router import Handler
from simbank.daemon.runtime import BankRuntime
from simbank.errors import Refused
from simbank.store.ledger import Ledger

ICCID = "89990100000000000013"
T0 = 1_780_000_000.0


class Recorder:
    def set_retained(self, topic: str, payload: bytes) -> None:
        pass

    def publish(self, topic: str, payload: bytes) -> None:
        pass


@pytest.fixture
async def table(tmp_path: Path) -> AsyncIterator[tuple[BankRuntime, dict[str, Handler]]]:
    config = Config(gateway=GatewayConfig(id="gw1", state_dir=tmp_path / "state"))
    ledger = Ledger.open(config.gateway.state_dir, durable=False)
    ledger.set_sim_state(ICCID, "available", T0)
    board = StatusBoard(Recorder(), Topics("simbank", "gw1"))
    rt = BankRuntime(config, ledger, board, ScriptedClock(T0, tick=1.0))
    try:
        yield rt, Handlers(rt).table()
    finally:
        ledger.close()


async def run(handlers: dict[str, Handler], command: str, **payload: Any) -> dict[str, Any]:
    return await handlers[command](COMMANDS[command].model_validate(payload))


async def test_disable_then_enable(table: tuple[BankRuntime, dict[str, Handler]]) -> None:
    rt, handlers = table
    assert await run(handlers, "sim/disable", iccid=ICCID) == {"iccid": ICCID, "state": "disabled"}
    assert rt.board.sims[ICCID].state == "disabled"
    with pytest.raises(Refused, match="disabled: nothing to release"):
        await run(handlers, "sim/release", iccid=ICCID, note="x")
    # In no modem, an enabled SIM is absent.
    assert await run(handlers, "sim/enable", iccid=ICCID) == {"iccid": ICCID, "state": "absent"}
    with pytest.raises(Refused, match="absent, not disabled") as caught:
        await run(handlers, "sim/enable", iccid=ICCID)
    assert caught.value.reason == "not_permitted"
    actions = [a.action for a in rt.ledger.audit_trail(ICCID)]
    assert actions == ["sim_disable", "sim_enable"]


async def test_release_a_blocked_sim(table: tuple[BankRuntime, dict[str, Handler]]) -> None:
    rt, handlers = table
    rt.ledger.set_sim_state(ICCID, "blocked", T0, reason="reject_cause")
    with pytest.raises(Refused, match="quarantined until released"):
        await run(handlers, "sim/disable", iccid=ICCID)
    answer = await run(handlers, "sim/release", iccid=ICCID, note="carrier confirmed")
    assert answer == {"iccid": ICCID, "was": "blocked", "state": "absent"}
    assert rt.ledger.sim_states()[ICCID].state == "available"
    report = await run(handlers, "sim/report", iccid=ICCID.lower() + "F")
    assert report["state"] == "absent" and report["reason"] == "released"
    assert [a["action"] for a in report["audit"]] == ["sim_release"]


async def test_unknown_sim_and_modem(table: tuple[BankRuntime, dict[str, Handler]]) -> None:
    _, handlers = table
    with pytest.raises(Refused) as caught:
        await run(handlers, "sim/disable", iccid="89990100000000000021")
    assert caught.value.reason == "unknown_sim"
    with pytest.raises(Refused) as caught:
        await run(handlers, "modem/reset", modem="m9")
    assert caught.value.reason == "unknown_modem"


async def test_pause_and_resume(table: tuple[BankRuntime, dict[str, Handler]]) -> None:
    rt, handlers = table
    assert await run(handlers, "traffic/pause", reason="audit") == {
        "paused": True,
        "reason": "audit",
    }
    status = await run(handlers, "status")
    assert status["traffic"]["paused"] and status["traffic"]["pause_reason"] == "audit"
    with pytest.raises(Refused) as caught:
        await run(handlers, "sms/send", number="+15550100", text="hi")
    assert caught.value.reason == "circuit_open"
    assert await run(handlers, "traffic/resume") == {"paused": False, "circuit_open": False}
    assert rt.paused_reason is None and not rt.traffic_stopped
