"""Inbound calls, one row per call: which SIM was rung, by whom (the keyed hash of the number,
never the number; NULL when withheld), how many rings, what the policy did and how it ended
(``answered``, ``missed``, ``rejected``). ``sim/report`` counts and lists them. They are not
usage: the outbound quotas never see them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simbank.store.core import LedgerCore
from simbank.store.secret import is_phone_number

Outcome = Literal["answered", "missed", "rejected"]
OUTCOMES: tuple[Outcome, ...] = ("answered", "missed", "rejected")


@dataclass(frozen=True, slots=True)
class InboundCall:
    """One inbound call as stored (``shown_caller``: as the ``incoming_call`` event showed it)."""

    id: int
    iccid: str
    modem: str
    started_at: float
    ended_at: float
    caller: str | None
    shown_caller: str
    rings: int
    action: str
    reason: str
    outcome: Outcome


class InboundCallLedger(LedgerCore):
    """The ``inbound_calls`` table (schema 7)."""

    def record_inbound_call(
        self,
        *,
        iccid: str,
        modem: str,
        started_at: float,
        ended_at: float,
        caller: str | None,
        shown_caller: str,
        rings: int,
        action: str,
        reason: str,
        outcome: Outcome,
    ) -> int:
        """Store one call (durably); ``caller`` in clear is kept only as its keyed hash."""
        protected = (
            self.hasher.hash(caller) if caller is not None and is_phone_number(caller) else None
        )
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO inbound_calls (iccid, modem, started_at, ended_at, caller,"
                " shown_caller, rings, action, reason, outcome)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    iccid,
                    modem,
                    started_at,
                    ended_at,
                    protected,
                    shown_caller,
                    rings,
                    action,
                    reason,
                    outcome,
                ),
            )
            return int(cursor.lastrowid or 0)

    def inbound_call_counts(self, iccid: str, since: float) -> dict[str, int]:
        """Calls to ``iccid`` since ``since`` by outcome (every outcome present, 0 if none)."""
        rows = self._read(
            "SELECT outcome, COUNT(*) FROM inbound_calls WHERE iccid = ? AND started_at >= ?"
            " GROUP BY outcome",
            (iccid, since),
        )
        counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        for outcome, count in rows:
            counts[str(outcome)] = int(count)
        return counts

    def inbound_calls(self, iccid: str, limit: int = 10) -> list[InboundCall]:
        """The last ``limit`` calls to ``iccid``, newest first."""
        rows = self._read(
            "SELECT id, iccid, modem, started_at, ended_at, caller, shown_caller, rings, action,"
            " reason, outcome FROM inbound_calls WHERE iccid = ?"
            " ORDER BY started_at DESC, id DESC LIMIT ?",
            (iccid, limit),
        )
        return [InboundCall(*row) for row in rows]
