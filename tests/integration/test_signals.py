"""simbankd as systemd drives it: SIGHUP reloads policies without dropping a call, SIGTERM
hangs up the call in progress, completes its booking, publishes offline and exits 0."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from bankrig import daemon_process, one_modem

from simbank.mosquitto import PrivateMosquitto
from simbank.store.ledger import Ledger

pytestmark = pytest.mark.integration


async def test_sighup_reloads_and_sigterm_stops_cleanly_mid_call(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    scenario = one_modem("simcom", 950, talk_s=120)
    async with daemon_process(tmp_path, mosquitto, base_topic, scenario) as rig:
        await rig.ready()
        iccid, _ = rig.slots
        daemon = rig.process
        assert daemon is not None
        call = asyncio.create_task(
            rig.client.request(
                "call", {"number": "+15550100041", "max_duration_s": 600}, timeout=700
            )
        )
        await rig.call_in_progress()
        # SIGHUP with a new policy: the limits change, the call goes on.
        rig.write_config(calls_per_hour=7)
        daemon.send_signal(signal.SIGHUP)
        sim_topic = rig.topics.sim(iccid)
        async with asyncio.timeout(10):
            while rig.watcher.state.get(sim_topic, {}).get("limits", {}).get("calls_per_hour") != 7:
                await asyncio.sleep(0.05)
        assert rig.bank.modems["m1"].call is not None
        assert daemon.poll() is None
        # SIGTERM mid-call: hang up, complete the booking, say offline, exit 0.
        # A 600 s call: the daemon hangs it up rather than waiting for it (the 120 s is a hang
        # guard, not a speed figure).
        daemon.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(daemon.wait, 120)
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)
        await asyncio.sleep(0.3)
        assert code == 0
        assert rig.bank.modems["m1"].call is None  # hung up, not left running
        assert rig.watcher.state[rig.topics.bridge_state] == {"state": "offline"}
    with Ledger.open(tmp_path / "state") as ledger:
        records = ledger.usage_records(iccid, 0)
    assert len(records) == 1
    assert records[0].completed  # the booking got its outcome on the way out...
    assert records[0].charged_s == 600  # ...and an unknown end is charged in full
    log = (tmp_path / "daemon.log").read_text()
    assert "reloaded" in log
    assert "call_aborted_on_stop" in log
