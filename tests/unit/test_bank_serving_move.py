"""``serving_move``: a modem leaves a SIM that cannot serve for a usable one in another slot,
and otherwise stays (no move without a usable SIM to go to, never away from a usable one)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simbank.bank.policy import Limits
from simbank.bank.rotation import (
    CANNOT_SERVE_STATES,
    USABLE_STATES,
    ModemView,
    ServingMove,
    SlotView,
    serving_move,
)
from simbank.bank.usage import Usage

NOW = 1_780_000_000.0
LIMITS = Limits(calls_per_hour=10, calls_per_day=10, call_seconds_per_day=1000, sms_per_day=10)


def used(calls: int = 0) -> Usage:
    return Usage(
        NOW, NOW - 3600, NOW + 3600, hour_calls=(NOW - 100,) * calls, calls_day=calls,
        call_seconds_day=60 * calls,
    )  # fmt: skip


def slot(n: int, state: str = "available", calls: int = 0, *, card: bool = True) -> SlotView:
    if not card:
        return SlotView(n, None, "absent")
    return SlotView(n, f"89990100{n:012d}", state, used(calls), LIMITS)


def view(active: int | None, *slots: SlotView) -> ModemView:
    return ModemView("m1", slots, active)


@pytest.mark.parametrize(
    ("name", "modem", "expected"),
    [
        ("PUK-locked active, healthy other", view(1, slot(1, "locked"), slot(2)), (2, "locked")),
        ("blocked active", view(2, slot(1), slot(2, "blocked")), (1, "blocked")),
        ("disabled by the operator", view(1, slot(1, "disabled"), slot(2)), (2, "disabled")),
        ("empty active slot", view(1, slot(1, card=False), slot(2)), (2, "absent")),
        ("a card read not ready stays", view(1, slot(1, "absent"), slot(2)), None),
        ("a resting SIM still serves later", view(1, slot(1, "locked"), slot(2, "resting")),
         (2, "locked")),
        ("not resting beats resting", view(1, slot(1, "locked"), slot(2, "resting"), slot(3)),
         (3, "locked")),
        ("more headroom wins", view(1, slot(1, "blocked"), slot(2, calls=8), slot(3, calls=2)),
         (3, "blocked")),
        ("tie: the lowest slot", view(3, slot(1), slot(2), slot(3, "locked")), (1, "locked")),
        ("healthy active stays", view(1, slot(1, "active"), slot(2)), None),
        ("resting active stays", view(1, slot(1, "resting"), slot(2)), None),
        ("suspected is re-verified where it is", view(1, slot(1, "suspected"), slot(2)), None),
        ("nothing usable elsewhere", view(1, slot(1, "locked"), slot(2, "blocked")), None),
        ("other slot not visited yet", view(1, slot(1, "locked"), slot(2, card=False)), None),
        ("single slot", view(1, slot(1, "locked")), None),
        ("active slot unknown", view(None, slot(1, "locked"), slot(2)), None),
    ],
)  # fmt: skip
def test_serving_move(name: str, modem: ModemView, expected: tuple[int, str] | None) -> None:
    move = serving_move(modem)
    if expected is None:
        assert move is None, name
        return
    assert move is not None, name
    assert (move.slot, move.reason) == expected, name
    chosen = next(s for s in modem.slots if s.slot == move.slot)
    assert move.iccid == chosen.iccid


STATES = sorted(USABLE_STATES | CANNOT_SERVE_STATES | {"suspected", "absent"})


@given(
    states=st.lists(st.sampled_from(STATES), min_size=1, max_size=4),
    active=st.integers(min_value=1, max_value=4),
)
def test_moves_only_from_a_sim_that_cannot_serve_to_one_that_can(
    states: list[str], active: int
) -> None:
    slots = [slot(n, state) for n, state in enumerate(states, start=1)]
    move = serving_move(view(active, *slots))
    by_slot = {s.slot: s for s in slots}
    if move is None:
        # Staying is right: the active SIM serves, or nothing else can.
        assert (
            active not in by_slot
            or by_slot[active].state not in CANNOT_SERVE_STATES
            or not any(s.state in USABLE_STATES for s in slots if s.slot != active)
        )
        return
    assert isinstance(move, ServingMove)
    assert by_slot[active].state in CANNOT_SERVE_STATES
    assert move.slot != active
    assert by_slot[move.slot].state in USABLE_STATES
    # And from there, never straight back: no ping-pong between two slots.
    after = view(move.slot, *slots)
    assert serving_move(after) is None
