"""Circuit breaker (pure): window edges, distinct SIMs, operator resume, persistence."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simbank.bank.circuit import BlockRecord, CircuitBreaker

WINDOW = [
    # (blocks, window_s, [(iccid, at)], expected return of each record_block)
    ("second block inside the window opens", 2, 100, [("A", 0), ("B", 50)], [False, True]),
    ("exactly window_s apart still counts", 2, 100, [("A", 0), ("B", 100)], [False, True]),
    ("just outside the window does not", 2, 100, [("A", 0), ("B", 100.001)], [False, False]),
    ("the same SIM twice is one SIM", 2, 100, [("A", 0), ("A", 10)], [False, False]),
    ("one block is enough when blocks=1", 1, 100, [("A", 0)], [True]),
    (
        "only the opening block returns True",
        2,
        100,
        [("A", 0), ("B", 1), ("C", 2)],
        [False, True, False],
    ),
    (
        "old blocks fall out of the window",
        3,
        100,
        [("A", 0), ("B", 60), ("C", 120), ("D", 130)],
        [False, False, False, True],
    ),
]


@pytest.mark.parametrize(
    ("blocks", "window_s", "events", "expected"),
    [c[1:] for c in WINDOW],
    ids=[c[0] for c in WINDOW],
)
def test_window(
    blocks: int, window_s: float, events: list[tuple[str, float]], expected: list[bool]
) -> None:
    breaker = CircuitBreaker(blocks, window_s)
    assert [breaker.record_block(iccid, at) for iccid, at in events] == expected
    assert breaker.is_open == any(expected)


def test_blocks_in_window_edges() -> None:
    breaker = CircuitBreaker(5, 100)
    breaker.record_block("A", 10)
    breaker.record_block("B", 20)
    breaker.record_block("B", 30)
    assert breaker.blocks_in_window(30) == 2
    assert breaker.blocks_in_window(110) == 2  # A exactly window_s ago
    assert breaker.blocks_in_window(110.5) == 1
    assert breaker.blocks_in_window(130.5) == 0
    assert breaker.blocks_in_window(15) == 1  # blocks after `now` do not count


def test_stays_open_until_an_operator_resumes() -> None:
    breaker = CircuitBreaker(2, 100)
    breaker.record_block("A", 0)
    assert breaker.record_block("B", 10)
    assert breaker.opened_at == 10
    assert breaker.blocks_in_window(10_000) == 0
    assert breaker.is_open  # time alone never closes it
    assert not breaker.record_block("C", 10_001)
    assert breaker.opened_at == 10
    breaker.close()
    assert not breaker.is_open
    assert breaker.opened_at is None


def test_resume_starts_counting_afresh() -> None:
    breaker = CircuitBreaker(2, 100)
    breaker.record_block("A", 0)
    breaker.record_block("B", 10)
    breaker.close()
    assert not breaker.record_block("C", 20)  # A and B were acknowledged by the resume
    assert breaker.record_block("D", 30)


@pytest.mark.parametrize("opened", [False, True])
def test_state_round_trip_through_json(opened: bool) -> None:
    breaker = CircuitBreaker(3, 100)
    breaker.record_block("A", 1.5)
    breaker.record_block("B", 2.5)
    if opened:
        breaker.record_block("C", 3.5)
    state = json.loads(json.dumps(breaker.to_state()))
    again = CircuitBreaker.from_state(state, blocks=3, window_s=100)
    assert again.is_open is opened
    assert again.opened_at == breaker.opened_at
    assert again.records == breaker.records
    assert again.to_state() == breaker.to_state()


def test_restored_state_keeps_counting() -> None:
    state = {"opened_at": None, "blocks": [{"iccid": "A", "at": 0}]}
    breaker = CircuitBreaker.from_state(state, blocks=2, window_s=100)
    assert breaker.records == (BlockRecord("A", 0.0),)
    assert breaker.record_block("B", 50)


def test_restored_open_circuit_stays_open_under_new_limits() -> None:
    state = {"opened_at": 7, "blocks": []}
    breaker = CircuitBreaker.from_state(state, blocks=10, window_s=1)
    assert breaker.is_open
    assert breaker.opened_at == 7.0


@pytest.mark.parametrize(
    "state",
    [
        {"opened_at": "yesterday", "blocks": []},
        {"opened_at": None, "blocks": "A"},
        {"opened_at": None, "blocks": [{"iccid": 1, "at": 0}]},
        {"opened_at": None, "blocks": [{"iccid": "A", "at": True}]},
        {"opened_at": None, "blocks": [["A", 0]]},
    ],
)
def test_malformed_state_is_rejected(state: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        CircuitBreaker.from_state(state, blocks=2, window_s=100)


@pytest.mark.parametrize(("blocks", "window_s"), [(0, 100), (2, 0), (2, -1)])
def test_invalid_limits(blocks: int, window_s: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        CircuitBreaker(blocks, window_s)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 4),
    st.floats(1, 500, allow_nan=False),
    st.lists(st.tuples(st.sampled_from("ABCDEF"), st.floats(0, 200, allow_nan=False)), max_size=30),
)
def test_matches_a_brute_force_model(
    blocks: int, window_s: float, steps: list[tuple[str, float]]
) -> None:
    breaker = CircuitBreaker(blocks, window_s)
    now, opened = 0.0, False
    seen: list[tuple[str, float]] = []
    for iccid, dt in steps:
        now += dt
        seen.append((iccid, now))
        distinct = {i for i, at in seen if now - at <= window_s}
        should_open = not opened and len(distinct) >= blocks
        assert breaker.record_block(iccid, now) is should_open
        opened = opened or should_open
        assert breaker.is_open is opened
