"""The SIM identity invariant (issue 11), pure: from any change of the card until its ICCID is
read back, nothing is attributed to any SIM; a read that overlapped a change is not adopted."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from simbank.bank.sim_identity import ReadToken, SimIdentity

CARDS = ["89990100000000000013", "89990100000000000021", "89990100000000000039", None]


def test_unknown_until_read_back() -> None:
    sim = SimIdentity()
    assert sim.iccid is None and not sim.known
    token = sim.begin_read()
    assert sim.read_back(token, 1, CARDS[0])
    assert sim.iccid == CARDS[0] and sim.slot == 1
    sim.changed("switch")
    assert sim.iccid is None and sim.slot is None
    assert sim.last_read == CARDS[0]  # the card we believed was there, to be told it is gone


def test_a_read_that_overlapped_a_change_is_not_adopted() -> None:
    sim = SimIdentity()
    token = sim.begin_read()
    sim.changed("urc:RDY")  # the modem rebooted while the ICCID was being read
    assert not sim.read_back(token, 1, CARDS[0])
    assert sim.iccid is None
    assert sim.read_back(sim.begin_read(), 1, CARDS[1])
    assert sim.iccid == CARDS[1]


# A step: ("switch", card) the daemon selects a slot holding ``card`` (it marks the SIM unknown
# before the command); ("swap", card) the card is swapped and the modem says so by URC before
# anything else is heard; ("read", k) an ICCID read whose answer arrives ``k`` steps later and
# describes the card that was there when the modem executed it (at once, or just before the
# answer: both happen, and in between the card may have changed).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("switch"), st.sampled_from(CARDS)),
        st.tuples(st.just("swap"), st.sampled_from(CARDS)),
        st.tuples(st.just("read"), st.tuples(st.integers(0, 2), st.booleans())),
    ),
    max_size=40,
)


@given(steps)
def test_no_sequence_attributes_anything_to_a_card_not_in_the_slot(
    plan: list[tuple[str, Any]],
) -> None:
    sim = SimIdentity()
    physical: list[str | None] = [CARDS[0]]  # the card in the active slot, as a 1-cell box
    # Reads in flight: (token, steps still to wait, the card it read if executed at once).
    pending: list[tuple[ReadToken, int, str | None]] = []

    def change(card: str | None, reason: str) -> None:
        sim.changed(reason)  # a daemon action marks first; a URC arrives before any answer
        physical[0] = card

    for kind, arg in plan:
        if kind == "switch":
            change(arg, "switch")
        elif kind == "swap":
            change(arg, "urc:+CPIN")
        else:
            wait, executed_at_once = arg
            early = physical[0] if executed_at_once else "late"
            pending.append((sim.begin_read(), wait, early))
        still = []
        for token, wait, early in pending:
            if wait == 0:
                answer = physical[0] if early == "late" else early
                sim.read_back(token, 1, answer)
            else:
                still.append((token, wait - 1, early))
        pending = still
        # The invariant: whatever may be attributed is the card really in the slot.
        if sim.iccid is not None:
            assert sim.iccid == physical[0]
        if sim.known:
            assert sim.iccid == physical[0]
