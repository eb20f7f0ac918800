"""The bridge's bounded queues: outgoing messages by kind, and the incoming requests."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import aiomqtt

from simbank.contract import ErrorResponse

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


class Inbox(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's incoming queue, bounded in messages and bytes. ``admit`` sees every message
    first and may refuse it; one that does not fit is dropped and reported to ``dropped``:
    ``put_nowait`` never raises (aiomqtt would log a warning for each message, which in a
    flood is a flood of its own)."""

    def __init__(
        self,
        admit: Callable[[aiomqtt.Message], bool],
        dropped: Callable[[], None],
        maxsize: int = 0,
    ) -> None:
        super().__init__(maxsize)
        self._admit = admit
        self._dropped = dropped
        self.bytes = 0

    def put_nowait(self, item: aiomqtt.Message) -> None:
        if not self._admit(item):
            return
        if self.full() or self.bytes + payload_size(item.payload) > INBOUND_QUEUE_BYTES:
            self._dropped()
            return
        super().put_nowait(item)

    def _put(self, item: aiomqtt.Message) -> None:
        self.bytes += payload_size(item.payload)
        super()._put(item)

    def _get(self) -> aiomqtt.Message:
        item = super()._get()
        self.bytes -= payload_size(item.payload)
        return item


def payload_size(payload: object) -> int:
    return len(payload) if isinstance(payload, bytes | bytearray) else 0


def raw_payload(payload: object) -> bytes:
    return bytes(payload) if isinstance(payload, bytes | bytearray) else str(payload).encode()


def _busy_prefix() -> bytes:
    """How every ``busy`` answer starts (taken from the contract's own serialisation)."""
    sample = ErrorResponse(code="busy", error="-").to_json()
    return sample[: sample.index(b'"busy"') + len(b'"busy"')]


BUSY_PREFIX = _busy_prefix()
OK_PREFIX = b'{"status":"ok"'
ERROR_PREFIX = b'{"status":"error"'
#: Commands whose answers are only information (simbank.daemon.router.READ_ONLY).
READ_ONLY_COMMANDS = frozenset({"status", "sim/report"})
