"""Login pacing per peer address, on a scripted clock: pure logic."""

from __future__ import annotations

from simbank.clock import ScriptedClock
from simbank.web.throttle import LoginThrottle, peer_key


def test_a_growing_pause_after_each_refusal_capped_at_30_s() -> None:
    clock = ScriptedClock()
    throttle = LoginThrottle(clock)
    waits = []
    for _ in range(8):
        wait = throttle.reserve("192.0.2.7")
        waits.append(wait)
        clock.t += wait  # the try starts after its wait and is refused at once
        throttle.failed("192.0.2.7")
    assert waits == [0, 2, 4, 8, 16, 30, 30, 30]
    # Another address is not slowed by this one.
    assert throttle.reserve("192.0.2.8") == 0


def test_a_pause_counts_from_the_refusal() -> None:
    clock = ScriptedClock()
    throttle = LoginThrottle(clock)
    throttle.failed("192.0.2.7")
    throttle.failed("192.0.2.7")  # 2 refusals: 4 s
    clock.t += 3
    assert throttle.reserve("192.0.2.7") == 1


def test_more_sockets_buy_no_more_guesses() -> None:
    """Tries from one address queue behind each other: each waits one step more."""
    clock = ScriptedClock()
    throttle = LoginThrottle(clock)
    for _ in range(3):
        throttle.failed("192.0.2.7")  # 8 s a try
    assert [throttle.reserve("192.0.2.7") for _ in range(4)] == [8, 16, 24, 32]


def test_success_does_not_reset_and_records_expire() -> None:
    clock = ScriptedClock()
    throttle = LoginThrottle(clock, window_s=300)
    for _ in range(5):
        throttle.failed("192.0.2.7")
    clock.t += 30
    assert throttle.reserve("192.0.2.7") == 0  # the pause is over; the count stays
    throttle.failed("192.0.2.7")
    assert throttle.reserve("192.0.2.7") == 30
    clock.t += 301
    assert throttle.reserve("192.0.2.7") == 0
    assert len(throttle) == 0  # forgotten


def test_memory_is_bounded() -> None:
    clock = ScriptedClock()
    throttle = LoginThrottle(clock, max_peers=3)
    for host in range(1, 6):
        throttle.failed(f"192.0.2.{host}")
    assert len(throttle) == 3
    assert throttle.reserve("192.0.2.1") == 0  # the least recently refused went first
    assert throttle.reserve("192.0.2.5") == 2
    # Expired records make room before anything current is dropped.
    clock.t += 400
    throttle.failed("198.51.100.1")
    assert len(throttle) == 1


def test_an_ipv6_peer_counts_as_its_64() -> None:
    assert (
        peer_key("2001:db8:1:2:aaaa::1")
        == peer_key("2001:db8:1:2:bbbb::9")
        == ("2001:db8:1:2::/64")
    )
    assert peer_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert peer_key("?") == "?"
    clock = ScriptedClock()
    throttle = LoginThrottle(clock)
    throttle.failed("2001:db8:1:2::1")
    assert throttle.reserve("2001:db8:1:2::2") == 2
