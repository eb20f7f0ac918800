"""URC subscriptions and the one-shot URC wait (``UrcWaiter``), without a port."""

from __future__ import annotations

import asyncio

import pytest

from simbank.at.results import Urc
from simbank.at.subscriptions import UrcSubscriptions
from simbank.errors import AtTimeout, PortLost

CUSD = Urc("+CUSD", '+CUSD: 0,"Balance 10.00",15')


async def test_a_waiter_made_before_the_urc_gets_it_even_if_it_waits_later() -> None:
    subs = UrcSubscriptions("m1")
    with subs.waiter("+CUSD") as waiter:
        subs.deliver(CUSD)  # arrives before anybody awaits (a +CUSD right after OK)
        assert await waiter.wait(1.0) == CUSD
    assert not subs.waiters


async def test_only_the_first_matching_urc_is_taken() -> None:
    subs = UrcSubscriptions("m1")
    second = Urc("+CUSD", "+CUSD: 2")
    with subs.waiter("+CUSD", lambda u: u.text != "+CUSD: 2") as waiter:
        subs.deliver(second)
        subs.deliver(CUSD)
        subs.deliver(second)
        assert await waiter.wait(1.0) == CUSD


async def test_no_urc_is_an_at_timeout_naming_the_port_and_the_urc() -> None:
    subs = UrcSubscriptions("m1")
    with subs.waiter("+CUSD") as waiter, pytest.raises(AtTimeout, match=r"m1: no \+CUSD"):
        await waiter.wait(0.01)


async def test_a_lost_port_fails_the_waiter_and_an_unread_failure_is_not_reported() -> None:
    subs = UrcSubscriptions("m1")
    with subs.waiter("+CUSD") as waiter:
        subs.fail_waiters("lost")
        with pytest.raises(PortLost):
            await waiter.wait(1.0)
    unread = subs.waiter("+CUSD")
    subs.fail_waiters("lost")
    unread.close()  # never awaited: close() reads the error (no "never retrieved" warning)


async def test_a_predicate_error_goes_to_the_waiter() -> None:
    def broken(_urc: Urc) -> bool:
        raise RuntimeError("bad predicate")

    subs = UrcSubscriptions("m1")
    with subs.waiter("+CUSD", broken) as waiter:
        subs.deliver(CUSD)
        with pytest.raises(RuntimeError, match="bad predicate"):
            await waiter.wait(1.0)


async def test_subscribers_by_name_and_for_all_and_a_broken_one_is_skipped() -> None:
    subs = UrcSubscriptions("m1")
    named: list[Urc] = []
    everything: list[Urc] = []

    def broken(_urc: Urc) -> None:
        raise RuntimeError("subscriber bug")

    subs.subscribe("+CUSD", broken)
    unsubscribe = subs.subscribe("+CUSD", named.append)
    subs.subscribe_all(everything.append)
    subs.deliver(CUSD)
    subs.deliver(Urc("RING", "RING"))
    unsubscribe()
    subs.deliver(CUSD)
    assert named == [CUSD]
    assert everything == [CUSD, Urc("RING", "RING"), CUSD]
    await asyncio.sleep(0)
