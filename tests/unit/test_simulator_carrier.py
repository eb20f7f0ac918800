"""The carrier model's hidden limits (pure, with a virtual clock)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from simbank.simulator.carrier import BlockAction, Carrier, CarrierLimits

ICCID = "89990100000000000013"


class VirtualClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_calls_per_hour_blocks_the_extra_call_and_notifies() -> None:
    clock = VirtualClock()
    seen: list[str] = []
    carrier = Carrier({"test": CarrierLimits(calls_per_hour=3)}, clock, seen.append)
    for _ in range(3):
        assert carrier.call_attempt(ICCID, "test") is None
        clock.t += 60
    block = carrier.call_attempt(ICCID, "test")
    assert block is not None
    assert block.reason == "calls_per_hour"
    assert block.action is BlockAction.DENY
    assert block.cause == 7
    assert seen == [ICCID]
    assert carrier.stats.calls_by_iccid[ICCID] == 4


def test_hour_window_rolls() -> None:
    clock = VirtualClock()
    carrier = Carrier({"test": CarrierLimits(calls_per_hour=2)}, clock)
    for _ in range(10):
        assert carrier.call_attempt(ICCID, "test") is None
        clock.t += 1800.1
    assert not carrier.is_blocked(ICCID)


def test_min_gap_bar_and_sms_limit() -> None:
    clock = VirtualClock()
    limits = CarrierLimits(min_call_gap_s=30, sms_per_day=2, action=BlockAction.BAR)
    carrier = Carrier({"op": limits}, clock)
    assert carrier.call_attempt(ICCID, "op") is None
    clock.t += 10
    block = carrier.call_attempt(ICCID, "op")
    assert block is not None
    assert block.cause == 8
    assert block.reason == "min_call_gap"
    other = "89990100000000000021"
    assert carrier.sms_attempt(other, "op") is None
    assert carrier.sms_attempt(other, "op") is None
    sms_block = carrier.sms_attempt(other, "op")
    assert sms_block is not None
    assert sms_block.reason == "sms_per_day"
    carrier.unblock(other)
    assert not carrier.is_blocked(other)


def test_unknown_operator_is_unlimited() -> None:
    carrier = Carrier({}, VirtualClock())
    for _ in range(1000):
        assert carrier.call_attempt(ICCID, "nobody") is None


@given(st.lists(st.integers(min_value=0, max_value=4000), min_size=1, max_size=40))
def test_spaced_calls_under_the_limits_never_block(gaps: list[int]) -> None:
    clock = VirtualClock()
    carrier = Carrier({"t": CarrierLimits(calls_per_hour=2, min_call_gap_s=1800)}, clock)
    for gap in gaps:
        clock.t += 1800 + gap
        carrier.call_attempt(ICCID, "t")
    assert not carrier.is_blocked(ICCID)
