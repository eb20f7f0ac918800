"""Concatenated parts → one message (simbank.sms.reassembly): order, duplicates, timeout on
the caller's time, state through plain data (a restart between parts)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from simbank.sms.reassembly import Part, Reassembler

SENDER = "+447700900123"


def _parts(text: str, size: int, reference: int = 9) -> list[Part]:
    chunks = [text[n : n + size] for n in range(0, len(text), size)] or [""]
    return [Part(SENDER, reference, len(chunks), n + 1, c) for n, c in enumerate(chunks)]


def test_parts_in_any_order_make_one_message_once() -> None:
    parts = _parts("abcdefghi", 3)
    box = Reassembler()
    assert box.add(parts[2], now=0) is None
    assert box.add(parts[0], now=1) is None
    assert box.add(parts[0], now=2) is None  # a duplicate is ignored
    whole = box.add(parts[1], now=3)
    assert whole is not None
    assert whole.text == "abcdefghi"
    assert whole.complete
    assert whole.first_seen == 0
    assert len(box) == 0
    assert box.add(parts[1], now=4) is None  # a repeat after completion: not a second message


def test_groups_are_kept_apart_by_sender_reference_and_total() -> None:
    box = Reassembler()
    assert box.add(Part(SENDER, 1, 2, 1, "a"), 0) is None
    assert box.add(Part("+15550100", 1, 2, 2, "X"), 0) is None
    assert box.add(Part(SENDER, 2, 2, 2, "Y"), 0) is None
    assert box.add(Part(SENDER, 1, 3, 2, "Z"), 0) is None
    whole = box.add(Part(SENDER, 1, 2, 2, "b"), 0)
    assert whole is not None
    assert whole.text == "ab"
    assert len(box) == 3


def test_timeout_hands_out_what_arrived() -> None:
    box = Reassembler(timeout_s=60)
    box.add(Part(SENDER, 5, 3, 1, "one "), now=100)
    box.add(Part(SENDER, 5, 3, 3, "three"), now=120)
    assert box.expire(now=159) == []
    (partial,) = box.expire(now=160)
    assert not partial.complete
    assert partial.sequences == (1, 3)
    assert partial.text == "one three"
    assert box.add(Part(SENDER, 5, 3, 2, "two "), now=161) is None  # too late: given up
    box.expire(now=221)
    assert box.add(Part(SENDER, 5, 3, 2, "two "), now=222) is None  # a new group starts


def test_state_survives_a_restart_as_json() -> None:
    box = Reassembler(timeout_s=600)
    parts = _parts("first second third", 6)
    box.add(parts[0], now=10)
    box.add(parts[1], now=11)
    restored = Reassembler.from_data(json.loads(json.dumps(box.to_data())))
    assert list(restored.parts()) == parts[:2]
    whole = restored.add(parts[2], now=12)
    assert whole is not None
    assert whole.text == "first second third"
    assert whole.first_seen == 10


def test_a_sequence_outside_the_total_is_refused() -> None:
    box = Reassembler()
    try:
        box.add(Part(SENDER, 1, 2, 3, "x"), 0)
    except ValueError:
        return
    raise AssertionError("sequence 3 of 2 accepted")


@given(st.text(max_size=60), st.integers(1, 9), st.randoms(use_true_random=False), st.booleans())
def test_any_order_with_repeats_gives_the_text_once(
    text: str, size: int, rng: object, restart: bool
) -> None:
    parts = _parts(text, size)
    shuffled = parts + parts[: len(parts) // 2]
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    box = Reassembler()
    done = []
    for n, part in enumerate(shuffled):
        if restart and n == 1:
            box = Reassembler.from_data(box.to_data())
        whole = box.add(part, now=n)
        if whole is not None:
            done.append(whole.text)
    assert done == [text]
