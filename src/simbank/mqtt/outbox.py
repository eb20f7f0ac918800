"""What waits to be published, and the pump that publishes it.

Retained state is kept as "latest payload per topic" (sent again after every reconnect); other
messages wait in the lane their caller named (:mod:`simbank.mqtt.lanes`). Handing a message
over is synchronous and never waits for the broker.
"""

from __future__ import annotations

import asyncio

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simbank.mqtt.lanes import LANE_LIMITS, Lane, LaneName, Outgoing

#: QoS 1 messages in flight at once (paho's default window is 20).
PUBLISH_WINDOW = 16
#: The lanes sent after the retained topics, in order.
_AFTER_RETAINED: tuple[LaneName, ...] = ("results", "responses", "busy")


def _correlation_properties(correlation: bytes | None) -> Properties | None:
    if correlation is None:
        return None
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.CorrelationData = correlation
    return props


class Outbox:
    """Retained topics (one latest payload each) and the four lanes, sent in this order:
    events, changed retained topics, results, responses, ``busy`` answers."""

    def __init__(self) -> None:
        self.retained: dict[str, bytes] = {}
        self._dirty: dict[str, None] = {}
        self.lanes: dict[LaneName, Lane] = {
            name: Lane(limit, max_bytes) for name, (limit, max_bytes) in LANE_LIMITS.items()
        }
        self._seq = 0
        #: Set whenever there may be something to send (or :meth:`pump` should look again).
        self.wake = asyncio.Event()

    def set_retained(self, topic: str, payload: bytes) -> None:
        """Make ``payload`` the retained value of ``topic`` (published now or after reconnect)."""
        if self.retained.get(topic) == payload:
            return
        self.retained[topic] = payload
        self._dirty[topic] = None
        self.wake.set()

    def add(self, topic: str, payload: bytes, correlation: bytes | None, lane: LaneName) -> bool:
        """Queue a non-retained message in ``lane``; True if an older one made room."""
        self._seq += 1
        dropped = self.lanes[lane].add(Outgoing(self._seq, topic, payload, correlation))
        self.wake.set()
        return dropped

    def reconnected(self) -> None:
        """A new session: unacknowledged messages go first again, every retained topic is
        sent again."""
        for lane in self.lanes.values():
            lane.requeue()
        self._dirty = dict.fromkeys(self.retained)

    def _next(self, in_flight: set[str]) -> tuple[Lane, Outgoing] | tuple[str, bytes] | None:
        """The next message to send: an event, a changed retained topic, a result, a
        response, a ``busy`` answer, in that order."""
        events = self.lanes["events"]
        if (event := events.take()) is not None:
            return events, event
        topic = next((t for t in self._dirty if t not in in_flight), None)
        if topic is not None:
            return topic, self.retained[topic]
        for name in _AFTER_RETAINED:
            lane = self.lanes[name]
            if (message := lane.take()) is not None:
                return lane, message
        return None

    def flushed(self, retained_in_flight: set[str]) -> bool:
        """Every event, result, response and retained update is acknowledged (``busy``
        answers are not worth waiting for)."""
        return not (
            retained_in_flight
            or self.lanes["events"]
            or self.lanes["results"]
            or self.lanes["responses"]
        )

    async def pump(self, client: aiomqtt.Client, stopping: asyncio.Event) -> None:
        """Publish on ``client`` until ``stopping`` is set and all is flushed.

        Keeps up to PUBLISH_WINDOW QoS 1 messages in flight (waiting for each PUBACK in turn
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
            self.wake.set()

        async def send_retained(topic: str, payload: bytes) -> None:
            try:
                await client.publish(topic, payload, qos=1, retain=True)
            finally:
                window.release()
                in_flight.discard(topic)
            if self.retained.get(topic) is payload:  # no newer value arrived meanwhile
                self._dirty.pop(topic, None)
            self.wake.set()

        async with asyncio.TaskGroup() as tg:
            while True:
                await window.acquire()
                chosen = self._next(in_flight)
                if chosen is None:
                    window.release()
                    if stopping.is_set() and self.flushed(in_flight):
                        return
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                first, second = chosen
                if isinstance(first, Lane):
                    assert isinstance(second, Outgoing)
                    tg.create_task(send(first, second), name="mqtt-publish")
                else:
                    assert isinstance(second, bytes)
                    in_flight.add(first)
                    tg.create_task(send_retained(first, second), name="mqtt-publish-retained")
