"""Inbound calls end to end over PTYs and a real mosquitto.

One gateway, two single-slot simulated modems: ``m1`` gives caller id, ``m2`` refuses
``AT+CLIP=1`` and ``AT+CRC=1`` (its rings come as bare ``RING``). The policy changes between
the steps as a SIGHUP would change it:

- ``ignore``: a caller who gives up after two rings is one ``incoming_call`` event (``missed``,
  caller masked, the SIM's ICCID), not one per RING; a call the PBX answers is ``answered``,
  and while it is live the modem refuses to switch slots;
- ``reject`` after 2 rings: the modem hears ``AT+CHUP`` after the second ring;
- ``reject_unknown``: an allow-listed caller rings through, another and a withheld one are
  rejected; on ``m2`` (no caller id) every caller is unknown, and the modem works on;
- ``sim/report`` counts them (``calls_in``), the numbers never reach the ledger in clear.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bankrig import make_config

from simbank.clock import ScaledClock
from simbank.config.models import ComplianceConfig, Config, PolicyConfig
from simbank.contract import Topics
from simbank.daemon.app import Daemon
from simbank.daemon.inbound_calls import InboundCalls
from simbank.errors import Refused
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import RequestClient, StateWatcher
from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.modem import SimulatedModem
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=1.0, sim_init_s=0.3, ring_s=0.2, talk_s=30.0, ussd_s=0.2, incoming_ring_s=0.3)
FRIEND = "+447700900456"  # on the allow list (fictional, Ofcom drama range)
STRANGER = "+15550100123"  # fictional (555-01xx)


def scenario() -> Scenario:
    sims = [
        SimSpec.model_validate({"iccid": make_iccid(serial), "registration_delay_s": 0.2})
        for serial in (1501, 1502)
    ]
    return Scenario(
        time_scale=1.0,
        timing=FAST,
        modems=[
            ModemSpec(id="m1", dialect="quectel-ec21", slots=[sims[0]]),
            ModemSpec(id="m2", dialect="generic", slots=[sims[1]]),
        ],
    )


@dataclass
class Rig:
    bank: SimulatedBank
    daemon: Daemon
    watcher: StateWatcher
    client: RequestClient
    cfg: Config

    def calls(self, **match: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.watcher.events
            if e.get("type") == "incoming_call" and all(e.get(k) == v for k, v in match.items())
        ]

    def policy(self, **inbound: Any) -> None:
        """New policy, as a SIGHUP would load it."""
        policies = {"default": PolicyConfig(quiet_hours=[], **inbound)}
        self.daemon.runtime.reconfigure(policies, self.cfg.compliance)


async def until(predicate: Callable[[], Any], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path, broker: PrivateMosquitto, base_topic: str) -> AsyncIterator[Rig]:
    async with SimulatedBank(scenario(), directory=tmp_path / "ports") as bank:
        # m2 is a model without caller id: both commands unknown to it.
        bank.modems["m2"].refused_commands |= {"+CLIP", "+CRC"}
        cfg = make_config(
            tmp_path, broker, base_topic, bank, compliance=ComplianceConfig(default_region=None)
        )
        daemon = Daemon(cfg, clock=ScaledClock(1.0))
        for sup in daemon.supervisors.values():
            assert isinstance(sup.calls_in.handler, InboundCalls)  # the daemon wires it
            sup.calls_in.live_poll_s = 0.2  # fast timings: a hung-up call is seen at once
        topics = Topics(base_topic, "gw1")
        watcher = StateWatcher(cfg.mqtt, base_topic, f"watch-{base_topic}", gateway="gw1")
        stop = asyncio.Event()
        watch = asyncio.create_task(watcher.run(), name="test-watcher")
        task = asyncio.create_task(daemon.run(stop), name="test-daemon")
        try:
            await asyncio.wait_for(daemon.bridge.wait_connected(), 20)
            async with RequestClient(cfg.mqtt, topics, f"client-{base_topic}") as client:
                rig = Rig(bank, daemon, watcher, client, cfg)
                sups = daemon.runtime.supervisors
                await until(
                    lambda: all(
                        s.ready and s.iccid is not None and s.registration is not None
                        for s in sups.values()
                    )
                )
                yield rig
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)


async def one_call(
    rig: Rig, sim: SimulatedModem, number: str | None, give_up: int, **match: Any
) -> dict[str, Any]:
    """``number`` calls ``sim`` and gives up after ``give_up`` rings: the one event it makes."""
    before = len(rig.calls())
    sim.incoming_call(number, rings=give_up)
    await until(lambda: len(rig.calls()) > before)
    await until(lambda: sim.call is None)  # rejected, or the caller gave up
    (event,) = rig.calls()[before:]
    for key, value in match.items():
        assert event[key] == value, (key, event)
    return event


async def test_inbound_calls_are_announced_once_rejected_per_policy_and_reported(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    allow = tmp_path / "allow.txt"
    allow.write_text(f"# who may ring through\n{FRIEND}\n")
    async with gateway(tmp_path, mosquitto, base_topic) as rig:
        m1, m2 = rig.bank.modems["m1"], rig.bank.modems["m2"]
        sup1 = rig.daemon.runtime.supervisors["m1"]
        iccid1, iccid2 = sup1.iccid, rig.daemon.runtime.supervisors["m2"].iccid
        assert iccid1 == make_iccid(1501) and iccid2 == make_iccid(1502)
        assert m1.settings.clip == 1 and m1.settings.crc == 1
        assert m2.settings.clip == 0  # refused: the modem works on without caller id

        # ignore (the default): two rings, the caller gives up → one event, missed.
        event = await one_call(
            rig, m1, STRANGER, 2, modem="m1", iccid=iccid1, outcome="missed", action="ring"
        )
        assert event["rings"] == 2 and event["withheld"] is False
        assert event["caller"] != STRANGER and event["caller"].endswith("23")
        assert m1.hangups == []

        # ... the PBX answers: answered, and no switch while the call is live.
        m1.incoming_call(FRIEND, rings=20)
        # Two rings: the gap after which "the rings stopped" is learnt from them.
        await until(lambda: sup1.calls_in.call is not None and sup1.calls_in.call.rings >= 2)
        assert m1.answer()
        await until(lambda: len(rig.calls(outcome="answered")) == 1)
        assert sup1.calls_in.busy
        async with sup1.lock:
            with pytest.raises(Refused) as refused:
                await sup1.switch_to(1, sim_ready_timeout_s=5, registration_timeout_s=5)
        assert refused.value.reason == "busy"
        m1.call = None  # the caller hangs up (the simulator's talk time is long)
        await until(lambda: not sup1.calls_in.busy)

        # reject after 2 rings: AT+CHUP after the second.
        rig.policy(inbound_action="reject", inbound_reject_after_rings=2)
        await one_call(rig, m1, STRANGER, 6, outcome="rejected", action="reject", rings=2)
        assert m1.hangups == ["AT+CHUP"]

        # reject_unknown: the friend rings through, a stranger and a withheld caller do not.
        rig.policy(inbound_action="reject_unknown", inbound_allow_file=allow)
        await one_call(rig, m1, FRIEND, 2, outcome="missed", reason="allow_listed", rings=2)
        await one_call(rig, m1, STRANGER, 6, outcome="rejected", reason="not_allow_listed")
        withheld = await one_call(rig, m1, None, 6, outcome="rejected", rings=1)
        assert withheld["caller"] == "withheld" and withheld["withheld"] is True
        assert m1.hangups == ["AT+CHUP"] * 3

        # m2 has no caller id: everyone is unknown there, rejected after one ring.
        blind = await one_call(rig, m2, FRIEND, 6, iccid=iccid2, outcome="rejected", rings=1)
        assert blind["caller"] == "unknown"
        assert m2.hangups == ["AT+CHUP"]

        report = await rig.client.request("sim/report", {"iccid": iccid1})
        assert report["status"] == "ok", report
        calls_in = report["data"]["calls_in"]
        assert (calls_in["answered"], calls_in["missed"], calls_in["rejected"]) == (1, 2, 3)
        recent = calls_in["recent"]
        assert [c["outcome"] for c in recent] == [
            "rejected",
            "rejected",
            "missed",
            "rejected",
            "answered",
        ]
        assert recent[0]["caller"] == "withheld" and recent[1]["caller"].endswith("23")
        assert all(STRANGER not in str(c) for c in recent)
        # Inbound calls are not usage: nothing was booked against the outbound quotas.
        assert report["data"]["usage"] == []

        # With show_sms_sender the live event shows the caller; the ledger still keeps only
        # its hash and the masked form (checked in the file below).
        shown = rig.cfg.compliance.model_copy(update={"show_sms_sender": True})
        rig.daemon.runtime.reconfigure({"default": PolicyConfig(quiet_hours=[])}, shown)
        await one_call(rig, m1, STRANGER, 1, outcome="missed", caller=STRANGER)
    ledger = (tmp_path / "state" / "ledger.sqlite3").read_bytes()
    assert b"15550100123" not in ledger and b"447700900456" not in ledger
