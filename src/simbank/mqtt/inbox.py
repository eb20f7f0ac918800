"""The inbound side: the bounded queue aiomqtt fills, and the reader that empties it.

Everything between the broker and the request handler is bounded, so a flood of requests
costs CPU, never unbounded memory: :class:`Inbox` holds at most ``INBOUND_QUEUE_MAX`` messages
and ``INBOUND_QUEUE_BYTES`` bytes, and :func:`deliver` reads ahead under a flood so that the
excess is answered ``busy`` or dropped at once rather than waiting in the socket buffer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiomqtt
import paho.mqtt.client as paho
import structlog

from simbank.mqtt.lanes import INBOUND_QUEUE_BYTES

log = structlog.get_logger(__name__)

#: Inbound messages handed to the handler per turn of the event loop: enough to outrun the
#: router under a flood (the excess is answered ``busy`` at once instead of waiting in the
#: broker's socket buffer), few enough to keep a turn of the loop within ~20 ms.
READ_BATCH = 512


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message on a subscribed topic, with its MQTT 5 response properties if any."""

    topic: str
    payload: bytes
    response_topic: str | None = None
    correlation_data: bytes | None = None


InboundHandler = Callable[[Inbound], Awaitable[None]]


def payload_size(payload: object) -> int:
    return len(payload) if isinstance(payload, bytes | bytearray) else 0


def raw_payload(payload: object) -> bytes:
    return bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()


def inbound_of(message: aiomqtt.Message) -> Inbound:
    props = message.properties
    response_topic = getattr(props, "ResponseTopic", None) if props else None
    correlation = getattr(props, "CorrelationData", None) if props else None
    return Inbound(str(message.topic), raw_payload(message.payload), response_topic, correlation)


class Inbox:
    """aiomqtt's incoming queue (its ``queue_type``), bounded in messages and bytes.

    ``admit`` sees every message first and may refuse it; one that does not fit is dropped and
    reported to ``dropped``: :meth:`put_nowait` never raises (aiomqtt would log a warning for
    each message, which in a flood is a flood of its own). It offers what aiomqtt 2.x uses of
    its queue (``put_nowait``, ``get``, ``qsize``) over an ``asyncio.Queue`` it owns."""

    def __init__(
        self,
        admit: Callable[[aiomqtt.Message], bool],
        dropped: Callable[[], None],
        maxsize: int = 0,
        max_bytes: int = INBOUND_QUEUE_BYTES,
    ) -> None:
        self._queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue(maxsize)
        self._admit = admit
        self._dropped = dropped
        self._max_bytes = max_bytes
        #: Payload bytes waiting.
        self.bytes = 0

    def put_nowait(self, item: aiomqtt.Message) -> None:
        if not self._admit(item):
            return
        size = payload_size(item.payload)
        if self._queue.full() or self.bytes + size > self._max_bytes:
            self._dropped()
            return
        self._queue.put_nowait(item)
        self.bytes += size

    async def get(self) -> aiomqtt.Message:
        item = await self._queue.get()
        self.bytes -= payload_size(item.payload)
        return item

    def get_nowait(self) -> aiomqtt.Message:
        """The oldest message; ``asyncio.QueueEmpty`` if none waits."""
        item = self._queue.get_nowait()
        self.bytes -= payload_size(item.payload)
        return item

    def qsize(self) -> int:
        return self._queue.qsize()

    def empty(self) -> bool:
        return self._queue.empty()


def read_ahead(client: aiomqtt.Client) -> bool:
    """Read one more packet from ``client``'s socket now, without waiting for the event loop's
    next turn; False if this aiomqtt offers no way to.

    aiomqtt 2.5 reads a connection one packet per turn of the event loop and has no public
    way to read more; only its paho client (the private ``Client._client``) does, with
    ``loop_read()``. This is the one place simbank touches aiomqtt's internals:
    tests/integration/test_mqtt_inbound.py fails if it stops working (aiomqtt 3 drops paho), and
    without it the bridge still works, only slower to shed a flood."""
    inner = getattr(client, "_client", None)
    if not isinstance(inner, paho.Client):
        return False
    inner.loop_read()  # a lost connection ends the message iterator at once
    return True


async def deliver(client: aiomqtt.Client, inbox: Inbox, handler: InboundHandler | None) -> None:
    """Hand ``client``'s messages to ``handler``, up to READ_BATCH per turn of the event loop.

    Under a flood the rest would wait in the broker's socket buffer (tens of thousands of
    messages, seconds of backlog) while the loop spent its turns on requests already read; so
    while messages arrive, this also reads ahead (:func:`read_ahead`), faster than the router
    can process them: the excess is answered ``busy`` or dropped at once and the backlog stays
    short. Raises ``aiomqtt.MqttError`` when the connection is lost."""
    async for first in client.messages:
        await _hand(first, handler)
        for _ in range(READ_BATCH - 1):
            if inbox.empty() and not read_ahead(client):
                break
            if inbox.empty():
                break
            await _hand(inbox.get_nowait(), handler)


async def _hand(message: aiomqtt.Message, handler: InboundHandler | None) -> None:
    if handler is None:
        return
    inbound = inbound_of(message)
    try:
        await handler(inbound)
    except Exception:
        log.exception("mqtt_handler_failed", topic=inbound.topic)
