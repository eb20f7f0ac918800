"""The bridge's outgoing lanes: bounded queues of QoS 1 messages, one per kind of message.

The caller names the lane (:data:`LaneName`) when it publishes: the transport never reads a
payload to guess what it is. From most to least worth keeping:

* ``events``: ``bridge/event`` and anything that is not an answer (Home Assistant's discovery
  configs sent again); only overflow while the broker is away;
* ``results``: the ``ok`` answer of a command that acted (not read-only): something was done,
  and its answer must not be lost to a flood;
* ``responses``: every other answer (errors, read-only answers);
* ``busy``: ``busy`` refusals, behind everything else, the first dropped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

#: Which lane a message waits in (see the module's docstring).
LaneName = Literal["events", "results", "responses", "busy"]

#: Events kept while the broker is away (the oldest is dropped first, counted).
EVENT_QUEUE_MAX = 10_000
EVENT_QUEUE_BYTES = 16 * 1024 * 1024
#: Answers of commands that did something (``ok`` and not read-only): kept longest.
RESULT_QUEUE_MAX = 1_000
RESULT_QUEUE_BYTES = 16 * 1024 * 1024
#: Other responses waiting to be published; under a flood the oldest make room.
RESPONSE_QUEUE_MAX = 200
RESPONSE_QUEUE_BYTES = 16 * 1024 * 1024
#: ``busy`` answers are worth least: only a few wait, behind everything else.
BUSY_QUEUE_MAX = 100
BUSY_QUEUE_BYTES = 64 * 1024
#: Inbound messages waiting for the request handler; beyond this they are dropped unanswered.
INBOUND_QUEUE_MAX = 1_000
INBOUND_QUEUE_BYTES = 4 * 1024 * 1024

#: Each lane's bounds (messages, bytes), in the order the bridge sends them.
LANE_LIMITS: dict[LaneName, tuple[int, int]] = {
    "events": (EVENT_QUEUE_MAX, EVENT_QUEUE_BYTES),
    "results": (RESULT_QUEUE_MAX, RESULT_QUEUE_BYTES),
    "responses": (RESPONSE_QUEUE_MAX, RESPONSE_QUEUE_BYTES),
    "busy": (BUSY_QUEUE_MAX, BUSY_QUEUE_BYTES),
}


@dataclass(slots=True)
class Outgoing:
    seq: int
    topic: str
    payload: bytes
    correlation: bytes | None


class Lane:
    """One class of outgoing QoS 1 messages: first in, first out, bounded in messages and
    bytes waiting (the oldest waiting message makes room and is counted in ``dropped``). A
    message is forgotten once acknowledged; after a reconnect the unacknowledged ones go
    first again (:meth:`requeue`)."""

    def __init__(self, limit: int, max_bytes: int) -> None:
        self._limit = limit
        self._max_bytes = max_bytes
        self._waiting: deque[Outgoing] = deque()
        self._in_flight: dict[int, Outgoing] = {}
        self._bytes = 0
        self.dropped = 0
        self.published = 0

    def __len__(self) -> int:
        return len(self._waiting) + len(self._in_flight)

    def add(self, message: Outgoing) -> bool:
        """Queue ``message``; True if an older one was dropped to make room."""
        self._waiting.append(message)
        self._bytes += len(message.payload)
        dropped = False
        while len(self._waiting) > 1 and (
            len(self._waiting) > self._limit or self._bytes > self._max_bytes
        ):
            self._bytes -= len(self._waiting.popleft().payload)
            self.dropped += 1
            dropped = True
        return dropped

    def take(self) -> Outgoing | None:
        """The oldest waiting message, now in flight (None if nothing waits)."""
        if not self._waiting:
            return None
        message = self._waiting.popleft()
        self._bytes -= len(message.payload)
        self._in_flight[message.seq] = message
        return message

    def done(self, message: Outgoing) -> None:
        """``message`` was acknowledged."""
        if self._in_flight.pop(message.seq, None) is not None:
            self.published += 1

    def requeue(self) -> None:
        """Put the unacknowledged messages back in front, oldest first."""
        for seq in sorted(self._in_flight, reverse=True):
            message = self._in_flight.pop(seq)
            self._waiting.appendleft(message)
            self._bytes += len(message.payload)


class Publisher(Protocol):
    """The bridge's publishing surface as the daemon's parts use it (the router, the board,
    Home Assistant discovery): retained state, and non-retained QoS 1 messages in the lane
    the caller names (the transport never reads a payload to choose one)."""

    def set_retained(self, topic: str, payload: bytes) -> None: ...

    def publish(
        self,
        topic: str,
        payload: bytes,
        correlation_data: bytes | None = None,
        *,
        lane: LaneName = "events",
    ) -> None: ...
