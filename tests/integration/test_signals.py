"""simbankd as systemd drives it: SIGHUP reloads policies without dropping a call, SIGTERM
hangs up the call in progress, completes its booking, publishes offline and exits 0."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from bankrig import config_text, start_daemon, wait_ready

from simbank.bank.ledger import Ledger
from simbank.config.models import MqttConfig
from simbank.daemon.broker import PrivateMosquitto
from simbank.daemon.contract import Topics
from simbank.daemon.mqtt import RequestClient, StateWatcher
from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration


async def test_sighup_reloads_and_sigterm_stops_cleanly_mid_call(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    scenario = Scenario(
        timing=Timing(boot_s=0.5, sim_init_s=0.3, ring_s=0.2, talk_s=120),
        modems=[
            ModemSpec(
                id="m1",
                dialect="simcom",
                slots=[
                    SimSpec(iccid=make_iccid(950 + n), registration_delay_s=0.2) for n in (0, 1)
                ],
            )
        ],
    )
    async with SimulatedBank(scenario, directory=tmp_path / "ports") as bank:
        paths = {"m1": str(bank.modems["m1"].path)}
        config = tmp_path / "simbank.toml"
        config.write_text(config_text(tmp_path, mosquitto.port, base_topic, paths, 3))
        topics = Topics(base_topic, "gw1")
        mqtt = MqttConfig(port=mosquitto.port, base_topic=base_topic)
        watcher = StateWatcher(mqtt, base_topic, f"w-{base_topic}", gateway="gw1")
        watch_task = asyncio.create_task(watcher.run())
        daemon = start_daemon(config, tmp_path / "daemon.log")
        try:
            async with RequestClient(mqtt, topics, f"c-{base_topic}") as client:
                await wait_ready(watcher, topics)
                slot1, slot2 = (c.iccid for c in bank.modems["m1"].slots if c is not None)
                async with asyncio.timeout(20):  # the slot inventory is over: back on slot 1
                    while not (
                        topics.sim(slot2) in watcher.state
                        and watcher.state[topics.modem("m1")].get("iccid") == slot1
                        and watcher.state[topics.modem("m1")].get("state") == "ready"
                    ):
                        await asyncio.sleep(0.05)
                iccid = slot1
                call = asyncio.create_task(
                    client.request(
                        "call", {"number": "+15550100041", "max_duration_s": 60}, timeout=90
                    )
                )
                async with asyncio.timeout(20):
                    while bank.modems["m1"].call is None:
                        await asyncio.sleep(0.02)
                # SIGHUP with a new policy: the limits change, the call goes on.
                config.write_text(config_text(tmp_path, mosquitto.port, base_topic, paths, 7))
                daemon.send_signal(signal.SIGHUP)
                async with asyncio.timeout(10):
                    while (
                        watcher.state.get(topics.sim(iccid), {})
                        .get("limits", {})
                        .get("calls_per_hour")
                        != 7
                    ):
                        await asyncio.sleep(0.05)
                assert bank.modems["m1"].call is not None
                assert daemon.poll() is None
                # SIGTERM mid-call: hang up, complete the booking, say offline, exit 0.
                started = time.monotonic()
                daemon.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(daemon.wait, 30)
                took = time.monotonic() - started
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
        await asyncio.sleep(0.3)
        watch_task.cancel()
        await asyncio.gather(watch_task, return_exceptions=True)
        assert code == 0
        assert took < 30  # the unit's TimeoutStopSec
        assert bank.modems["m1"].call is None  # hung up, not left running
        assert watcher.state[topics.bridge_state] == {"state": "offline"}
        with Ledger.open(tmp_path / "state") as ledger:
            records = ledger.usage_records(iccid, 0)
        assert len(records) == 1
        assert records[0].completed  # the booking got its outcome on the way out...
        assert records[0].charged_s == 60  # ...and an unknown end is charged in full
        log = (tmp_path / "daemon.log").read_text()
        assert "reloaded" in log
        assert "call_aborted_on_stop" in log
