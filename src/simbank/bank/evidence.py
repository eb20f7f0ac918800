"""Block evidence: what the detector observed, the verdicts it drew, and its per-SIM record.

:class:`Observation` and :class:`Verdict` are plain frozen values, JSON-ready through
``as_dict()`` (epoch seconds: the bank's own form). The daemon stores each observation in the
ledger (``record_verdict``, epoch seconds) and publishes it in the contract's one shape,
:class:`simbank.contract.EvidenceEntry` (``at`` as ISO 8601 UTC, the values under
``detail``). Destinations appear only as the hashes the caller passed in; numbers inside free
text are masked by :func:`mask_numbers`.
:class:`SimEvidence` is the detector's mutable record of one SIM (internal to ``bank``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

VerdictState = Literal["suspected", "blocked", "locked"]
Reason = Literal[
    "registration_denied",
    "reject_cause",
    "stuck_searching",
    "puk_locked",
    "sim_blocked",
    "calls_barred",
    "sms_barred",
    "operator_message",
]
Action = Literal["reattach"]

VERDICT_STATES: frozenset[str] = frozenset(get_args(VerdictState))
REASONS: frozenset[str] = frozenset(get_args(Reason))

# Seven or more digits (optionally after "+", allowing single spaces or dashes between
# digits): a phone number, an IMSI or an ICCID fragment, never a short code like 10086.
_NUMBER = re.compile(r"\+?\d(?:[ -]?\d){6,}")


def mask_numbers(text: str) -> str:
    """``text`` with every phone-number-like run of digits replaced by ``"<number>"``."""
    return _NUMBER.sub("<number>", text)


@dataclass(frozen=True, slots=True)
class Observation:
    """One thing the detector saw: when (epoch seconds), what kind, and the raw values."""

    at: float
    kind: str
    detail: Mapping[str, object]

    def __post_init__(self) -> None:
        # A read-only copy: an observation never changes after it was made.
        object.__setattr__(self, "detail", MappingProxyType(dict(self.detail)))

    def as_dict(self) -> dict[str, Any]:
        """``{"at": float, "kind": str, "detail": {...}}`` for JSON."""
        return {"at": self.at, "kind": self.kind, "detail": dict(self.detail)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observation:
        """The inverse of :meth:`as_dict` (e.g. when evidence is read back from the ledger)."""
        at, kind, detail = data["at"], data["kind"], data.get("detail", {})
        if not isinstance(at, int | float) or isinstance(at, bool):
            raise TypeError(f"observation 'at' must be a number, not {at!r}")
        if not isinstance(kind, str) or not kind:
            raise TypeError(f"observation 'kind' must be a non-empty string, not {kind!r}")
        if not isinstance(detail, Mapping):
            raise TypeError(f"observation 'detail' must be a mapping, not {detail!r}")
        return cls(float(at), kind, detail)


def observe(at: float, kind: str, **detail: object) -> Observation:
    """An :class:`Observation` whose detail leaves out the values that are ``None``."""
    return Observation(at, kind, {k: v for k, v in detail.items() if v is not None})


@dataclass(frozen=True, slots=True)
class Verdict:
    """A state the detector believes a SIM is in, with the observations that led to it.

    ``evidence`` is never empty and is ordered by time. ``action="reattach"`` asks the daemon
    to cycle the SIM's radio once (``AT+CFUN`` off/on) and then call
    ``BlockDetector.on_reattached``.
    """

    iccid: str
    state: VerdictState
    reason: Reason
    evidence: tuple[Observation, ...]
    action: Action | None = None

    def __post_init__(self) -> None:
        if not self.evidence:
            raise ValueError("a verdict needs at least one observation")
        ordered = tuple(sorted(self.evidence, key=lambda o: o.at))  # stable: ties keep order
        object.__setattr__(self, "evidence", ordered)

    @property
    def since(self) -> float:
        """When the verdict was reached: the time of its latest observation."""
        return self.evidence[-1].at

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``iccid``, ``state``, ``reason``, ``action``, ``evidence``."""
        return {
            "iccid": self.iccid,
            "state": self.state,
            "reason": self.reason,
            "action": self.action,
            "evidence": [o.as_dict() for o in self.evidence],
        }


# -- per-SIM record ------------------------------------------------------------------------

REGISTERED_STATS = frozenset({1, 5, 6, 7, 9, 10})
SEARCHING_STATS = frozenset({0, 2})
DENIED_STAT = 3
EPISODE_LIMIT = 64  # observations kept per episode: the first few and the latest
_EPISODE_HEAD = 8

Phase = Literal["await_reattach", "grace"]


class PausableTimer:
    """Elapsed time that can be paused (while the SIM is out of its modem's active slot)."""

    __slots__ = ("_held", "_since")

    def __init__(self) -> None:
        self._since: float | None = None
        self._held: float | None = None

    def start(self, now: float, *, running: bool) -> None:
        if self._since is None and self._held is None:
            self._since, self._held = (now, None) if running else (None, 0.0)

    def stop(self) -> None:
        self._since = self._held = None

    def pause(self, now: float) -> None:
        if self._since is not None:
            self._held, self._since = max(0.0, now - self._since), None

    def resume(self, now: float) -> None:
        if self._held is not None:
            self._since, self._held = now - self._held, None

    def elapsed(self, now: float) -> float | None:
        return now - self._since if self._since is not None else self._held


@dataclass(slots=True)
class SimEvidence:
    """The detector's record of one SIM: the current episode's evidence and its timers.

    An episode is the time since the SIM was last registered; registering ends it.
    """

    iccid: str
    present: bool = True  # in its modem's active slot
    sim_unavailable: bool = False  # last +CPIN said PIN/absent/error: no registration rules
    stats: dict[str, int] = field(default_factory=dict)  # last stat per domain
    reports: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    operator: str | None = None
    rssi_dbm: int | None = None
    denied: PausableTimer = field(default_factory=PausableTimer)
    searching: PausableTimer = field(default_factory=PausableTimer)
    grace: PausableTimer = field(default_factory=PausableTimer)
    phase: Phase | None = None
    episode: list[Observation] = field(default_factory=list)
    final: tuple[VerdictState, Reason] | None = None
    text_suspected: bool = False
    cause21: list[Observation] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.present and not self.sim_unavailable

    @property
    def registered(self) -> bool:
        return any(s in REGISTERED_STATS for s in self.stats.values())

    @property
    def denied_now(self) -> bool:
        return not self.registered and DENIED_STAT in self.stats.values()

    @property
    def searching_now(self) -> bool:
        return not self.registered and any(s in SEARCHING_STATS for s in self.stats.values())

    def timers(self) -> tuple[PausableTimer, ...]:
        return (self.denied, self.searching, self.grace)

    def note(self, obs: Observation) -> None:
        self.episode.append(obs)
        if len(self.episode) > EPISODE_LIMIT:
            del self.episode[_EPISODE_HEAD]

    def end_episode(self) -> None:
        for timer in self.timers():
            timer.stop()
        self.phase = None
        self.episode.clear()

    def forget_radio(self) -> None:
        self.stats.clear()
        self.reports.clear()

    def set_running(self, now: float, *, present: bool, unavailable: bool) -> None:
        """Update presence/availability, pausing or resuming the timers on a change."""
        before = self.running
        self.present, self.sim_unavailable = present, unavailable
        if before != self.running:
            for timer in self.timers():
                (timer.resume if self.running else timer.pause)(now)

    def arm(self, now: float) -> None:
        """Start the denial/searching timers the current stats call for (no-op if started)."""
        if self.denied_now:
            self.denied.start(now, running=self.running)
        if self.searching_now:
            self.searching.start(now, running=self.running)

    @property
    def state(self) -> VerdictState | None:
        if self.final is not None:
            return self.final[0]
        return "suspected" if self.phase is not None or self.text_suspected else None
