"""The bridge's two aiomqtt connections: how each is made, and how a session watches them.

One publishes (with the last will), one subscribes (client id ``<client_id>-requests``), so a
flood of requests queued in the broker's socket buffer never stands between a publish and its
PUBACK (on one connection they timed out behind tens of thousands of messages and the session
dropped).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import aiomqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simbank.config.models import MqttConfig
from simbank.contract import BridgeState, Topics
from simbank.mqtt.inbox import Inbox
from simbank.mqtt.lanes import INBOUND_QUEUE_MAX
from simbank.mqtt.outbox import PUBLISH_WINDOW

log = structlog.get_logger(__name__)

#: MQTT 5: the broker drops (unanswered) packets to the daemon larger than this.
MAX_INBOUND_PACKET = 256 * 1024
#: The subscribing socket's receive buffer (left alone, Linux grows it up to tcp_rmem's
#: maximum, 32 MiB on the test host: seconds of flood for a request to wait behind).
RECEIVE_BUFFER_BYTES = 64 * 1024
#: The subscribing connection's client id is the configured one with this suffix.
LISTENER_SUFFIX = "-requests"


def publisher(options: dict[str, Any]) -> aiomqtt.Client:
    """The connection that publishes (with the last will): state, events, responses."""
    client = aiomqtt.Client(**options)
    # aiomqtt warns about "pending publish calls" above 10; we keep PUBLISH_WINDOW.
    client.pending_calls_threshold = PUBLISH_WINDOW + 2
    return client


def listener(
    options: dict[str, Any], cfg: MqttConfig, new_inbox: Callable[[int], Inbox]
) -> aiomqtt.Client:
    """The connection that subscribes: requests (and Home Assistant's birth message).

    Bounded: the inbox (aiomqtt's ``queue_type``, called with ``maxsize=``), a small receive
    buffer and, with MQTT 5, a maximum packet size."""
    listening: dict[str, Any] = {
        **options,
        "identifier": f"{options['identifier']}{LISTENER_SUFFIX}",
        "will": None,
        "queue_type": new_inbox,
        "max_queued_incoming_messages": INBOUND_QUEUE_MAX,
        "socket_options": ((socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES),),
    }
    if cfg.protocol == "5":
        connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect.MaximumPacketSize = MAX_INBOUND_PACKET
        listening["properties"] = connect
    return aiomqtt.Client(**listening)


async def subscribe(
    listener: aiomqtt.Client, topics: Topics, subscriptions: tuple[str, ...]
) -> None:
    """Subscribe to every topic, each awaited up to its SUBACK. A refused request
    subscription fails the session (``online`` would be a lie: every request would be
    lost); any other refused one (Home Assistant's birth topic) is only logged."""
    for topic in subscriptions:
        granted = await listener.subscribe(topic, qos=1)
        refused = [str(code) for code in granted if _is_failure(code)]
        if not refused:
            continue
        if topic.startswith(topics.request_prefix):
            raise aiomqtt.MqttError(
                f"the broker refused the subscription to {topic}: {', '.join(refused)}"
            )
        log.warning("mqtt_subscription_refused", topic=topic, reason=", ".join(refused))


async def say_offline(client: aiomqtt.Client, topics: Topics) -> None:
    """A connection dropped: publish ``offline`` on the publisher if it still lives.

    If the listener alone dropped, the publisher is still connected and would otherwise
    leave ``online`` standing (its clean disconnect discards the last will) while no
    request is heard. If the publisher dropped, the broker publishes the last will; the
    publish here fails at once or is abandoned as soon as the publisher's loss shows
    (aiomqtt never fails a publish waiting for its PUBACK when the connection goes)."""
    offline = BridgeState(state="offline").to_json()
    publish = asyncio.create_task(
        client.publish(topics.bridge_state, offline, qos=1, retain=True),
        name="mqtt-offline",
    )
    lost = asyncio.create_task(until_lost(client), name="mqtt-publisher-watch")
    try:
        done, _ = await asyncio.wait((publish, lost), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (publish, lost):
            task.cancel()
        await asyncio.gather(publish, lost, return_exceptions=True)
    if publish in done and publish.exception() is None:
        log.info("mqtt_offline_published", reason="connection_lost")
    else:
        log.info("mqtt_offline_left_to_last_will")


async def until_lost(client: aiomqtt.Client) -> None:
    """Return never; raise when the connection is lost (its iterator does)."""
    async for message in client.messages:  # nothing is subscribed on this connection
        log.debug("mqtt_unexpected_message", topic=str(message.topic))


def _is_failure(code: object) -> bool:
    """A SUBACK entry that refuses the subscription (paho gives ``ReasonCode``s; 0x80 and up
    is a failure in both MQTT 3.1.1 and 5)."""
    value = getattr(code, "value", code)
    return isinstance(value, int) and value >= 0x80
