"""The bridge: retained state, events and answers out, requests in; it survives the broker
going away.

This module is the connection's life: two connections per session, ``online`` only once the
request subscription is acknowledged, reconnect with jittered backoff. What waits to be
published is :class:`~simbank.mqtt.outbox.Outbox`'s; what arrives goes through
:class:`~simbank.mqtt.inbox.Inbox`. After every (re)connect the bridge publishes ``online``,
``bridge/info`` and every retained topic again, then whatever changed. Losing either
connection takes ``online`` back. Modems never wait for MQTT: publishing is a synchronous
hand-over.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

import aiomqtt
import structlog

from simbank.backoff import Backoff
from simbank.config.models import MqttConfig
from simbank.contract import BridgeState, Topics, oversize_refusal
from simbank.mqtt import connection
from simbank.mqtt.connection import LISTENER_SUFFIX
from simbank.mqtt.inbox import (
    Inbound,
    InboundHandler,
    Inbox,
    deliver,
    payload_size,
)
from simbank.mqtt.lanes import LaneName
from simbank.mqtt.options import client_options
from simbank.mqtt.outbox import Outbox

__all__ = ["LISTENER_SUFFIX", "BrokerError", "Inbound", "InboundHandler", "MqttBridge"]

log = structlog.get_logger(__name__)

#: What callers outside this package catch when the broker cannot be reached.
BrokerError = aiomqtt.MqttError

#: An overload (something dropped) is logged at most this often, with every counter.
OVERLOAD_LOG_EVERY_S = 5.0
#: A session that stayed up this long was a good one: when it drops, the reconnect backoff
#: starts again from its shortest delay. Shorter sessions (a broker that accepts and then
#: drops us, a client id kicked in turn) keep backing off.
STABLE_SESSION_S = 5.0


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
      results, other responses, ``busy`` answers, each in the lane its caller named
      (:mod:`simbank.mqtt.lanes`); each lane is bounded and its oldest unsent message makes
      room (events only overflow while the broker is away).

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
        state: Callable[[], bytes] | None = None,
        subscriptions: tuple[str, ...] = (),
        handler: InboundHandler | None = None,
    ) -> None:
        self._cfg = cfg
        self._topics = topics
        self._options = client_options(cfg, client_id, topics.bridge_state)
        self._info = info
        #: ``bridge/state`` while connected (``online``, or the owner's ``degraded``).
        self._state = state or (lambda: BridgeState(state="online").to_json())
        self._subscriptions = subscriptions
        self._handler = handler
        self._out = Outbox()
        self._inbox: Inbox | None = None
        self.received = 0
        self.dropped_inbound = 0
        self.oversized = 0
        self._overload_logged_at = -OVERLOAD_LOG_EVERY_S
        self._stopping = asyncio.Event()
        self._handover = False
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
        return self._out.lanes["events"].dropped

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def stats(self) -> dict[str, int]:
        """Counters since start (``received``, ``oversized``, ``dropped_*``, ``published_*``)
        and queue depths (``queued_*``): what the metrics endpoint and the overload log show."""
        lanes = self._out.lanes
        return {
            "received": self.received,
            "oversized": self.oversized,
            "dropped_inbound": self.dropped_inbound,
            **{f"dropped_{name}": lane.dropped for name, lane in lanes.items()},
            **{f"published_{name}": lane.published for name, lane in lanes.items()},
            "queued_inbound": self._inbox.qsize() if self._inbox is not None else 0,
            **{f"queued_{name}": len(lane) for name, lane in lanes.items()},
        }

    def set_retained(self, topic: str, payload: bytes) -> None:
        """Make ``payload`` the retained value of ``topic`` (published now or after reconnect)."""
        self._out.set_retained(topic, payload)

    def publish(
        self,
        topic: str,
        payload: bytes,
        correlation_data: bytes | None = None,
        *,
        lane: LaneName = "events",
    ) -> None:
        """Queue a non-retained QoS 1 message (MQTT 5 correlation data) in ``lane``: events
        and anything that is not an answer in ``events`` (the default), an answer in the lane
        its sender chose (:mod:`simbank.mqtt.lanes` says which are kept longest). A copy of an
        answer to an MQTT 5 Response Topic goes in the same lane as the public one."""
        if self._out.add(topic, payload, correlation_data, lane):
            self._overloaded()

    def stop(self, *, handover: bool = False) -> None:
        """Ask :meth:`run` to publish ``offline`` and return; ``handover``: without the
        ``offline``, another bridge of the same gateway publishing its state next."""
        self._handover = handover
        self._stopping.set()
        self._out.wake.set()

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
        """aiomqtt's ``queue_type``: it calls this with ``maxsize=`` once per connection."""
        self._inbox = Inbox(self._admit, self._dropped_inbound, maxsize)
        return self._inbox

    async def _session(self) -> None:
        """One session: the listener subscribed (every SUBACK in), then the publisher, then
        ``online``. ``online`` is a promise that a request sent now is heard, so the
        subscription comes first, at every (re)connect. The session ends when either
        connection drops, each drop taking ``online`` back (:func:`connection.say_offline`),
        or on :meth:`stop`, with a clean ``offline``."""
        async with contextlib.AsyncExitStack() as stack:
            listener = None
            if self._subscriptions:
                listening = connection.listener(self._options, self._cfg, self._new_inbox)
                listener = await stack.enter_async_context(listening)
                await connection.subscribe(listener, self._topics, self._subscriptions)
            client = await stack.enter_async_context(connection.publisher(self._options))
            self.connects += 1
            await client.publish(self._topics.bridge_state, self._state(), qos=1, retain=True)
            await client.publish(self._topics.bridge_info, self._info(), qos=1, retain=True)
            self._out.reconnected()
            self._connected.set()
            self._connected_at = asyncio.get_running_loop().time()
            log.info("mqtt_connected", host=self._cfg.host, port=self._cfg.port)
            try:
                async with asyncio.TaskGroup() as tg:
                    readers = [
                        tg.create_task(connection.until_lost(client), name="mqtt-publisher-watch")
                    ]
                    if listener is not None:
                        assert self._inbox is not None
                        reader = deliver(listener, self._inbox, self._handler)
                        readers.append(tg.create_task(reader, name="mqtt-reader"))
                    try:
                        await self._out.pump(client, self._stopping)
                    finally:
                        for task in readers:
                            task.cancel()
            except* aiomqtt.MqttError:
                self._connected.clear()
                await connection.say_offline(client, self._topics)
                raise
            if self._handover:
                log.info("mqtt_handed_over", **self.stats())
                return
            offline = BridgeState(state="offline").to_json()
            await client.publish(self._topics.bridge_state, offline, qos=1, retain=True)
            log.info("mqtt_offline_published", **self.stats())

    def _admit(self, message: aiomqtt.Message) -> bool:
        """Called by the inbox for every message as it arrives: False refuses it (an
        oversized request is answered here, unread; anything else is dropped and counted)."""
        self.received += 1
        refusal = oversize_refusal(payload_size(message.payload))
        if refusal is None:
            return True
        self.oversized += 1
        topic = str(message.topic)
        if topic.startswith(self._topics.request_prefix):
            command = topic.removeprefix(self._topics.request_prefix)
            self.publish(self._topics.response(command), refusal, lane="responses")
            props = message.properties
            response_topic = getattr(props, "ResponseTopic", None) if props else None
            if response_topic and self._topics.is_reply(response_topic):
                correlation = getattr(props, "CorrelationData", None)
                self.publish(response_topic, refusal, correlation, lane="responses")
        return False

    def _dropped_inbound(self) -> None:
        self.dropped_inbound += 1
        self._overloaded()

    def _overloaded(self) -> None:
        now = time.monotonic()
        if now - self._overload_logged_at >= OVERLOAD_LOG_EVERY_S:
            self._overload_logged_at = now
            log.warning("mqtt_overloaded", **self.stats())
