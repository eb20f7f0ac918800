"""The stand-in of a gateway whose ledger cannot be opened at start, on a real mosquitto and a
real sd_notify socket: what the broker and systemd see while it waits, at the handover to the
daemon, and when the daemon it handed over to dies before connecting. (The whole path, from a
full or read-only disk to the daemon starting, is ``test_storage_full.py``'s, as root.)"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from simbank.config.models import (
    Config,
    GatewayConfig,
    ModemConfig,
    MqttConfig,
)
from simbank.contract import Topics
from simbank.daemon.standin import StandIn
from simbank.integrations.systemd import Notifier
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import RequestClient, StateWatcher

pytestmark = pytest.mark.integration


def _datagrams(sock: socket.socket) -> list[str]:
    got = []
    sock.setblocking(False)
    while True:
        try:
            got.append(sock.recv(4096).decode())
        except BlockingIOError:
            return got


async def test_the_stand_in_says_degraded_refuses_and_hands_over_without_offline(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    mqtt = MqttConfig(port=mosquitto.port, base_topic=base_topic)
    config = Config(
        gateway=GatewayConfig(id="gw1", state_dir=tmp_path / "state"),
        mqtt=mqtt,
        modems=[ModemConfig(id="m1", port="/dev/ttyUSB2"), ModemConfig(id="m2", port="/dev/x")],
    )
    topics = Topics(base_topic, "gw1")
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(tmp_path / "notify"))
    notifier = Notifier(str(tmp_path / "notify"), watchdog_usec="30000000")
    watcher = StateWatcher(mqtt, base_topic, f"w-{base_topic}", gateway="gw1")
    watching = asyncio.create_task(watcher.run())

    async def until(predicate: object) -> None:
        async with asyncio.timeout(20):
            while not predicate():  # type: ignore[operator]
                await asyncio.sleep(0.05)

    def state() -> dict[str, object]:
        return watcher.state.get(topics.bridge_state, {})

    standin = StandIn(config, notifier)
    closed = False
    try:
        standin.failing("disk_full", "database or disk is full")
        standin.start()
        await until(lambda: state().get("state") == "degraded")
        assert state()["reason"] == "disk_full"
        await until(lambda: watcher.state.get(topics.bridge_info, {}).get("state") == "degraded")
        for modem in ("m1", "m2"):
            await until(lambda m=modem: watcher.state.get(topics.modem(m), {}).get("state"))
            shown = watcher.state[topics.modem(modem)]
            assert shown["state"] == "offline" and "disk_full" in shown["reason"], shown
        async with RequestClient(mqtt, topics, f"c-{base_topic}") as client:
            for command, payload in (
                ("call", {"number": "+15550100190", "max_duration_s": 30}),
                ("status", {}),
            ):
                answer = await client.request(command, payload, timeout=10)
                assert answer.get("code") == "storage_unavailable", answer
                assert answer["detail"]["cause"] == "disk_full"
            # Malformed input still gets its own answer, not a crash.
            bad = await client.request("call", {"number": 5}, timeout=10)
            assert bad.get("code") == "validation_error", bad
        # A new cause updates the retained state (one spell: one storage_degraded).
        standin.failing("read_only", "attempt to write a readonly database")
        await until(lambda: state().get("reason") == "read_only")
        told = _datagrams(systemd)
        assert any(m.startswith("READY=1") for m in told), told

        await standin.close(recovered=True)
        closed = True
        await until(lambda: [e for e in watcher.events if e["type"] == "storage_recovered"])
        assert [e["type"] for e in watcher.events if e["type"].startswith("storage_")] == [
            "storage_degraded",
            "storage_recovered",
        ]
        # Handed over: no offline in between (the daemon publishes its own state next) ...
        await asyncio.sleep(0.3)
        assert state().get("state") == "degraded"
        # ... and systemd's watchdog heard from us at the handover.
        assert "WATCHDOG=1" in _datagrams(systemd)
        # The daemon died before it connected: the degraded state is taken back.
        await standin.say_offline()
        await until(lambda: state().get("state") == "offline")
    finally:
        if not closed:
            await standin.close(recovered=False)
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        systemd.close()
