"""What to do with a ringing inbound call: a pure function of the policy and what is known.

Three policy actions (``[policies.<name>] inbound_action``):

- ``ignore`` — let it ring: the PBX (or whoever holds the modem's audio) answers, or nobody;
- ``reject`` — hang up after ``inbound_reject_after_rings`` rings;
- ``reject_unknown`` — only callers on the allow list ring through; everyone else (a withheld
  number too) is hung up after ``inbound_reject_after_rings`` rings.

For ``reject_unknown`` the decision waits for the caller's number: it comes in a ``+CLIP``
line just after the RING, so a modem that gives caller id gets one ring of grace past the
threshold before an unseen number counts as unknown. A modem without caller id cannot tell
anyone apart: every caller is unknown there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class InboundAction(enum.StrEnum):
    """The policy's action for inbound calls."""

    IGNORE = "ignore"
    REJECT = "reject"
    REJECT_UNKNOWN = "reject_unknown"


class Verdict(enum.StrEnum):
    """What to do now with the ringing call."""

    WAIT = "wait"  # not yet: more rings, or the caller's number, to come
    RING = "ring"  # let it ring (final for this call)
    REJECT = "reject"  # hang up now


@dataclass(frozen=True, slots=True)
class Ringing:
    """What is known of the call so far.

    ``caller_seen``: a ``+CLIP`` arrived (with a number or withheld); ``allowed``: the number
    is on the allow list (False when withheld or not seen); ``caller_id``: the modem was set
    to report callers (``AT+CLIP=1`` accepted)."""

    rings: int
    caller_seen: bool = False
    allowed: bool = False
    caller_id: bool = True


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict and why (``reason`` goes into the event and the log)."""

    verdict: Verdict
    reason: str


def decide(action: InboundAction, reject_after_rings: int, call: Ringing) -> Decision:
    """The decision for ``call`` under ``action`` (``reject_after_rings`` ≥ 1)."""
    threshold = max(1, reject_after_rings)
    if action is InboundAction.IGNORE:
        return Decision(Verdict.RING, "policy_ignore")
    if action is InboundAction.REJECT:
        if call.rings >= threshold:
            return Decision(Verdict.REJECT, "policy_reject")
        return Decision(Verdict.WAIT, "counting_rings")
    # reject_unknown
    if call.caller_seen and call.allowed:
        return Decision(Verdict.RING, "allow_listed")
    known_unknown = call.caller_seen or not call.caller_id or call.rings > threshold
    if not known_unknown:
        return Decision(Verdict.WAIT, "awaiting_caller_id")
    if call.rings >= threshold:
        return Decision(Verdict.REJECT, "not_allow_listed")
    return Decision(Verdict.WAIT, "counting_rings")
