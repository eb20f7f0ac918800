"""Rotation planning: which SIM of a modem (or of the gateway) should do the next action.

Pure: it sees each slot as a :class:`SlotView` (the SIM's state, usage summary and limits)
and returns a :class:`Plan`. A modem keeps its active SIM while that SIM may act. When it
may not, the planner switches at once to the eligible SIM with the most headroom for the
action. A rotation *for headroom* alone (``rebalance=True``, the ``sim/rotate`` command)
waits until the active SIM has been active ``min_dwell_s``, so SIMs do not thrash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from simbank.bank.policy import Limits, Refusal, check_call, check_sms, headroom
from simbank.bank.usage import Usage, UsageKind

USABLE_STATES = frozenset({"available", "active", "resting"})
#: States of the active SIM that make its modem move to a usable SIM in another slot on its
#: own, without waiting for traffic: final verdicts (``locked``: PUK, or a PIN the gateway
#: cannot enter; ``blocked``) and an operator's ``disabled``. An empty slot, or a card that
#: will not even give its ICCID, is left as well (``absent``). A card read as not ready for
#: a moment is not (it is read again when it comes up), nor is a ``suspected`` one: its
#: evidence is still being re-verified where it is.
CANNOT_SERVE_STATES = frozenset({"locked", "blocked", "disabled"})


@dataclass(frozen=True, slots=True)
class SlotView:
    """One slot as the planner sees it (``iccid`` None: empty or unread)."""

    slot: int
    iccid: str | None
    state: str
    usage: Usage | None = None
    limits: Limits | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """What is about to be done. The destination facts are gateway-wide, so shared."""

    kind: UsageKind
    max_duration_s: int = 0
    #: An SMS: how many segments (each one SMS against the quota) the text goes out as.
    segments: int = 1
    destination_calls_today: int = 0
    on_dnc: bool = False
    circuit_open: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """``stay`` on the active slot, ``switch`` to ``slot``, ``wait`` for the active slot until
    ``wait_until`` (cheaper than a switch and a re-registration), or ``none`` eligible."""

    decision: Literal["stay", "switch", "wait", "none"]
    slot: int | None
    headroom: float = 0.0
    refusals: Mapping[int, Refusal] = field(default_factory=dict)
    unusable: Mapping[int, str] = field(default_factory=dict)
    wait_until: float | None = None

    @property
    def frees_at(self) -> float | None:
        """The earliest time a refused slot may act again (None: unknown or never)."""
        times = [r.frees_at for r in self.refusals.values() if r.frees_at is not None]
        return min(times, default=None)

    @property
    def error_code(self) -> str:
        """For a ``none`` plan: the refusal code every candidate shares, or ``no_eligible_sim``.

        The candidates are the usable SIMs: a blocked or locked card beside two SIMs over
        their hourly quota leaves the request ``quota_exhausted`` (it frees when they do),
        not ``no_eligible_sim``. No usable SIM at all, or candidates refused for different
        reasons, is ``no_eligible_sim``.
        """
        codes = {r.code for r in self.refusals.values()}
        return codes.pop() if len(codes) == 1 else "no_eligible_sim"


@dataclass(frozen=True, slots=True)
class ModemView:
    """A modem ready to act: its slots and which one is active since when."""

    modem: str
    slots: Sequence[SlotView]
    active_slot: int | None
    active_since: float | None = None


@dataclass(frozen=True, slots=True)
class GatewayPlan:
    """Where a modem-less call/SMS goes (``modem`` None: nowhere), with every modem's plan."""

    modem: str | None
    plan: Plan
    plans: Mapping[str, Plan]

    @property
    def error_code(self) -> str:
        """Why nothing can act: the code every modem with candidates shares (modems without a
        usable SIM have no say), or ``no_eligible_sim``."""
        codes = {p.error_code for p in self.plans.values() if p.refusals}
        return codes.pop() if len(codes) == 1 else "no_eligible_sim"


def refusal_for(view: SlotView, action: Action, now: float, tz: ZoneInfo) -> Refusal | None:
    """The policy's answer for one usable slot (which must have usage and limits)."""
    assert view.usage is not None
    assert view.limits is not None
    if action.kind is UsageKind.CALL:
        return check_call(
            view.limits,
            view.usage,
            now,
            tz,
            max_duration_s=action.max_duration_s,
            destination_calls_today=action.destination_calls_today,
            on_dnc=action.on_dnc,
            circuit_open=action.circuit_open,
        )
    if action.kind is UsageKind.SMS:
        return check_sms(
            view.limits,
            view.usage,
            now,
            tz,
            on_dnc=action.on_dnc,
            circuit_open=action.circuit_open,
            segments=action.segments,
        )
    return None if not action.circuit_open else Refusal("circuit_open", "traffic is paused")


def plan(
    slots: Sequence[SlotView],
    active_slot: int | None,
    active_since: float | None,
    now: float,
    *,
    tz: ZoneInfo,
    action: Action,
    min_dwell_s: float,
    rebalance: bool = False,
    wait_limit_s: float = 0.0,
) -> Plan:
    """Decide which slot of one modem does ``action``.

    When the active SIM is refused only for a moment (its minimum gap, a rest, the rolling
    hour) and may act again within ``wait_limit_s``, the plan is to ``wait`` for it: every
    switch costs a re-registration, and a SIM that re-registers before every call looks
    like exactly the kind of SIM box carriers block.
    """
    refusals: dict[int, Refusal] = {}
    unusable: dict[int, str] = {}
    room: dict[int, float] = {}
    for view in slots:
        if view.iccid is None:
            unusable[view.slot] = "empty"
        elif view.state not in USABLE_STATES:
            unusable[view.slot] = view.state
        elif view.usage is None or view.limits is None:
            unusable[view.slot] = "unknown_usage"
        elif (refusal := refusal_for(view, action, now, tz)) is not None:
            refusals[view.slot] = refusal
        else:
            room[view.slot] = headroom(view.limits, view.usage, action.kind)
    active_refusal = refusals.get(active_slot) if active_slot is not None else None
    if (
        wait_limit_s > 0
        and not rebalance
        and active_refusal is not None
        and active_refusal.code == "quota_exhausted"
        and active_refusal.frees_at is not None
        and now < active_refusal.frees_at <= now + wait_limit_s
    ):
        return Plan(
            "wait", active_slot, 0.0, refusals, unusable, wait_until=active_refusal.frees_at
        )
    others = {slot: r for slot, r in room.items() if slot != active_slot}
    best = max(others, key=lambda s: (others[s], -s), default=None)
    if active_slot in room:
        dwelt = active_since is None or now - active_since >= min_dwell_s
        better = best is not None and others[best] > room[active_slot]
        if rebalance and dwelt and better:
            assert best is not None
            return Plan("switch", best, others[best], refusals, unusable)
        return Plan("stay", active_slot, room[active_slot], refusals, unusable)
    if best is None:
        return Plan("none", None, 0.0, refusals, unusable)
    return Plan("switch", best, others[best], refusals, unusable)


@dataclass(frozen=True, slots=True)
class ServingMove:
    """A modem should leave its active slot for ``slot``: the active SIM is ``reason``."""

    slot: int
    iccid: str
    reason: str


def serving_move(view: ModemView) -> ServingMove | None:
    """Whether a ready modem, with no action asking, should move to another slot: its
    active SIM cannot serve (:data:`CANNOT_SERVE_STATES`, or its slot shows no card) while
    another slot holds a usable one. The usable SIM chosen: one not resting before a resting one, then the most call
    headroom, then the lowest slot. None: stay (the active SIM can serve, or none can).

    A modem never rests on a SIM that cannot serve while a healthy one waits in another
    slot: at startup (a PUK-locked card in the slot selected at power-on) as after a
    verdict on the card in use."""
    active = next((s for s in view.slots if s.slot == view.active_slot), None)
    if active is None:
        return None  # no slot known to be active, or one the planner does not see
    if active.iccid is None:
        reason = "absent"  # an empty slot, or a card that does not give its ICCID
    elif active.state in CANNOT_SERVE_STATES:
        reason = active.state
    else:
        return None
    candidates = [
        s
        for s in view.slots
        if s.slot != view.active_slot and s.iccid is not None and s.state in USABLE_STATES
    ]
    if not candidates:
        return None

    def rank(s: SlotView) -> tuple[bool, float, int]:
        room = (
            headroom(s.limits, s.usage, UsageKind.CALL)
            if s.limits is not None and s.usage is not None
            else 0.0
        )
        return (s.state != "resting", room, -s.slot)

    best = max(candidates, key=rank)
    assert best.iccid is not None
    return ServingMove(best.slot, best.iccid, reason)


def best_for_gateway(
    modems: Sequence[ModemView],
    now: float,
    *,
    tz: ZoneInfo,
    action: Action,
    min_dwell_s: float,
    wait_limit_s: float = 0.0,
) -> GatewayPlan:
    """Choose the modem (and slot) for an action that names no modem: a modem whose active
    SIM may act beats one that must switch first; then the most headroom; then modem id."""
    plans = {
        m.modem: plan(
            m.slots,
            m.active_slot,
            m.active_since,
            now,
            tz=tz,
            action=action,
            min_dwell_s=min_dwell_s,
            wait_limit_s=wait_limit_s,
        )
        for m in modems
    }
    cost = {"stay": 0, "wait": 1, "switch": 2}
    ranked = sorted(
        (cost[p.decision], -p.headroom, modem) for modem, p in plans.items() if p.decision != "none"
    )
    if not ranked:
        return GatewayPlan(None, Plan("none", None), plans)
    modem = ranked[0][2]
    return GatewayPlan(modem, plans[modem], plans)
