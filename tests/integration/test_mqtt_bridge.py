"""The MQTT bridge against a real mosquitto: retained state, last will, broker restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from simbank.config.models import MqttConfig
from simbank.contract import Topics
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import MqttBridge, StateWatcher
from simbank.mqtt import bridge as bridge_module

pytestmark = pytest.mark.integration


def _cfg(broker: PrivateMosquitto) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, keepalive_s=5)


async def _retained(broker: PrivateMosquitto, base: str, quiet: float = 0.5) -> StateWatcher:
    watcher = StateWatcher(_cfg(broker), base, f"watch-{os.getpid()}-{id(base)}")
    await watcher.run(until_quiet_s=quiet)
    return watcher


async def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def _bridge(broker: PrivateMosquitto, topics: Topics) -> MqttBridge:
    return MqttBridge(_cfg(broker), topics, f"bridge-{topics.root}", info=lambda: b'{"v":1}')


async def test_retained_state_events_and_clean_offline(
    mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    topics = Topics(base_topic, "gw1")
    bridge = _bridge(mosquitto, topics)
    bridge.set_retained(topics.modem("m1"), b'{"id":"m1","state":"ready"}')
    events = StateWatcher(_cfg(mosquitto), base_topic, "ev-watch")
    async with asyncio.TaskGroup() as tg:
        watch_task = tg.create_task(events.run())
        await asyncio.sleep(0.3)
        run = tg.create_task(bridge.run())
        await asyncio.wait_for(bridge.wait_connected(), 10)
        bridge.publish(topics.bridge_event, b'{"type":"modem_online","modem":"m1"}')
        await _until(lambda: len(events.events) == 1)
        seen = await _retained(mosquitto, base_topic)
        assert seen.state[topics.bridge_state] == {"state": "online"}
        assert seen.state[topics.bridge_info] == {"v": 1}
        assert seen.state[topics.modem("m1")]["state"] == "ready"
        assert events.events[0]["type"] == "modem_online"
        # A later change replaces the retained value; an identical one publishes nothing.
        bridge.set_retained(topics.modem("m1"), b'{"id":"m1","state":"offline"}')
        await _until(lambda: events.state.get(topics.modem("m1"), {}).get("state") == "offline")
        bridge.stop()
        await run
        watch_task.cancel()
    seen = await _retained(mosquitto, base_topic)
    assert seen.state[topics.bridge_state] == {"state": "offline"}


async def test_last_will_when_the_daemon_is_killed(
    mosquitto: PrivateMosquitto, base_topic: str, tmp_path: Path
) -> None:
    script = tmp_path / "bridge.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio
            from simbank.config.models import MqttConfig
            from simbank.contract import Topics
            from simbank.mqtt import MqttBridge

            async def main():
                topics = Topics({base_topic!r}, "gw1")
                cfg = MqttConfig(host="127.0.0.1", port={mosquitto.port}, keepalive_s=5)
                bridge = MqttBridge(cfg, topics, "doomed", info=lambda: b"{{}}")
                task = asyncio.create_task(bridge.run())
                await bridge.wait_connected()
                print("connected", flush=True)
                await task

            asyncio.run(main())
            """
        )
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            while (line := await asyncio.to_thread(proc.stdout.readline)).strip() != "connected":
                assert line, "the bridge process ended before it connected"
        seen = await _retained(mosquitto, base_topic)
        assert seen.state[f"{base_topic}/gw1/bridge/state"] == {"state": "online"}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    await asyncio.sleep(0.3)
    seen = await _retained(mosquitto, base_topic)
    assert seen.state[f"{base_topic}/gw1/bridge/state"] == {"state": "offline"}


async def test_each_broker_restart_after_a_good_session_reconnects_at_once(
    own_mosquitto: PrivateMosquitto, base_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backoff grows while the broker stays away, and starts again from 0.5 s after a
    session that was up long enough: restart after restart, the bridge is back within ~1 s of
    the broker (before, the delay kept doubling over good sessions, up to 30 s)."""
    monkeypatch.setattr(bridge_module, "STABLE_SESSION_S", 1.0)
    topics = Topics(base_topic, "gw1")
    bridge = _bridge(own_mosquitto, topics)
    first_delays = []
    async with asyncio.TaskGroup() as tg:
        run = tg.create_task(bridge.run())
        await asyncio.wait_for(bridge.wait_connected(), 10)
        for restart in range(1, 7):
            await asyncio.sleep(1.2)  # a good session
            chosen_before = len(bridge.retry_delays)
            await own_mosquitto.astop()
            await _until(lambda: not bridge.connected)
            await own_mosquitto.astart()
            await _until(lambda n=restart: bridge.connected and bridge.connects == n + 1, 60)
            first_delays.append(bridge.retry_delays[chosen_before])
        bridge.stop()
        await run
    print("first retry delay after each broker restart (s):", [round(d, 2) for d in first_delays])
    # Each drop came after a good session, so each first retry is the shortest delay (0.5 s
    # ±20 % jitter); without the reset they doubled: 0.5, 1, 2, 4, 8, 16 s.
    assert all(0.4 <= d <= 0.6 for d in first_delays), first_delays


async def test_state_republished_after_broker_restart(
    own_mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    topics = Topics(base_topic, "gw1")
    bridge = _bridge(own_mosquitto, topics)
    bridge.set_retained(topics.modem("m1"), b'{"id":"m1"}')
    async with asyncio.TaskGroup() as tg:
        run = tg.create_task(bridge.run())
        await asyncio.wait_for(bridge.wait_connected(), 10)
        await own_mosquitto.astop()  # persistence is off: the broker forgets every retained message
        await _until(lambda: not bridge.connected)
        # The modems keep running while the broker is down: changes are accepted and kept.
        bridge.set_retained(topics.modem("m2"), b'{"id":"m2"}')
        bridge.publish(topics.bridge_event, b'{"type":"modem_online","modem":"m2"}')
        await own_mosquitto.astart()
        await _until(lambda: bridge.connected and bridge.connects == 2, timeout=20)
        await _until(lambda: bridge.stats()["queued_events"] == 0, timeout=10)
        seen = await _retained(own_mosquitto, base_topic)
        assert json.dumps(seen.state, sort_keys=True) == json.dumps(
            {
                topics.bridge_info: {"v": 1},
                topics.bridge_state: {"state": "online"},
                topics.modem("m1"): {"id": "m1"},
                topics.modem("m2"): {"id": "m2"},
            },
            sort_keys=True,
        )
        bridge.stop()
        await run
