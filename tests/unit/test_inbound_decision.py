"""The pure inbound-call decision (``simbank.bank.inbound.decide``)."""

from __future__ import annotations

import pytest

from simbank.bank.inbound import InboundAction, Ringing, Verdict, decide

IGNORE, REJECT, UNKNOWN = InboundAction.IGNORE, InboundAction.REJECT, InboundAction.REJECT_UNKNOWN
W, R, X = Verdict.WAIT, Verdict.RING, Verdict.REJECT


@pytest.mark.parametrize(
    ("action", "after", "call", "verdict", "reason"),
    [
        (IGNORE, 1, Ringing(1), R, "policy_ignore"),
        (IGNORE, 1, Ringing(9, caller_seen=True), R, "policy_ignore"),
        (REJECT, 1, Ringing(1), X, "policy_reject"),
        (REJECT, 3, Ringing(2, caller_seen=True, allowed=True), W, "counting_rings"),
        (REJECT, 3, Ringing(3), X, "policy_reject"),
        (REJECT, 0, Ringing(1), X, "policy_reject"),  # at least one ring, whatever the value
        # reject_unknown: an allow-listed caller rings through at once
        (UNKNOWN, 1, Ringing(1, caller_seen=True, allowed=True), R, "allow_listed"),
        # ... anyone else is rejected after the rings, once their number was seen
        (UNKNOWN, 1, Ringing(1, caller_seen=True), X, "not_allow_listed"),
        (UNKNOWN, 2, Ringing(1, caller_seen=True), W, "counting_rings"),
        (UNKNOWN, 2, Ringing(2, caller_seen=True), X, "not_allow_listed"),
        # the number has not come yet: one ring of grace past the threshold
        (UNKNOWN, 1, Ringing(1), W, "awaiting_caller_id"),
        (UNKNOWN, 1, Ringing(2), X, "not_allow_listed"),
        # a modem without caller id cannot tell anyone apart
        (UNKNOWN, 1, Ringing(1, caller_id=False), X, "not_allow_listed"),
        (UNKNOWN, 2, Ringing(1, caller_id=False), W, "counting_rings"),
    ],
)
def test_decisions(
    action: InboundAction, after: int, call: Ringing, verdict: Verdict, reason: str
) -> None:
    decision = decide(action, after, call)
    assert (decision.verdict, decision.reason) == (verdict, reason)


@pytest.mark.parametrize("after", [1, 2, 5])
def test_no_policy_ever_rejects_an_allow_listed_caller_under_reject_unknown(after: int) -> None:
    for rings in range(1, 12):
        call = Ringing(rings, caller_seen=True, allowed=True)
        assert decide(UNKNOWN, after, call).verdict is R


def test_reject_unknown_decides_by_the_grace_ring_at_the_latest() -> None:
    """Waiting for the number never lets an unknown caller ring on for ever."""
    for after in range(1, 6):
        assert decide(UNKNOWN, after, Ringing(after + 1)).verdict is X
