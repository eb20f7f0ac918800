"""The SIM lifecycle as the contract shows it: pure rules over the ledger's state, what the
modems show and the SIM's own quota.

- The ledger keeps *sticky* states that an operator or the block detector set (``blocked``,
  ``suspected``, ``locked``, ``disabled``): they override whatever a modem shows.
- Otherwise a SIM is ``absent`` (in no modem), ``active`` (the registered card of a ready
  modem) or ``available``; an available or active SIM whose own quota stops it calling now
  is shown ``resting``.
- The planner sees a SIM the modem could not unlock as ``locked``, an unreadable one as
  ``absent``.
- Operator commands (``sim/disable``, ``sim/enable``, ``sim/release``) move a SIM between
  states by :func:`operator_transition`, which refuses the moves the contract forbids.

States are the contract's :data:`~simbank.contract.SimStateName`. No I/O, no clock.
"""

from __future__ import annotations

from typing import Final, Literal
from zoneinfo import ZoneInfo

from simbank.bank.policy import Limits, check_quota, quiet_flips_at, quiet_until
from simbank.bank.usage import HOUR_S, Usage
from simbank.contract import SimStateName
from simbank.errors import Refused

#: Ledger states an operator or the detector set; they override what the modem shows.
STICKY_STATES: frozenset[SimStateName] = frozenset({"blocked", "suspected", "locked", "disabled"})
#: The detector's quarantine: shown with its evidence, lifted only by ``sim/release``.
QUARANTINE_STATES: frozenset[SimStateName] = frozenset({"blocked", "suspected", "locked"})
#: States in which a SIM may not even send a USSD code.
NO_USSD_STATES: frozenset[SimStateName] = frozenset({"blocked", "disabled"})
#: States a SIM's rest is shown on (a sticky state says more than "resting").
_RESTABLE: frozenset[SimStateName] = frozenset({"available", "active"})
_STICKY_BY_NAME: dict[str, SimStateName] = {state: state for state in STICKY_STATES}

#: ``SimStatus`` values (the drivers' enum is a ``StrEnum``; bank/ does not import drivers/).
_READY = "ready"
_LOCKED = frozenset({"pin", "puk"})

Operation = Literal["disable", "enable", "release"]


def sticky(ledger_state: str | None) -> SimStateName | None:
    """The ledger's state if it is sticky (it then overrides the modems), else None."""
    return None if ledger_state is None else _STICKY_BY_NAME.get(ledger_state)


def contract_state(
    ledger_state: str | None,
    *,
    placed: bool,
    serving: bool,
    registered: bool,
    status: str | None = None,
) -> SimStateName:
    """The state ``sim/<iccid>`` shows, before any rest.

    ``placed``: the SIM sits in a known modem slot; ``serving``: it is the card of that
    modem's active slot and the modem is ready; ``registered``: that modem is registered;
    ``status``: the card's own answer to ``AT+CPIN?`` when last read (a card that wants its
    PIN, and was given none, is ``locked`` as the planner sees it, not ``available``).
    """
    state = sticky(ledger_state)
    if state is not None:
        return state
    if not placed:
        return "absent"
    if status in _LOCKED:
        return "locked"
    return "active" if serving and registered else "available"


def shown_state(state: SimStateName, *, resting: bool) -> SimStateName:
    """A SIM at rest is shown ``resting``; a sticky or absent state stays what it is."""
    return "resting" if resting and state in _RESTABLE else state


def plan_state(ledger_state: str | None, status: str | None) -> SimStateName:
    """The state the rotation planner sees: sticky ledger states first, then the SIM's own
    status as ``AT+CPIN?`` read it (the drivers' ``SimStatus`` values: PIN/PUK: ``locked``;
    absent, not ready or unreadable: ``absent``; None: not read yet)."""
    state = sticky(ledger_state)
    if state is not None:
        return state
    if status is not None and status != _READY:
        return "locked" if status in _LOCKED else "absent"
    return "available"


def is_resting(limits: Limits, usage: Usage, now: float, tz: ZoneInfo) -> bool:
    """Whether the SIM's *own* quota stops it calling now (its call gap, its rest, the rolling
    hour, the day's or the billing month's calls or call seconds): the policy refuses even the
    shortest call, to a destination not yet called today, for a quota reason.

    Gateway-wide stops (quiet hours, circuit, do-not-call) are not a SIM's rest: in quiet
    hours every SIM is refused alike, and none is shown resting.
    """
    return rest_reason(limits, usage, now, tz) is not None


def rest_reason(limits: Limits, usage: Usage, now: float, tz: ZoneInfo) -> str | None:
    """The limit that makes the SIM rest now (``calls_per_day``, ``balance_low``, …; see
    :func:`is_resting`), or None when it does not rest."""
    if quiet_until(limits.quiet_hours, now, tz) is not None:
        return None
    refusal = check_quota(limits, usage, now, max_duration_s=1)
    return None if refusal is None else refusal.limit


#: The longest a SIM's shown usage goes without being looked at again (gateway-clock
#: seconds): what the clock changes and :func:`next_refresh` does not foresee (a clock
#: stepped back) is shown within this.
REFRESH_MAX_S: Final = 300.0


def next_refresh(limits: Limits, usage: Usage, now: float, tz: ZoneInfo) -> float:
    """When the SIM's ``sim/<iccid>`` payload next changes by the clock alone, with no booking:
    the next local midnight (the day's counts start again at 0), the billing month's end, the
    oldest call of the rolling hour leaving it, the end of its rest, quiet hours beginning or
    ending (a SIM is never shown resting in them); at most :data:`REFRESH_MAX_S` ahead."""
    times = [usage.day_end, now + REFRESH_MAX_S]
    if usage.month_end is not None:
        times.append(usage.month_end)
    if usage.hour_calls:
        times.append(usage.hour_calls[0] + HOUR_S)
    refusal = check_quota(limits, usage, now, max_duration_s=1)
    if refusal is not None and refusal.frees_at is not None:
        times.append(refusal.frees_at)
    flips = quiet_flips_at(limits.quiet_hours, now, tz)
    if flips is not None:
        times.append(flips)
    return min(t for t in times if t > now)  # now + REFRESH_MAX_S is always among them


#: A rest too short to tell anyone about: the gap every SIM keeps between two calls.
MOMENTARY_RESTS: Final = frozenset({"min_call_gap_s"})


def announces_quota_exhausted(
    state: SimStateName, *, reason: str | None, announced: str | None
) -> bool:
    """After a use: tell the operator the SIM ran out of quota — once per rest (``announced``:
    the limit last told for this SIM, None since it last served), never for the gap between
    two calls, never for a blocked SIM."""
    return (
        state != "blocked"
        and reason is not None
        and reason not in MOMENTARY_RESTS
        and reason != announced
    )


def recovered(ledger_state: str | None, reason: str | None, detector_state: str | None) -> bool:
    """A SIM suspected only of searching forever is available again once the detector has
    dropped it (it registered after all). Any other suspicion waits for an operator."""
    return ledger_state == "suspected" and reason == "stuck_searching" and detector_state is None


def operator_transition(iccid: str, state: SimStateName, operation: Operation) -> SimStateName:
    """The ledger state an operator's command moves a SIM in ``state`` to; raises
    ``Refused("not_permitted")`` for a move the contract forbids.

    - ``disable``: anything but a blocked SIM (it stays quarantined until released);
    - ``enable``: only a disabled SIM, back to ``available``;
    - ``release``: only a quarantined SIM (blocked, suspected, locked), to ``available``.
    """
    if operation == "disable":
        if state == "blocked":
            raise Refused("not_permitted", "a blocked SIM stays quarantined until released")
        return "disabled"
    if operation == "enable":
        if state != "disabled":
            raise Refused("not_permitted", f"SIM {iccid} is {state}, not disabled")
        return "available"
    if state not in QUARANTINE_STATES:
        raise Refused("not_permitted", f"SIM {iccid} is {state}: nothing to release")
    return "available"


def ussd_refusal(iccid: str, state: SimStateName) -> Refused | None:
    """Why a SIM in ``state`` may not send a USSD code (None: it may)."""
    if state in NO_USSD_STATES:
        return Refused("not_permitted", f"SIM {iccid} is {state}")
    return None
