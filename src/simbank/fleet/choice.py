"""Choosing a gateway of the fleet: pure functions of what the broker holds (each gateway's
retained ``bridge/state`` and ``capacity``), the time and a tie-breaker.

A gateway is skipped when it is not ``online``, publishes no ``capacity``, or its summary is
older than ``stale_after_s`` (it stopped refreshing: its daemon hangs, or its clock is off);
of the rest, those with an eligible SIM for the action are tried in order: the most free
modems first (calls that could start now), then the most eligible SIMs, ties in a fair random
order. A gateway's refusal that means "no room here" (:data:`NO_ROOM_CODES`) sends the request
on to the next; any other refusal (the number is invalid, on the do-not-call list, over its
per-destination cap) is the answer: asking another gateway would only shop around the rule.

No answer in time is an answer too, never a reason to ask the next gateway: the first one may
still act on the request (a slow SIM switch, a request queued in a bridge while the uplink was
down), and the same call would then be booked — or the same text sent — twice. A booking
nobody hears of is settled as used at its expiry: the quotas stay true.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from simbank.contract import Capacity

FleetAction = Literal["call", "sms"]

#: Refusals that mean "this gateway has no room now": the request goes on to the next one.
#: Each is answered before anything was booked or done.
NO_ROOM_CODES = frozenset(
    {"no_eligible_sim", "quota_exhausted", "busy", "circuit_open", "quiet_hours"}
)
#: Also "no room" for a command that books before the modem acts, and so fails on the modem
#: only before its booking: ``call/authorize`` (a SIM switch that failed). For ``call`` or
#: ``sms/send`` a ``modem_error`` may come after the modem dialled or sent: final.
BEFORE_BOOKING_CODES: Mapping[str, frozenset[str]] = {"call/authorize": frozenset({"modem_error"})}
#: A summary older than this (seconds, the client's clock) is stale: three missed refreshes.
STALE_AFTER_S = 180.0


@dataclass(slots=True)
class GatewaySeen:
    """What the broker shows of one gateway."""

    gateway: str
    #: ``bridge/state``: True online, False offline, None not seen.
    online: bool | None = None
    capacity: Capacity | None = None

    def take_state(self, payload: Mapping[str, Any] | None) -> None:
        """A retained ``bridge/state`` (None: the retained message was cleared)."""
        state = None if payload is None else payload.get("state")
        self.online = None if state is None else state == "online"

    def take_capacity(self, payload: Mapping[str, Any] | None) -> None:
        """A retained ``capacity``; one that does not parse counts as none."""
        try:
            self.capacity = None if payload is None else Capacity.model_validate(payload)
        except ValidationError:
            self.capacity = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One gateway asked, and its refusal."""

    gateway: str
    code: str
    error: str
    frees_at: Any = None


def fresh(
    seen: GatewaySeen, now: float, *, stale_after_s: float = STALE_AFTER_S
) -> Capacity | None:
    """The gateway's summary if it is online and the summary is not stale, else None."""
    capacity = seen.capacity
    if not seen.online or capacity is None:
        return None
    return capacity if now - capacity.computed_at.timestamp() <= stale_after_s else None


def skip_reason(
    seen: GatewaySeen, action: FleetAction, now: float, *, stale_after_s: float = STALE_AFTER_S
) -> str | None:
    """Why ``seen`` is not asked for ``action`` (None: it is a candidate)."""
    if seen.online is None:
        return "no bridge/state"
    if not seen.online:
        return "offline"
    capacity = seen.capacity
    if capacity is None:
        return "no capacity published"
    age = now - capacity.computed_at.timestamp()
    if age > stale_after_s:
        return f"capacity stale (computed {age:.0f} s ago)"
    room = getattr(capacity, action)
    if room.eligible <= 0:
        if capacity.traffic_stopped:
            return "traffic stopped (circuit open or paused)"
        when = "" if room.next_free_at is None else f", next free at {_iso(room.next_free_at)}"
        return f"no eligible SIM{when}"
    return None


def ranked(
    gateways: Iterable[GatewaySeen],
    action: FleetAction,
    now: float,
    *,
    tiebreak: Callable[[], float],
    stale_after_s: float = STALE_AFTER_S,
) -> list[str]:
    """The gateways to ask, best first (see the module doc); ``tiebreak`` gives each
    candidate a random number (``random.Random().random``), so equal ones take turns."""
    keyed = []
    for seen in gateways:
        if skip_reason(seen, action, now, stale_after_s=stale_after_s) is not None:
            continue
        assert seen.capacity is not None
        room = getattr(seen.capacity, action)
        keyed.append(((-room.modems, -room.eligible, tiebreak()), seen.gateway))
    return [gateway for _key, gateway in sorted(keyed)]


def moves_on(response: Mapping[str, Any], command: str = "call/authorize") -> bool:
    """Whether an answer to ``command`` is a refusal that sends the request to the next
    gateway (never an answer that did not come: see the module's doc)."""
    if response.get("status") == "ok":
        return False
    code = response.get("code")
    return code in NO_ROOM_CODES or code in BEFORE_BOOKING_CODES.get(command, frozenset())


def attempt(gateway: str, response: Mapping[str, Any]) -> Attempt:
    detail = response.get("detail") or {}
    return Attempt(
        gateway,
        str(response.get("code") or "error"),
        str(response.get("error") or ""),
        detail.get("frees_at") if isinstance(detail, Mapping) else None,
    )


def refusal(
    gateways: Iterable[GatewaySeen],
    attempts: Iterable[Attempt],
    action: FleetAction,
    now: float,
    *,
    stale_after_s: float = STALE_AFTER_S,
) -> dict[str, Any]:
    """The error response when no gateway took the request: the code every gateway asked
    answered (``no_eligible_sim`` when they differ or none was asked), why each gateway was
    skipped or refused (``detail.gateways``) and the earliest time one frees up
    (``detail.frees_at``, ISO 8601, from the summaries and the refusals)."""
    asked = list(attempts)
    reasons: dict[str, str] = {a.gateway: f"{a.code}: {a.error}" for a in asked}
    frees: list[datetime] = [t for a in asked if (t := _parse(a.frees_at)) is not None]
    known = 0
    for seen in gateways:
        known += 1
        why = skip_reason(seen, action, now, stale_after_s=stale_after_s)
        if why is not None and seen.gateway not in reasons:
            reasons[seen.gateway] = why
        capacity = fresh(seen, now, stale_after_s=stale_after_s)
        if capacity is not None and (free := getattr(capacity, action).next_free_at) is not None:
            frees.append(free)
    codes = {a.code for a in asked}
    code = codes.pop() if len(codes) == 1 else "no_eligible_sim"
    if not known:
        message = "no simbank gateway seen on the broker"
    else:
        listed = "; ".join(f"{gw}: {why}" for gw, why in sorted(reasons.items()))
        message = f"no gateway has room for a {action} ({listed})"
    earliest = min(frees, default=None)
    detail: dict[str, Any] = {
        "gateways": dict(sorted(reasons.items())),
        "frees_at": None if earliest is None else earliest.isoformat(),
    }
    return {"status": "error", "code": code, "error": message, "detail": detail}


def _parse(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return None


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")
