"""Whether the ledger can book now: the gateway's ``degraded`` state, as pure rules.

The daemon feeds it what happened (a storage failure met by any write or read, a test commit
that succeeded, a ledger restored after corruption, an operator's confirmation) and publishes
what it answers: one ``storage_degraded`` event when a degraded spell starts, one
``storage_recovered`` when it ends. No I/O here (the daemon's
:mod:`simbank.daemon.storage` does it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

#: The reason of a spell only an operator ends: a ledger restored after corruption (from a
#: backup, or empty when there was none) whose quotas someone must look at first.
RESTORED = "ledger_restored"


@dataclass(frozen=True)
class Degraded:
    """A degraded spell: why, since when, and whether only an operator ends it."""

    reason: str
    detail: str
    since: float
    held: bool = False


@dataclass(frozen=True)
class Ended:
    """A degraded spell that ended (the ``storage_recovered`` event)."""

    spell: Degraded
    at: float

    @property
    def lasted_s(self) -> float:
        return max(0.0, self.at - self.spell.since)


class StorageHealth:
    """The current spell, if any. Each method returns what is news (to publish), else None."""

    def __init__(self) -> None:
        self.degraded: Degraded | None = None

    @property
    def ok(self) -> bool:
        return self.degraded is None

    def failed(self, cause: str, detail: str, now: float) -> Degraded | None:
        """A write or read failed with ``cause``: a new spell starts (returned), or the current
        one goes on (its start and a hold kept; a new cause noted, not announced again)."""
        current = self.degraded
        if current is None:
            self.degraded = Degraded(cause, detail, now)
            return self.degraded
        if not current.held:
            self.degraded = replace(current, reason=cause, detail=detail)
        return None

    def committed(self, now: float) -> Ended | None:
        """A commit succeeded (the recovery probe): the spell ends, unless it is held."""
        current = self.degraded
        if current is None or current.held:
            return None
        self.degraded = None
        return Ended(current, now)

    def hold(self, detail: str, now: float) -> Degraded | None:
        """A restored ledger waits for an operator: a held spell starts (returned when it is
        news; an ongoing spell becomes held, keeping its start)."""
        current = self.degraded
        if current is None:
            self.degraded = Degraded(RESTORED, detail, now, held=True)
            return self.degraded
        self.degraded = Degraded(RESTORED, detail, current.since, held=True)
        return None

    def confirmed(self, now: float) -> Ended | None:
        """The operator confirmed: a held spell ends (a storage fault met since will start a new
        one)."""
        current = self.degraded
        if current is None or not current.held:
            return None
        self.degraded = None
        return Ended(current, now)


class SpaceWatch:
    """Free space against a margin, with hysteresis: ``low`` once when it drops below the
    margin, ``ok`` once when it is back above the margin plus a tenth (no flapping)."""

    def __init__(self, margin_bytes: int) -> None:
        self.margin = margin_bytes
        self.low = False

    def update(self, free_bytes: int) -> str | None:
        if self.margin <= 0:
            return None
        if not self.low and free_bytes < self.margin:
            self.low = True
            return "low"
        if self.low and free_bytes >= self.margin + self.margin // 10:
            self.low = False
            return "ok"
        return None
