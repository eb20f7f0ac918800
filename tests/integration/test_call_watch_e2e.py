"""Calls seen whoever dials them, end to end over PTYs and a real mosquitto.

``m1`` (two slots) and ``m2`` (one slot) are PBX devices. ``simbank.simulator.calls.start_call``
makes an outgoing call appear in ``AT+CLCC`` without any ``ATD`` on the daemon's port: it stands
for a call dialled on the modem's other port. In one run:

- a call nobody authorized is booked ``unauthorized`` at once (its reservation on the SIM's
  usage), announced, and settled with its talk time when it ends; ``sim/report`` counts it;
- while it is live, ``sim/select`` is refused ``busy``, the serving guard does not move the
  modem off its (now disabled) SIM, and an authorize without a modem goes to ``m2``;
- an authorize forced onto ``m1`` that needs a switch waits for the call to end, then switches;
- a call on ``m1`` while that authorization is open is matched to it, not booked again; a
  second one is not covered by it: booked unauthorized;
- while an incoming call the PBX answered is live on ``m1``, an authorize without a modem goes
  to ``m2`` although ``m1``'s SIM has more headroom;
- an authorize forced onto ``m2`` (no switch needed) while an answered incoming call is live
  there waits for its end: no call is placed beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bankrig import BankRig, make_config

from simbank.bank.usage import UsageKind
from simbank.clock import ScaledClock
from simbank.config.models import ComplianceConfig, PolicyConfig
from simbank.contract import Topics
from simbank.daemon.app import Daemon
from simbank.daemon.outbound_calls import unauthorized
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import RequestClient, StateWatcher
from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.calls import NORMAL_CLEARING, finish_call, start_call
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

FAST = Timing(
    boot_s=0.3, sim_init_s=0.2, ring_s=0.1, talk_s=600.0, rssi_period_s=5, incoming_ring_s=0.3
)
POLICY = PolicyConfig(
    quiet_hours=[],
    min_call_gap_s=0,
    calls_per_hour=8,
    call_seconds_per_day=100_000,
    calls_per_destination_per_day=10,
)
A1, A2, B = (make_iccid(n) for n in (1701, 1702, 1703))
DIALLED = "+15550100142"


def scenario() -> Scenario:
    def sim(iccid: str) -> SimSpec:
        return SimSpec(iccid=iccid, registration_delay_s=0.1)

    return Scenario(
        timing=FAST,
        modems=[
            ModemSpec(id="m1", dialect="quectel", slots=[sim(A1), sim(A2)]),  # type: ignore[arg-type]
            ModemSpec(id="m2", dialect="quectel-ec21", slots=[sim(B)]),  # type: ignore[arg-type]
        ],
    )


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, broker: PrivateMosquitto, base: str) -> AsyncIterator[BankRig]:
    async with SimulatedBank(scenario(), directory=tmp_path / "ports") as sim:
        cfg = make_config(
            tmp_path,
            broker,
            base,
            sim,
            policy=POLICY,
            compliance=ComplianceConfig(max_call_duration_s=600),
        )
        devices = {"m1": "quectel0", "m2": "quectel1"}
        cfg = cfg.model_copy(
            update={"modems": [m.model_copy(update={"device": devices[m.id]}) for m in cfg.modems]}
        )
        daemon = Daemon(cfg, clock=ScaledClock(1.0))
        for sup in daemon.supervisors.values():
            sup.call_watch.poll_s = sup.call_watch.live_poll_s = 0.2
            sup.calls_in.ring_gap_s = 1.0  # rings every 0.3 s: an answered call is seen soon
        # m2's SIM has made two calls this hour: less headroom than m1's first SIM.
        for _ in range(2):
            row = daemon.ledger.book(B, UsageKind.CALL, daemon.clock.now(), modem="m2")
            daemon.ledger.complete(row, daemon.clock.now(), "completed", 10)
        watcher = StateWatcher(cfg.mqtt, base, f"watch-{base}", gateway="gw1")
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(watcher.run(), name="test-watcher"),
            asyncio.create_task(daemon.run(stop), name="test-daemon"),
        ]
        try:
            await asyncio.wait_for(daemon.bridge.wait_connected(), 20)
            topics = Topics(base, "gw1")
            async with RequestClient(cfg.mqtt, topics, f"client-{base}") as client:
                bank_rig = BankRig(sim, daemon, watcher, client, topics)
                await bank_rig.until(bank_rig.modems_ready, 30)
                await bank_rig.inventory_done()
                yield bank_rig
        finally:
            stop.set()
            await asyncio.wait_for(tasks[1], 30)
            tasks[0].cancel()
            await asyncio.gather(tasks[0], return_exceptions=True)


async def test_calls_dialled_past_simbank(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with rig(tmp_path, mosquitto, base_topic) as r:
        gw = r.daemon.runtime
        m1 = r.bank.modems["m1"]
        sup = r.daemon.supervisors["m1"]
        await r.until(lambda: sup.active_slot == 1 and sup.iccid == A1)

        def rows(iccid: str) -> list[object]:
            return [u for u in gw.ledger.usage_records(iccid, 0) if u.kind is UsageKind.CALL]

        # 1. Dialled on the other port, authorized by nobody: booked at once, announced.
        start_call(m1, DIALLED)
        await r.until(lambda: r.events("unauthorized_call", modem="m1"))
        [event] = r.events("unauthorized_call", modem="m1")
        assert event["iccid"] == A1 and event["reserved_s"] == 600
        assert DIALLED not in str(event) and event["number"].endswith("42")
        [row] = gw.ledger.usage_records(A1, 0)
        assert unauthorized(row.transaction) and not row.completed
        await r.until(lambda: r.sim(A1).get("usage", {}).get("call_seconds_day") == 600)
        assert sup.in_call

        # 2. No slot switched under it: refused, the serving guard waits, others go elsewhere.
        selected = await r.request("sim/select", {"modem": "m1", "slot": 2})
        assert selected.get("code") == "busy", selected
        other = await r.request("call/authorize", {"number": "+15550100143"})
        assert other["status"] == "ok" and other["data"]["modem"] == "m2", other
        done = await r.request(
            "call/complete",
            {"booking": other["data"]["booking"], "duration_s": 3, "outcome": "completed"},
        )
        assert done["status"] == "ok", done
        disabled = await r.request("sim/disable", {"iccid": A1})
        assert disabled["status"] == "ok", disabled

        # 3. Forced onto m1, whose SIM is disabled now: the switch waits for the call's end.
        forced = asyncio.create_task(
            r.request("call/authorize", {"number": "+15550100144", "modem": "m1"}, timeout=60)
        )
        for _ in range(20):  # a second of the call still live: nothing moves
            await asyncio.sleep(0.05)
            assert not forced.done() and m1.active_slot == 1 and sup.in_call
        assert sup.serving.due() is None
        finish_call(m1, "NO CARRIER", NORMAL_CLEARING)
        answer = await forced
        assert answer["status"] == "ok", answer
        assert (answer["data"]["modem"], answer["data"]["iccid"]) == ("m1", A2)
        assert m1.active_slot == 2
        [row] = gw.ledger.usage_records(A1, 0)
        assert row.completed and row.outcome == "completed" and 1 <= row.duration_s < row.reserved_s
        report = await r.request("sim/report", {"iccid": A1})
        assert report["data"]["calls_unauthorized"] == 1, report
        assert report["data"]["usage"][0]["unauthorized"] is True
        await r.until(lambda: r.sim(A1).get("usage", {}).get("calls_hour") == 1)

        # 4. Dialled while that authorization is open: its booking, nothing booked again. A
        # second call on it is not covered: booked unauthorized.
        outbound = r.daemon.outbound
        start_call(m1, "+15550100144")
        await r.until(lambda: outbound._matched)
        assert len(rows(A2)) == 1 and len(r.events("unauthorized_call")) == 1
        finish_call(m1, "NO CARRIER", NORMAL_CLEARING)
        await r.until(lambda: not sup.in_call)
        start_call(m1, "+15550100144")
        await r.until(lambda: len(r.events("unauthorized_call")) == 2)
        assert len(rows(A2)) == 2 and not outbound._matched
        finish_call(m1, "NO CARRIER", NORMAL_CLEARING)
        await r.until(lambda: not sup.in_call)
        settled = await r.request(
            "call/complete",
            {"booking": answer["data"]["booking"], "duration_s": 4, "outcome": "completed"},
        )
        assert settled["status"] == "ok", settled
        assert len(rows(A2)) == 2 and len(r.events("unauthorized_call")) == 2

        # 5. A call the PBX answered on m1: an authorize without a modem goes to m2, although
        # m1's SIM (one call this hour) has more headroom than m2's (three).
        m1.incoming_call("+447700900456", rings=50)
        await r.until(lambda: sup.in_call)
        assert m1.answer()
        await r.until(lambda: any(c.active_since for c in sup.call_watch.tracker.calls.values()))
        pick = await r.request("call/authorize", {"number": "+15550100145"})
        assert pick["status"] == "ok" and pick["data"]["modem"] == "m2", pick
        assert len(r.events("unauthorized_call")) == 2  # an incoming call is never booked
        finish_call(m1, "NO CARRIER", NORMAL_CLEARING)
        await r.until(lambda: not sup.in_call)
        done = await r.request(
            "call/complete",
            {"booking": pick["data"]["booking"], "duration_s": 2, "outcome": "completed"},
        )
        assert done["status"] == "ok", done

        # 6. No call is placed beside a live one, even where no switch is needed: an authorize
        # forced onto m2 (one slot) while a call the PBX answered is up there waits for its end.
        m2, sup2 = r.bank.modems["m2"], r.daemon.supervisors["m2"]
        m2.incoming_call("+447700900457", rings=50)
        await r.until(lambda: sup2.in_call)
        assert m2.answer()
        await r.until(lambda: any(c.active_since for c in sup2.call_watch.tracker.calls.values()))
        beside = asyncio.create_task(
            r.request("call/authorize", {"number": "+15550100147", "modem": "m2"}, timeout=60)
        )
        for _ in range(10):  # half a second of the call still live: no answer
            await asyncio.sleep(0.05)
            assert not beside.done() and sup2.in_call
        finish_call(m2, "NO CARRIER", NORMAL_CLEARING)
        granted = await beside
        assert granted["status"] == "ok" and granted["data"]["modem"] == "m2", granted
        assert not sup2.in_call
