"""The bridge's inbound side against a real mosquitto: reading ahead of the event loop (the one
place simbank reaches into aiomqtt), and an oversized request answered as it arrives."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import aiomqtt
import paho.mqtt.publish
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simbank.config.models import MqttConfig
from simbank.contract import MAX_REQUEST_BYTES, Topics, oversize_refusal
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import Inbound, MqttBridge, client_options
from simbank.mqtt.inbox import Inbox, read_ahead

pytestmark = pytest.mark.integration


def _cfg(broker: PrivateMosquitto) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, keepalive_s=5)


def _client(cfg: MqttConfig, name: str, **extra: object) -> aiomqtt.Client:
    options = client_options(cfg, name, f"{name}/will")
    options.pop("will")
    return aiomqtt.Client(**{**options, **extra})  # type: ignore[arg-type]


async def test_read_ahead_reads_what_waits_on_the_socket_without_a_turn_of_the_loop(
    mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """Messages reach the listener's socket while the event loop is held (so aiomqtt's own
    reader never runs); ``read_ahead`` alone brings them into the inbox, in order. Fails if
    aiomqtt stops exposing what ``read_ahead`` needs (aiomqtt 3 drops paho)."""
    cfg = _cfg(mosquitto)
    inboxes: list[Inbox] = []

    def new_inbox(maxsize: int = 0) -> Inbox:
        inboxes.append(Inbox(lambda _: True, lambda: None, maxsize))
        return inboxes[-1]

    count = 20
    messages = [{"topic": f"{base_topic}/m", "payload": str(n), "qos": 1} for n in range(count)]
    async with _client(cfg, f"inbox-{base_topic}", queue_type=new_inbox) as client:
        await client.subscribe(f"{base_topic}/#", qos=1)
        (inbox,) = inboxes
        sender = threading.Thread(
            target=paho.mqtt.publish.multiple,
            args=(messages,),
            kwargs={"hostname": cfg.host, "port": cfg.port, "client_id": f"send-{base_topic}"},
        )
        # From here to the end of the loop below nothing awaits: the event loop is held.
        sender.start()
        sender.join(timeout=30)
        deadline = time.monotonic() + 30  # a hang guard, not a speed figure
        while inbox.qsize() < count and time.monotonic() < deadline:
            assert read_ahead(client)
        got = [inbox.get_nowait().payload for _ in range(inbox.qsize())]
    assert got == [str(n).encode() for n in range(count)]


@pytest.fixture
async def oversize_bridge(
    mosquitto: PrivateMosquitto, base_topic: str
) -> AsyncIterator[tuple[MqttBridge, list[Inbound]]]:
    topics = Topics(base_topic, "gw1")
    handled: list[Inbound] = []

    async def handler(inbound: Inbound) -> None:
        handled.append(inbound)

    bridge = MqttBridge(
        _cfg(mosquitto),
        topics,
        f"bridge-{base_topic}",
        info=lambda: b"{}",
        subscriptions=(f"{topics.request_prefix}#",),
        handler=handler,
    )
    run = asyncio.create_task(bridge.run(), name="bridge")
    try:
        async with asyncio.timeout(10):
            await bridge.wait_connected()
        yield bridge, handled
    finally:
        bridge.stop()
        await run


async def test_an_oversized_request_is_answered_on_arrival_and_never_handed_on(
    oversize_bridge: tuple[MqttBridge, list[Inbound]], mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    bridge, handled = oversize_bridge
    topics = Topics(base_topic, "gw1")
    payload = b'{"transaction": "' + b"x" * MAX_REQUEST_BYTES + b'"}'
    reply_topic = f"{topics.root}/clients/c/reply"
    async with _client(_cfg(mosquitto), f"client-{base_topic}") as client:
        await client.subscribe(topics.response("call"), qos=1)
        await client.subscribe(reply_topic, qos=1)
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = reply_topic
        props.CorrelationData = b"corr"
        await client.publish(topics.request("call"), payload, qos=1, properties=props)
        answers: dict[str, tuple[bytes, bytes | None]] = {}
        async with asyncio.timeout(10):
            async for message in client.messages:
                correlation = getattr(message.properties, "CorrelationData", None)
                assert isinstance(message.payload, bytes)
                answers[str(message.topic)] = (message.payload, correlation)
                if len(answers) == 2:
                    break
    refusal = oversize_refusal(len(payload))
    assert answers == {topics.response("call"): (refusal, None), reply_topic: (refusal, b"corr")}
    assert handled == []
    stats = bridge.stats()
    assert (stats["received"], stats["oversized"], stats["published_responses"]) == (1, 1, 2)
