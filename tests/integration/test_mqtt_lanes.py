"""The bridge's lanes against a real mosquitto: each message waits in the lane its caller
named; while the broker is away the least valuable are dropped first, and once it is back
events go first and ``busy`` answers last."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from simbank.config.models import MqttConfig
from simbank.contract import ErrorResponse, OkResponse, Topics
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import BUSY_QUEUE_MAX, MqttBridge, client_options

pytestmark = pytest.mark.integration

BUSY = 150  # more than BUSY_QUEUE_MAX: the oldest 50 make room


def _cfg(broker: PrivateMosquitto) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, keepalive_s=5)


def _queue_a_burst(bridge: MqttBridge, topics: Topics) -> None:
    """Hand the bridge a burst of every kind, least valuable first, each in its lane:
    ``busy`` answers tagged ``b<n>``, refusals ``r<n>``, results ``d<n>``, events ``e<n>``."""
    for n in range(BUSY):
        busy = ErrorResponse(code="busy", error="try again", transaction=n).to_json()
        bridge.publish(topics.response("status"), busy, lane="busy")
    for n in range(3):
        refusal = ErrorResponse(code="do_not_call", error="no", transaction=f"r{n}").to_json()
        bridge.publish(topics.response("call"), refusal, lane="responses")
    for n in range(2):
        done = OkResponse(data={}, transaction=f"d{n}").to_json()
        bridge.publish(topics.response("call"), done, lane="results")
    for n in range(2):
        bridge.publish(topics.bridge_event, json.dumps({"type": "e", "n": n}).encode())


async def test_a_burst_is_sent_events_first_and_busy_answers_last(
    mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """A burst handed over in one go (as when the broker is slow): the lanes bound it as they
    would with the broker away, and the wire order is the lanes' order."""
    cfg = _cfg(mosquitto)
    topics = Topics(base_topic, "gw1")
    bridge = MqttBridge(cfg, topics, f"bridge-{base_topic}", info=lambda: b"{}")
    options = client_options(cfg, f"watch-{base_topic}", f"{base_topic}/will")
    options.pop("will")
    seen: list[str] = []
    async with aiomqtt.Client(**options) as watcher:  # type: ignore[arg-type]
        await watcher.subscribe(topics.bridge_event, qos=1)
        await watcher.subscribe(f"{topics.response_prefix}#", qos=1)
        run = asyncio.create_task(bridge.run(), name="bridge")
        try:
            async with asyncio.timeout(10):
                await bridge.wait_connected()
            _queue_a_burst(bridge, topics)  # no await in between: one burst
            stats = bridge.stats()
            assert (stats["queued_busy"], stats["dropped_busy"]) == (
                BUSY_QUEUE_MAX,
                BUSY - BUSY_QUEUE_MAX,
            )
            async with asyncio.timeout(20):  # a hang guard
                async for message in watcher.messages:
                    assert isinstance(message.payload, bytes)
                    data = json.loads(message.payload)
                    if "n" in data:
                        seen.append(f"e{data['n']}")
                    else:
                        tag = data["transaction"]
                        seen.append(tag if isinstance(tag, str) else f"b{tag}")
                    if len(seen) == 7 + BUSY_QUEUE_MAX:
                        break
        finally:
            bridge.stop()
            await run
    kept_busy = [f"b{n}" for n in range(BUSY - BUSY_QUEUE_MAX, BUSY)]  # the newest
    assert seen == ["e0", "e1", "d0", "d1", "r0", "r1", "r2", *kept_busy]


async def test_while_the_broker_is_away_busy_answers_make_room_and_the_rest_is_kept(
    own_mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    topics = Topics(base_topic, "gw1")
    await own_mosquitto.astop()
    bridge = MqttBridge(_cfg(own_mosquitto), topics, f"bridge-{base_topic}", info=lambda: b"{}")
    run = asyncio.create_task(bridge.run(), name="bridge")
    try:
        async with asyncio.timeout(10):
            while not bridge.retry_delays:  # it tried, and failed
                await asyncio.sleep(0.05)
        _queue_a_burst(bridge, topics)
        assert bridge.stats()["dropped_busy"] == BUSY - BUSY_QUEUE_MAX
        await own_mosquitto.astart()
        async with asyncio.timeout(30):  # a hang guard
            while bridge.stats()["queued_busy"] or not bridge.connected:
                await asyncio.sleep(0.05)
        stats = bridge.stats()
    finally:
        bridge.stop()
        await run
    assert {k: v for k, v in stats.items() if k.startswith(("published_", "dropped_"))} == {
        "published_events": 2,
        "published_results": 2,
        "published_responses": 3,
        "published_busy": BUSY_QUEUE_MAX,
        "dropped_inbound": 0,
        "dropped_events": 0,
        "dropped_results": 0,
        "dropped_responses": 0,
        "dropped_busy": BUSY - BUSY_QUEUE_MAX,
    }
