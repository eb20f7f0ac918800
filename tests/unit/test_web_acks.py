"""Pairing PUBACKs with the publishes waiting for them (simbank.web.broker.AckBook): a fake
ack sequence, pure bookkeeping."""

from __future__ import annotations

import asyncio

import pytest

from simbank.web.broker import NOT_AUTHORIZED, AckBook


async def test_an_ack_goes_to_its_publish() -> None:
    book = AckBook()
    first, second = book.expect(1), book.expect(2)
    book.acked(2, 0x10)
    book.acked(1, 0)
    assert (await first, await second) == (0, 0x10)
    assert book.sizes == (0, 0)


async def test_a_late_ack_never_answers_the_next_publish_with_that_id() -> None:
    """The reviewer's case: a publish times out, its PUBACK (0x87) comes later, and paho
    reuses the id for a new publish, which must get its own ack, not the stale one."""
    book = AckBook()
    timed_out = book.expect(7)
    book.abandon(7, timed_out)  # publish_acked's ack_timeout passed
    book.acked(7, NOT_AUTHORIZED)  # the late ack: dropped
    fresh = book.expect(7)
    assert not fresh.done()
    book.acked(7, 0)
    assert await fresh == 0
    assert book.sizes == (0, 0)


async def test_a_late_ack_after_the_id_was_reused_is_dropped() -> None:
    book = AckBook()
    book.abandon(7, book.expect(7))
    fresh = book.expect(7)  # the id came round again before the old ack arrived
    book.acked(7, NOT_AUTHORIZED)  # the old publish's ack (the broker answers in order)
    assert not fresh.done()
    book.acked(7, 0)
    assert await fresh == 0


async def test_an_ack_nobody_waits_for_is_not_kept() -> None:
    book = AckBook()
    for mid in range(1, 1000):
        book.acked(mid, NOT_AUTHORIZED)
    assert book.sizes == (0, 0)
    fresh = book.expect(3)
    assert not fresh.done()
    book.acked(3, 0)
    assert await fresh == 0


async def test_abandoning_an_answered_publish_changes_nothing() -> None:
    book = AckBook()
    answered = book.expect(1)
    book.acked(1, 0)
    book.abandon(1, answered)
    assert book.sizes == (0, 0)
    assert await answered == 0


async def test_the_abandoned_ids_are_bounded() -> None:
    book = AckBook(max_abandoned=10)
    for mid in range(1, 101):
        book.abandon(mid, book.expect(mid))
    assert book.sizes == (0, 10)
    book.acked(100, NOT_AUTHORIZED)  # among the 10 remembered: dropped, and forgotten
    assert book.sizes == (0, 9)


async def test_an_id_reused_while_its_publish_still_waits_fails_that_publish() -> None:
    book = AckBook()
    old = book.expect(9)
    new = book.expect(9)
    with pytest.raises(TimeoutError, match="reused"):
        await old
    book.acked(9, NOT_AUTHORIZED)  # old's ack: dropped
    book.acked(9, 0)
    assert await asyncio.wait_for(new, 1) == 0
