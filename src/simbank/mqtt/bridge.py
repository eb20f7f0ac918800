"""The bridge: retained state, events and answers out, requests in; it survives the broker
going away.

Retained state is kept as "latest payload per topic"; after every (re)connect, once the
broker has acknowledged the subscription to the request topics, the bridge publishes
``online``, ``bridge/info`` and every retained topic again, then whatever changed. Losing
either connection takes ``online`` back.
Events and responses wait in bounded queues while the broker is down or slow (oldest dropped
first, counted); inbound messages wait in a bounded queue too, so a flood of requests costs
CPU, not memory. Modems never wait for MQTT: publishing is a synchronous hand-over.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simbank.backoff import Backoff
from simbank.config.models import MqttConfig
from simbank.contract import MAX_REQUEST_BYTES, BridgeState, ErrorResponse, Topics
from simbank.mqtt.lanes import (
    BUSY_PREFIX,
    BUSY_QUEUE_BYTES,
    BUSY_QUEUE_MAX,
    ERROR_PREFIX,
    EVENT_QUEUE_BYTES,
    EVENT_QUEUE_MAX,
    INBOUND_QUEUE_MAX,
    OK_PREFIX,
    READ_ONLY_COMMANDS,
    RESPONSE_QUEUE_BYTES,
    RESPONSE_QUEUE_MAX,
    RESULT_QUEUE_BYTES,
    RESULT_QUEUE_MAX,
    Inbox,
    Lane,
    Outgoing,
    payload_size,
    raw_payload,
)
from simbank.mqtt.options import client_options

log = structlog.get_logger(__name__)

#: What callers outside this package catch when the broker cannot be reached.
BrokerError = aiomqtt.MqttError

#: MQTT 5: the broker drops (unanswered) packets to the daemon larger than this.
MAX_INBOUND_PACKET = 256 * 1024
#: The subscribing socket's receive buffer (left alone, Linux grows it up to tcp_rmem's
#: maximum, 32 MiB on the test host: seconds of flood for a request to wait behind).
RECEIVE_BUFFER_BYTES = 64 * 1024
#: Inbound messages handed to the handler per turn of the event loop: enough to outrun the
#: router under a flood (the excess is answered ``busy`` at once instead of waiting in the
#: broker's socket buffer), few enough to keep a turn of the loop within ~20 ms.
READ_BATCH = 512
#: An overload (something dropped) is logged at most this often, with every counter.
OVERLOAD_LOG_EVERY_S = 5.0
#: The subscribing connection's client id is the configured one with this suffix.
LISTENER_SUFFIX = "-requests"
#: QoS 1 messages in flight at once (paho's default window is 20).
PUBLISH_WINDOW = 16
#: A session that stayed up this long was a good one: when it drops, the reconnect backoff
#: starts again from its shortest delay. Shorter sessions (a broker that accepts and then
#: drops us, a client id kicked in turn) keep backing off.
STABLE_SESSION_S = 5.0


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message on a subscribed topic, with its MQTT 5 response properties if any."""

    topic: str
    payload: bytes
    response_topic: str | None = None
    correlation_data: bytes | None = None


InboundHandler = Callable[[Inbound], Awaitable[None]]


def _correlation_properties(correlation: bytes | None) -> Properties | None:
    if correlation is None:
        return None
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.CorrelationData = correlation
    return props


class MqttBridge:
    """Publishes retained state and events; hands inbound requests to a handler.

    Two connections: one publishes (it carries the last will), one subscribes (client id
    ``<client_id>-requests``), so a flood of requests never delays a PUBACK. ``online`` is
    published only once the subscribing one has its SUBACK, and taken back when either
    drops, so a request sent when ``online`` shows is heard. Everything between the broker
    and the daemon is bounded, so a flood costs CPU, never unbounded memory:

    * inbound: requests wait in a queue of at most ``INBOUND_QUEUE_MAX`` messages and
      ``INBOUND_QUEUE_BYTES`` bytes; what does not fit is dropped unanswered. A request larger
      than ``MAX_REQUEST_BYTES`` is answered ``validation_error`` as it arrives and never
      queued; with MQTT 5 the broker is told not to send packets over ``MAX_INBOUND_PACKET``
      at all (it drops them).
    * outbound, in this order: events, retained state (one latest payload per topic),
      results (``ok`` answers of commands that act), other responses, ``busy`` answers; each
      queue is bounded and its oldest unsent message makes room (events only overflow while
      the broker is away).

    Drops are counted (:meth:`stats`) and logged as ``mqtt_overloaded`` at most every
    ``OVERLOAD_LOG_EVERY_S``.
    """

    def __init__(
        self,
        cfg: MqttConfig,
        topics: Topics,
        client_id: str,
        *,
        info: Callable[[], bytes],
        subscriptions: tuple[str, ...] = (),
        handler: InboundHandler | None = None,
    ) -> None:
        self._cfg = cfg
        self._topics = topics
        self._options = client_options(cfg, client_id, topics.bridge_state)
        self._info = info
        self._subscriptions = subscriptions
        self._handler = handler
        self._retained: dict[str, bytes] = {}
        self._dirty: dict[str, None] = {}
        self._events = Lane(EVENT_QUEUE_MAX, EVENT_QUEUE_BYTES)
        self._results = Lane(RESULT_QUEUE_MAX, RESULT_QUEUE_BYTES)
        self._responses = Lane(RESPONSE_QUEUE_MAX, RESPONSE_QUEUE_BYTES)
        self._busy = Lane(BUSY_QUEUE_MAX, BUSY_QUEUE_BYTES)
        self._lanes = (self._events, self._results, self._responses, self._busy)
        self._last: tuple[bytes, Lane] | None = None
        self._seq = 0
        self._inbox: Inbox | None = None
        self.received = 0
        self.dropped_inbound = 0
        self.oversized = 0
        self._overload_logged_at = -OVERLOAD_LOG_EVERY_S
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._connected = asyncio.Event()
        self._connected_at: float | None = None
        self.connects = 0
        #: The delays chosen before reconnecting, newest last (what the backoff decided).
        self.retry_delays: deque[float] = deque(maxlen=64)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def dropped_events(self) -> int:
        return self._events.dropped

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def stats(self) -> dict[str, int]:
        """Counters since start (``received``, ``oversized``, ``dropped_*``, ``published_*``)
        and queue depths (``queued_*``): what the metrics endpoint and the overload log show."""
        return {
            "received": self.received,
            "oversized": self.oversized,
            "dropped_inbound": self.dropped_inbound,
            "dropped_events": self._events.dropped,
            "dropped_results": self._results.dropped,
            "dropped_responses": self._responses.dropped,
            "dropped_busy": self._busy.dropped,
            "published_events": self._events.published,
            "published_results": self._results.published,
            "published_responses": self._responses.published,
            "published_busy": self._busy.published,
            "queued_inbound": self._inbox.qsize() if self._inbox is not None else 0,
            "queued_events": len(self._events),
            "queued_results": len(self._results),
            "queued_responses": len(self._responses),
            "queued_busy": len(self._busy),
        }

    def set_retained(self, topic: str, payload: bytes) -> None:
        """Make ``payload`` the retained value of ``topic`` (published now or after reconnect)."""
        if self._retained.get(topic) == payload:
            return
        self._retained[topic] = payload
        self._dirty[topic] = None
        self._wake.set()

    def publish(self, topic: str, payload: bytes, correlation_data: bytes | None = None) -> None:
        """Queue a non-retained QoS 1 message (events, responses; MQTT 5 correlation data).

        Events go to the ``bridge/event`` topic; anything else is a response: see
        :meth:`_lane_of` for which are kept longest."""
        lane = self._lane_of(topic, payload)
        self._seq += 1
        if lane.add(Outgoing(self._seq, topic, payload, correlation_data)):
            self._overloaded()
        self._wake.set()

    def _lane_of(self, topic: str, payload: bytes) -> Lane:
        """Events (and any other message that is not a response, such as Home Assistant's
        discovery configs sent again); then results (an ``ok`` answer of a command that is not
        read-only: something was done, and its answer must not be lost to a flood); then other
        responses; ``busy`` answers last. A response's copy to an MQTT 5 Response Topic (the
        same payload, right after the public one) goes where the public one went."""
        if topic == self._topics.bridge_event:
            return self._events
        if self._last is not None and self._last[0] is payload:
            return self._last[1]
        prefix = self._topics.response_prefix
        command = topic.removeprefix(prefix) if topic.startswith(prefix) else None
        if payload.startswith(BUSY_PREFIX):
            lane = self._busy
        elif payload.startswith(OK_PREFIX):
            action = command is not None and command not in READ_ONLY_COMMANDS
            lane = self._results if action else self._responses
        elif payload.startswith(ERROR_PREFIX):
            lane = self._responses
        else:
            lane = self._events
        self._last = (payload, lane)
        return lane

    def stop(self) -> None:
        """Ask :meth:`run` to publish ``offline`` and return."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Connect, publish, reconnect with jittered backoff, until :meth:`stop`."""
        backoff = Backoff(0.5, 30.0)
        while not self._stopping.is_set():
            error: str | None = None
            try:
                await self._session()
                backoff.reset()
            except* aiomqtt.MqttError as group:
                error = "; ".join(str(e) for e in group.exceptions)
            if error is not None:
                self._connected.clear()
                up_since, self._connected_at = self._connected_at, None
                loop = asyncio.get_running_loop()
                if up_since is not None and loop.time() - up_since >= STABLE_SESSION_S:
                    # Without this, every broker restart over a day of good sessions added
                    # to the delay: the soak saw 29 s before reconnecting after a short one.
                    backoff.reset()
                delay = backoff.next()
                self.retry_delays.append(delay)
                log.warning("mqtt_disconnected", error=error, retry_in_s=round(delay, 2))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
        self._connected.clear()

    def _new_inbox(self, maxsize: int = 0) -> Inbox:
        self._inbox = Inbox(self._admit, self._dropped_inbound, maxsize)
        return self._inbox

    def _publisher(self) -> aiomqtt.Client:
        """The connection that publishes (with the last will): state, events, responses."""
        client = aiomqtt.Client(**self._options)  # type: ignore[arg-type]
        # aiomqtt warns about "pending publish calls" above 10; we keep PUBLISH_WINDOW.
        client.pending_calls_threshold = PUBLISH_WINDOW + 2
        return client

    def _listener(self) -> aiomqtt.Client:
        """The connection that subscribes: requests (and Home Assistant's birth message).

        Its own connection, so that a flood of requests queued in the broker's socket buffer
        never stands between a publish and its PUBACK (on one connection they timed out
        behind tens of thousands of messages and the session dropped). Bounded: the inbox,
        a small receive buffer and, with MQTT 5, a maximum packet size."""
        options: dict[str, Any] = {
            **self._options,
            "identifier": f"{self._options['identifier']}{LISTENER_SUFFIX}",
            "will": None,
            "queue_type": self._new_inbox,
            "max_queued_incoming_messages": INBOUND_QUEUE_MAX,
            "socket_options": ((socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES),),
        }
        if self._cfg.protocol == "5":
            connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            connect.MaximumPacketSize = MAX_INBOUND_PACKET
            options["properties"] = connect
        return aiomqtt.Client(**options)

    async def _session(self) -> None:
        """One session: the listener subscribed (every SUBACK in), then the publisher, then
        ``online``. ``online`` is a promise that a request sent now is heard, so the
        subscription comes first, at every (re)connect. The session ends when either
        connection drops, each drop taking ``online`` back (see :meth:`_say_offline`), or
        on :meth:`stop`, with a clean ``offline``."""
        async with contextlib.AsyncExitStack() as stack:
            listener = None
            if self._subscriptions:
                listener = await stack.enter_async_context(self._listener())
                await self._subscribe(listener)
            client = await stack.enter_async_context(self._publisher())
            self.connects += 1
            for lane in self._lanes:
                lane.requeue()
            online = BridgeState(state="online").to_json()
            await client.publish(self._topics.bridge_state, online, qos=1, retain=True)
            await client.publish(self._topics.bridge_info, self._info(), qos=1, retain=True)
            self._dirty = dict.fromkeys(self._retained)
            self._connected.set()
            self._connected_at = asyncio.get_running_loop().time()
            log.info("mqtt_connected", host=self._cfg.host, port=self._cfg.port)
            try:
                async with asyncio.TaskGroup() as tg:
                    readers = [tg.create_task(_until_lost(client), name="mqtt-publisher-watch")]
                    if listener is not None:
                        assert self._inbox is not None
                        readers.append(
                            tg.create_task(self._read(listener, self._inbox), name="mqtt-reader")
                        )
                    try:
                        await self._pump(client)
                    finally:
                        for reader in readers:
                            reader.cancel()
            except* aiomqtt.MqttError:
                self._connected.clear()
                await self._say_offline(client)
                raise
            offline = BridgeState(state="offline").to_json()
            await client.publish(self._topics.bridge_state, offline, qos=1, retain=True)
            log.info("mqtt_offline_published", **self.stats())

    async def _subscribe(self, listener: aiomqtt.Client) -> None:
        """Subscribe to every topic, each awaited up to its SUBACK. A refused request
        subscription fails the session (``online`` would be a lie: every request would be
        lost); any other refused one (Home Assistant's birth topic) is only logged."""
        for topic in self._subscriptions:
            granted = await listener.subscribe(topic, qos=1)
            refused = [str(code) for code in granted if _is_failure(code)]
            if not refused:
                continue
            if topic.startswith(self._topics.request_prefix):
                raise aiomqtt.MqttError(
                    f"the broker refused the subscription to {topic}: {', '.join(refused)}"
                )
            log.warning("mqtt_subscription_refused", topic=topic, reason=", ".join(refused))

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """A connection dropped: publish ``offline`` on the publisher if it still lives.

        If the listener alone dropped, the publisher is still connected and would otherwise
        leave ``online`` standing (its clean disconnect discards the last will) while no
        request is heard. If the publisher dropped, the broker publishes the last will; the
        publish here fails at once or is abandoned as soon as the publisher's loss shows
        (aiomqtt never fails a publish waiting for its PUBACK when the connection goes)."""
        offline = BridgeState(state="offline").to_json()
        publish = asyncio.create_task(
            client.publish(self._topics.bridge_state, offline, qos=1, retain=True),
            name="mqtt-offline",
        )
        lost = asyncio.create_task(_until_lost(client), name="mqtt-publisher-watch")
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

    def _next(self, in_flight: set[str]) -> tuple[Lane, Outgoing] | tuple[str, bytes] | None:
        """The next message to send: an event, a changed retained topic, a response, a
        ``busy`` answer, in that order."""
        if (event := self._events.take()) is not None:
            return self._events, event
        topic = next((t for t in self._dirty if t not in in_flight), None)
        if topic is not None:
            return topic, self._retained[topic]
        for lane in self._lanes[1:]:
            if (message := lane.take()) is not None:
                return lane, message
        return None

    async def _pump(self, client: aiomqtt.Client) -> None:
        """Keep up to PUBLISH_WINDOW QoS 1 messages in flight (waiting for each PUBACK in turn
        made an event wait behind every retained update). Each queued message is forgotten
        only once acknowledged. Publishes start in order, so the wire order is the queue order
        within each lane."""
        window = asyncio.Semaphore(PUBLISH_WINDOW)
        in_flight: set[str] = set()  # retained topics being published

        async def send(lane: Lane, message: Outgoing) -> None:
            try:
                await client.publish(
                    message.topic,
                    message.payload,
                    qos=1,
                    properties=_correlation_properties(message.correlation),
                )
            finally:
                window.release()
            lane.done(message)
            self._wake.set()

        async def send_retained(topic: str, payload: bytes) -> None:
            try:
                await client.publish(topic, payload, qos=1, retain=True)
            finally:
                window.release()
                in_flight.discard(topic)
            if self._retained.get(topic) is payload:  # no newer value arrived meanwhile
                self._dirty.pop(topic, None)
            self._wake.set()

        async with asyncio.TaskGroup() as tg:
            while True:
                await window.acquire()
                chosen = self._next(in_flight)
                if chosen is None:
                    window.release()
                    if self._stopping.is_set() and self._flushed(in_flight):
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                first, second = chosen
                if isinstance(first, Lane):
                    assert isinstance(second, Outgoing)
                    tg.create_task(send(first, second))
                else:
                    assert isinstance(second, bytes)
                    in_flight.add(first)
                    tg.create_task(send_retained(first, second))

    def _flushed(self, retained_in_flight: set[str]) -> bool:
        """Stopping: every event, response and retained update is acknowledged (``busy``
        answers are not worth waiting for)."""
        return not (retained_in_flight or self._events or self._results or self._responses)

    async def _read(self, client: aiomqtt.Client, inbox: Inbox) -> None:
        """Hand inbound messages to the handler, up to READ_BATCH per turn of the event loop.

        aiomqtt reads a subscribe-only connection one packet per turn of the loop: under a
        flood the rest waited in the broker's socket buffer (tens of thousands of messages,
        seconds of backlog) while the loop spent its turns on requests already read. So
        while messages arrive the reader also pulls from paho itself, faster than the router
        can process them: the excess is answered ``busy`` or dropped at once and the backlog
        stays short. The iterator raises when the connection is lost.
        """
        paho = client._client  # aiomqtt's paho client (aiomqtt 2.x), read directly
        async for first in client.messages:
            await self._take(first)
            for _ in range(READ_BATCH - 1):
                if inbox.empty():
                    paho.loop_read()  # a lost connection ends the iterator at once
                if inbox.empty():
                    break
                await self._take(inbox.get_nowait())

    async def _take(self, message: aiomqtt.Message) -> None:
        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None) if props else None
        correlation = getattr(props, "CorrelationData", None) if props else None
        inbound = Inbound(
            str(message.topic), raw_payload(message.payload), response_topic, correlation
        )
        if self._handler is None:
            return
        try:
            await self._handler(inbound)
        except Exception:
            log.exception("mqtt_handler_failed", topic=inbound.topic)

    def _admit(self, message: aiomqtt.Message) -> bool:
        """Called by aiomqtt for every message as it arrives: False refuses it (an oversized
        request is answered here, unread; anything else is dropped and counted)."""
        self.received += 1
        size = payload_size(message.payload)
        if size > MAX_REQUEST_BYTES:
            self.oversized += 1
            self._refuse_oversized(message, size)
            return False
        return True

    def _refuse_oversized(self, message: aiomqtt.Message, size: int) -> None:
        topic = str(message.topic)
        if not topic.startswith(self._topics.request_prefix):
            return
        command = topic.removeprefix(self._topics.request_prefix)
        answer = ErrorResponse(
            code="validation_error",
            error=f"payload too large ({size} > {MAX_REQUEST_BYTES} bytes)",
        ).to_json()
        self.publish(self._topics.response(command), answer)
        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None) if props else None
        if response_topic:
            self.publish(response_topic, answer, getattr(props, "CorrelationData", None))

    def _dropped_inbound(self) -> None:
        self.dropped_inbound += 1
        self._overloaded()

    def _overloaded(self) -> None:
        now = time.monotonic()
        if now - self._overload_logged_at >= OVERLOAD_LOG_EVERY_S:
            self._overload_logged_at = now
            log.warning("mqtt_overloaded", **self.stats())


def _is_failure(code: object) -> bool:
    """A SUBACK entry that refuses the subscription (paho gives ``ReasonCode``s; 0x80 and up
    is a failure in both MQTT 3.1.1 and 5)."""
    value = getattr(code, "value", code)
    return isinstance(value, int) and value >= 0x80


async def _until_lost(client: aiomqtt.Client) -> None:
    """Return never; raise when the connection is lost (its iterator does)."""
    async for message in client.messages:  # nothing is subscribed on this connection
        log.debug("mqtt_unexpected_message", topic=str(message.topic))
