"""Metrics and Home Assistant discovery from a running daemon (not only their modules)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from bankrig import running

from simbank.config.models import HomeAssistantConfig, MetricsConfig
from simbank.mosquitto import PrivateMosquitto, free_port
from simbank.mqtt import StateWatcher
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration


async def _get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


async def _lint(exposition: str) -> None:
    """``promtool check metrics`` on the daemon's own /metrics (skipped without promtool)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return  # tests/integration/test_promtool.py says how to install it
    proc = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(exposition.encode()), 60)
    assert proc.returncode == 0, out.decode()
    assert out.decode().strip() == ""


async def test_metrics_and_discovery_follow_the_gateway(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    port = free_port()
    prefix = f"ha{base_topic}"
    scenario = Scenario(
        timing=Timing(boot_s=0.5, sim_init_s=0.3, ring_s=0.1, talk_s=30),
        modems=[
            ModemSpec(
                id="m1",
                dialect="huawei",
                slots=[
                    SimSpec(iccid=make_iccid(800), registration_delay_s=0.2),
                    SimSpec(iccid=make_iccid(801), registration_delay_s=0.2),
                ],
            )
        ],
    )
    async with running(
        tmp_path,
        mosquitto,
        base_topic,
        scenario,
        metrics=MetricsConfig(enabled=True, port=port),
        homeassistant=HomeAssistantConfig(enabled=True, prefix=prefix),
    ) as rig:
        await rig.inventory_done()
        await rig.until(rig.modems_ready)
        call = await rig.request("call", {"number": "+15550100031", "max_duration_s": 1})
        assert call["status"] == "ok", call
        status, body = await _get(port, "/metrics")
        assert status == 200
        assert 'simbank_modem_up{modem="m1"} 1.0' in body
        assert "simbank_mqtt_connected 1.0" in body
        assert 'simbank_requests_total{command="call",status="ok"} 1.0' in body
        count = next(
            line
            for line in body.splitlines()
            if line.startswith('simbank_at_command_seconds_count{modem="m1"}')
        )
        assert float(count.split()[-1]) > 10
        iccid = call["data"]["iccid"]
        assert f'simbank_sim_calls{{iccid="{iccid}",window="hour"}} 1.0' in body
        sim_state = rig.daemon.board.sims[iccid].state  # resting: the call used its quota
        assert f'simbank_sim_state{{iccid="{iccid}",state="{sim_state}"}} 1.0' in body
        outcome = call["data"]["outcome"]
        assert f'simbank_calls_total{{modem="m1",outcome="{outcome}"}} 1.0' in body
        answered = "1.0" if outcome == "completed" else "0.0"
        assert f'simbank_call_duration_seconds_count{{modem="m1"}} {answered}' in body
        assert 'simbank_modem_registration{modem="m1",state="home"} 1.0' in body
        assert 'simbank_modem_signal_dbm{modem="m1"}' in body
        assert "simbank_circuit_open 0.0" in body
        assert 'simbank_build_info{version="' in body
        assert "process_resident_memory_bytes" in body
        assert "_created" not in body
        await _lint(body)
        # The dialled number, in any form (a bare "555" can occur inside a timestamp).
        assert "5550100031" not in body
        assert (await _get(port, "/other"))[0] == 404
        # Home Assistant discovery: retained configs for the modem's device.
        watcher = StateWatcher(rig.daemon.config.mqtt, prefix, f"ha-{base_topic}")
        watcher._filter = f"{prefix}/#"  # the discovery tree, not a gateway's
        await watcher.run(until_quiet_s=0.5)
        configs = {t: v for t, v in watcher.state.items() if t.endswith("/config")}
        buttons = [v for t, v in configs.items() if "/button/simbank_gw1/modem-m1-" in t]
        assert {json.loads(b["payload_press"])["modem"] for b in buttons} == {"m1"}
        assert any(v.get("device", {}).get("model") == "ME909s-120" for v in configs.values())
