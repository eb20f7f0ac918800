"""What a gateway can do now: per action, the SIMs its policy lets act and when the next
refused one frees up (the retained ``capacity`` summary a fleet client picks a gateway by).

Pure: it asks :func:`simbank.bank.rotation.plan` — the very rules a request is planned by —
about each ready modem, for a nominal action (a call of one second to a destination not
called today, not on the do-not-call list; one SMS segment). A SIM is *eligible* when that
plan neither refuses it (quotas, rest, quiet hours, the circuit or a pause) nor finds it
unusable (blocked, disabled, locked, suspected, absent). No quota arithmetic of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from simbank.bank.rotation import Action, ModemView, plan
from simbank.bank.usage import UsageKind

#: The nominal action asked for each action the summary covers: the shortest call to a fresh
#: destination, one SMS segment. A longer call (or a text of several segments) can still be
#: refused by a SIM counted here: the request's own refusal then says so.
NOMINAL: Mapping[str, Action] = {
    "call": Action(UsageKind.CALL, max_duration_s=1),
    "sms": Action(UsageKind.SMS, segments=1),
}


@dataclass(frozen=True, slots=True)
class ActionCapacity:
    """One action's room on the gateway."""

    #: SIMs on ready modems that the policy lets do the action now.
    eligible: int
    #: Ready modems, not busy, holding at least one such SIM: how many could start one now.
    modems: int
    #: The earliest epoch second a SIM refused now (on a ready modem) may act again: the end
    #: of a rest, a quota window, quiet hours. None: none is refused, or none frees by itself
    #: (a stopped circuit, a paused gateway, a used-up limit that never frees).
    next_free_at: float | None


@dataclass(frozen=True, slots=True)
class GatewayCapacity:
    """The whole summary, before it becomes the contract's payload."""

    modems_ready: int
    modems_busy: int
    traffic_stopped: bool
    actions: Mapping[str, ActionCapacity]

    @property
    def next_change_at(self) -> float | None:
        """When the summary changes by the clock alone (the first ``next_free_at``)."""
        times = [a.next_free_at for a in self.actions.values() if a.next_free_at is not None]
        return min(times, default=None)


def action_capacity(
    modems: Sequence[ModemView],
    busy: frozenset[str],
    now: float,
    *,
    tz: ZoneInfo,
    action: Action,
) -> ActionCapacity:
    """How many SIMs of ``modems`` (the ready ones) may do ``action`` now; ``busy``: modems
    that cannot start it now (their lock taken: a call, an open PBX authorization, a switch;
    for a call, also a call ringing or live on them)."""
    eligible = 0
    free_modems = 0
    frees: list[float] = []
    for view in modems:
        decision = plan(
            view.slots,
            view.active_slot,
            view.active_since,
            now,
            tz=tz,
            action=action,
            min_dwell_s=0.0,
        )
        able = [
            s
            for s in view.slots
            if s.slot not in decision.refusals and s.slot not in decision.unusable
        ]
        eligible += len(able)
        if able and view.modem not in busy:
            free_modems += 1
        if decision.frees_at is not None:
            frees.append(decision.frees_at)
    return ActionCapacity(eligible, free_modems, min(frees, default=None))


def gateway_capacity(
    modems: Sequence[ModemView],
    busy: frozenset[str],
    now: float,
    *,
    tz: ZoneInfo,
    traffic_stopped: bool,
    in_call: frozenset[str] = frozenset(),
) -> GatewayCapacity:
    """The summary over the gateway's ready ``modems``. ``traffic_stopped``: the circuit
    breaker is open or an operator paused traffic (every SIM is refused, none frees by
    itself). ``in_call``: modems with a call ringing or live (whoever dialled it): busy for a
    call (none is placed beside it), not for an SMS (sent during a call)."""
    actions = {
        name: action_capacity(
            modems,
            busy | in_call if nominal.kind is UsageKind.CALL else busy,
            now,
            tz=tz,
            action=replace(nominal, circuit_open=traffic_stopped),
        )
        for name, nominal in NOMINAL.items()
    }
    ready = {m.modem for m in modems}
    return GatewayCapacity(len(ready), len(ready & (busy | in_call)), traffic_stopped, actions)
