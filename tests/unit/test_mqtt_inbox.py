"""The bridge's inbox (aiomqtt's incoming queue): bounded in messages and bytes, admission
first, drops counted and never raised, bytes accounted on every way out."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.contract import MAX_REQUEST_BYTES, ErrorResponse, oversize_refusal
from simbank.mqtt.inbox import Inbox


def _message(payload: bytes, topic: str = "t/request/status") -> aiomqtt.Message:
    return aiomqtt.Message(topic, payload, qos=1, retain=False, mid=1, properties=None)


class Counts:
    def __init__(self, refuse: bytes | None = None) -> None:
        self.refuse = refuse
        self.admitted: list[bytes] = []
        self.dropped = 0

    def admit(self, message: aiomqtt.Message) -> bool:
        assert isinstance(message.payload, bytes)
        self.admitted.append(message.payload)
        return message.payload != self.refuse

    def drop(self) -> None:
        self.dropped += 1


@pytest.mark.parametrize(
    ("maxsize", "max_bytes", "payloads", "kept", "dropped"),
    [
        (0, 100, [b"a", b"b", b"c"], [b"a", b"b", b"c"], 0),  # unbounded in count
        (2, 100, [b"a", b"b", b"c"], [b"a", b"b"], 1),  # the newest does not fit
        (0, 5, [b"aa", b"bb", b"cc"], [b"aa", b"bb"], 1),  # bytes: 6 > 5
        (0, 4, [b"aa", b"bbb", b"cc"], [b"aa", b"cc"], 1),  # a smaller one still fits
        (0, 4, [b"aaaaa"], [], 1),  # larger than the whole byte bound
        (1, 100, [b"", b""], [b""], 1),  # empty payloads count as messages
    ],
)
def test_bounds(
    maxsize: int, max_bytes: int, payloads: list[bytes], kept: list[bytes], dropped: int
) -> None:
    counts = Counts()
    inbox = Inbox(counts.admit, counts.drop, maxsize, max_bytes=max_bytes)
    for payload in payloads:
        inbox.put_nowait(_message(payload))  # never raises
    assert counts.dropped == dropped
    assert inbox.qsize() == len(kept)
    assert inbox.bytes == sum(map(len, kept))
    out = [inbox.get_nowait().payload for _ in kept]
    assert out == kept
    assert inbox.empty()
    assert inbox.bytes == 0


def test_a_refused_message_is_neither_queued_nor_counted_as_dropped() -> None:
    counts = Counts(refuse=b"no")
    inbox = Inbox(counts.admit, counts.drop, 10)
    for payload in (b"yes", b"no", b"yes again"):
        inbox.put_nowait(_message(payload))
    assert counts.admitted == [b"yes", b"no", b"yes again"]  # admission sees every message
    assert (inbox.qsize(), counts.dropped, inbox.bytes) == (2, 0, len(b"yesyes again"))


def test_get_nowait_on_an_empty_inbox_raises_queue_empty() -> None:
    inbox = Inbox(lambda _: True, lambda: None)
    with pytest.raises(asyncio.QueueEmpty):
        inbox.get_nowait()


async def test_get_waits_for_a_message_and_accounts_its_bytes() -> None:
    inbox = Inbox(lambda _: True, lambda: None, 4)
    getter = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    assert not getter.done()
    inbox.put_nowait(_message(b"hello"))
    assert inbox.bytes == 5
    message = await getter
    assert (message.payload, inbox.bytes, inbox.qsize()) == (b"hello", 0, 0)


async def test_a_cancelled_get_takes_nothing() -> None:
    inbox = Inbox(lambda _: True, lambda: None, 4)
    getter = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    inbox.put_nowait(_message(b"kept"))
    assert (inbox.qsize(), inbox.bytes) == (1, 4)


# Operations: a payload to put, or None to take one (when any waits).
OPS = st.lists(st.one_of(st.none(), st.binary(max_size=40)), max_size=60)


@given(ops=OPS, maxsize=st.integers(0, 8), max_bytes=st.integers(0, 120))
def test_bounds_hold_and_nothing_is_lost_unseen(
    ops: list[bytes | None], maxsize: int, max_bytes: int
) -> None:
    """Whatever the sequence of puts and gets: the inbox keeps to both bounds, ``bytes`` is
    the size of what waits, messages come out in the order they went in, and every message
    put is either taken, still waiting or counted as dropped."""
    counts = Counts()
    inbox = Inbox(counts.admit, counts.drop, maxsize, max_bytes=max_bytes)
    model: list[bytes] = []
    taken = 0
    for op in ops:
        if op is None:
            if model:
                assert inbox.get_nowait().payload == model.pop(0)
                taken += 1
            continue
        fits = (maxsize == 0 or len(model) < maxsize) and sum(map(len, model)) + len(
            op
        ) <= max_bytes
        inbox.put_nowait(_message(op))
        if fits:
            model.append(op)
        assert inbox.qsize() == len(model)
        assert inbox.bytes == sum(map(len, model)) <= max_bytes
        assert maxsize == 0 or inbox.qsize() <= maxsize
    puts = sum(op is not None for op in ops)
    assert taken + inbox.qsize() + counts.dropped == puts


@pytest.mark.parametrize(
    ("size", "refused"),
    [(0, False), (MAX_REQUEST_BYTES, False), (MAX_REQUEST_BYTES + 1, True), (10**6, True)],
)
def test_oversize_refusal_is_the_contract_validation_error(size: int, refused: bool) -> None:
    answer = oversize_refusal(size)
    if not refused:
        assert answer is None
        return
    assert (
        answer
        == ErrorResponse.model_validate(
            {
                "code": "validation_error",
                "error": f"payload too large ({size} > {MAX_REQUEST_BYTES} bytes)",
                "transaction": None,
            }
        ).to_json()
    )
