"""Discovery through a real mosquitto: retained under the prefix, re-sent on HA's birth."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from simbank.config.models import MqttConfig
from simbank.contract import COMMANDS, ModemState, Topics
from simbank.integrations.homeassistant import birth_topic, discovery_messages, is_birth
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import Inbound, MqttBridge, StateWatcher

pytestmark = pytest.mark.integration

ICCID = "8986001234567890123"


def _cfg(broker: PrivateMosquitto) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, keepalive_s=5)


def _modems() -> list[ModemState | tuple[str, str | None, str | None]]:
    return [
        ModemState(
            id="m1",
            port="/dev/ttyUSB2",
            state="ready",
            model="EC25",
            manufacturer="Quectel",
            iccid=ICCID,
        ),
        ("m2", None, None),
    ]


async def _retained(broker: PrivateMosquitto, prefix: str) -> dict[str, dict[str, object]]:
    watcher = StateWatcher(_cfg(broker), prefix, f"ha-watch-{prefix}")
    await watcher.run(until_quiet_s=0.5)
    return watcher.state


async def test_discovery_is_retained_under_the_prefix(
    mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    prefix = f"ha{base_topic}"
    messages = discovery_messages(base_topic, "gw1", _modems(), prefix=prefix)
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier=f"pub-{prefix}") as c:
        for topic, payload in messages:
            await c.publish(topic, payload, qos=1, retain=True)
    seen = await _retained(mosquitto, prefix)
    assert seen == {topic: json.loads(payload) for topic, payload in messages}
    signal = seen[f"{prefix}/sensor/simbank_gw1/m1_signal/config"]
    assert signal["state_topic"] == f"{base_topic}/gw1/modem/m1"
    assert signal["unit_of_measurement"] == "dBm"


async def test_the_bridge_publishes_discovery_and_resends_it_on_birth(
    mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """The wiring the daemon uses: discovery as retained topics of the MqttBridge, HA's
    birth topic among its subscriptions, and a re-send when HA says ``online``."""
    prefix = f"ha{base_topic}"
    topics = Topics(base_topic, "gw1")
    births: list[Inbound] = []
    bridge: MqttBridge

    async def handler(message: Inbound) -> None:
        if is_birth(message, prefix):
            births.append(message)
            for topic, payload in discovery_messages(base_topic, "gw1", _modems(), prefix):
                bridge.publish(topic, payload)  # a plain re-send, as HA asks after a restart

    bridge = MqttBridge(
        _cfg(mosquitto),
        topics,
        f"bridge-{prefix}",
        info=lambda: b"{}",
        subscriptions=(birth_topic(prefix),),
        handler=handler,
    )
    messages = discovery_messages(base_topic, "gw1", _modems(), prefix=prefix)
    for topic, payload in messages:
        bridge.set_retained(topic, payload)
    resent: list[str] = []
    async with asyncio.TaskGroup() as tg:
        run = tg.create_task(bridge.run(), name="bridge")
        await asyncio.wait_for(bridge.wait_connected(), 10)
        seen = await _retained(mosquitto, prefix)
        assert {t for t in seen if t.endswith("/config")} == {t for t, _ in messages}
        assert seen[f"{prefix}/button/simbank_gw1/m2_reset/config"]["command_topic"] == (
            f"{base_topic}/gw1/bridge/request/modem/reset"
        )
        async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier=f"ha-{prefix}") as ha:
            await ha.subscribe(f"{prefix}/+/simbank_gw1/+/config", qos=1)
            await asyncio.sleep(0.3)  # let the retained copies pass
            await ha.publish(birth_topic(prefix), b"online", qos=1)

            async def collect() -> None:
                async for message in ha.messages:
                    if not message.retain:
                        resent.append(str(message.topic))
                    if len(resent) == len(messages):
                        return

            async with asyncio.timeout(10):
                await collect()
        bridge.stop()
        await run
    assert len(births) == 1
    assert sorted(resent) == sorted(t for t, _ in messages)


async def test_a_button_press_is_a_valid_request(
    mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """Publish what HA publishes on a press; the request arrives and validates."""
    prefix = f"ha{base_topic}"
    configs = dict(discovery_messages(base_topic, "gw1", _modems(), prefix=prefix))
    rotate = json.loads(configs[f"{prefix}/button/simbank_gw1/m1_rotate/config"])
    got: list[aiomqtt.Message] = []
    async with (
        aiomqtt.Client(mosquitto.host, mosquitto.port, identifier=f"daemon-{prefix}") as daemon,
        aiomqtt.Client(mosquitto.host, mosquitto.port, identifier=f"ha-{prefix}") as ha,
    ):
        await daemon.subscribe(f"{base_topic}/gw1/bridge/request/#", qos=1)
        await ha.publish(
            rotate["command_topic"], rotate["payload_press"], qos=rotate["qos"], retain=False
        )
        async with asyncio.timeout(10):
            async for message in daemon.messages:
                got.append(message)
                break
    (message,) = got
    command = str(message.topic).removeprefix(f"{base_topic}/gw1/bridge/request/")
    assert command == "sim/rotate"
    assert isinstance(message.payload, bytes)
    request = COMMANDS[command].model_validate_json(message.payload)
    assert request.model_dump() == {"transaction": None, "modem": "m1"}
