"""One SIM's retained ``sim/<iccid>`` state as the board publishes it: the limits, the usage
and, for a quarantined SIM, the block with its latest evidence. Formatting only: the state
itself is decided by :mod:`simbank.bank.sim_state`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from simbank.bank.policy import Limits
from simbank.bank.sim_state import QUARANTINE_STATES
from simbank.bank.usage import Usage
from simbank.contract import BalanceInfo, BlockInfo, EvidenceEntry
from simbank.contract import Usage as UsagePayload
from simbank.store.balances import BalanceRecord
from simbank.store.schema import AuditEntry, SimRecord

#: How far before a quarantine began its evidence is shown, and how many pieces.
EVIDENCE_BEFORE_S = 86400
EVIDENCE_SHOWN = 20
#: Audit actions that end a quarantine episode: evidence from before them belongs to an
#: earlier block (the ledger keeps it; ``sim/report`` shows it).
EPISODE_ENDS = frozenset({"sim_release", "sim_recovered"})


def limits_payload(limits: Limits) -> dict[str, Any]:
    """A policy's limits as the ``sim/<iccid>`` payload shows them."""
    return {
        "calls_per_hour": limits.calls_per_hour,
        "calls_per_day": limits.calls_per_day,
        "call_seconds_per_day": limits.call_seconds_per_day,
        "sms_per_day": limits.sms_per_day,
        "min_call_gap_s": limits.min_call_gap_s,
        "calls_per_destination_per_day": limits.calls_per_destination_per_day,
        "rest_after_calls": limits.rest_after_calls,
        "rest_s": limits.rest_s,
        "billing_day": limits.billing_day,
        "calls_per_month": limits.calls_per_month,
        "call_seconds_per_month": limits.call_seconds_per_month,
        "sms_per_month": limits.sms_per_month,
        "balance_floor": None if limits.balance_floor is None else str(limits.balance_floor),
        "quiet_hours": [
            f"{w.start_min // 60:02d}:{w.start_min % 60:02d}-{w.end_min // 60:02d}:{w.end_min % 60:02d}"
            for w in limits.quiet_hours
        ],
    }


def usage_payload(usage: Usage) -> UsagePayload:
    """A SIM's usage as the ``sim/<iccid>`` payload shows it (the month only if counted)."""
    return UsagePayload(
        calls_hour=usage.calls_hour,
        calls_day=usage.calls_day,
        call_seconds_day=usage.call_seconds_day,
        sms_day=usage.sms_day,
        calls_month=usage.calls_month,
        call_seconds_month=usage.call_seconds_month,
        sms_month=usage.sms_month,
        month_start=None if usage.month_start is None else _iso(usage.month_start),
        month_end=None if usage.month_end is None else _iso(usage.month_end),
    )


def balance_info(record: BalanceRecord | None, floor: Decimal | None) -> BalanceInfo | None:
    """The SIM's last balance check as ``sim/<iccid>`` shows it (None: never checked)."""
    if record is None:
        return None
    return BalanceInfo(
        amount=None if record.amount is None else str(record.amount),
        low=record.low and floor is not None,
        floor=None if floor is None else str(floor),
        checked_at=_iso(record.checked_at),
    )


def shows_block(record: SimRecord | None) -> bool:
    """Whether the SIM's payload carries a ``block`` (it is quarantined)."""
    return record is not None and record.state in QUARANTINE_STATES


class Observed(Protocol):
    """An observation as the detector or the ledger holds it (epoch seconds)."""

    @property
    def at(self) -> float: ...
    @property
    def kind(self) -> str: ...
    @property
    def detail(self) -> Mapping[str, object]: ...


def evidence_entries(observations: Iterable[Observed]) -> list[EvidenceEntry]:
    """Observations in the contract's one evidence shape (``{"at": ISO, "kind", "detail"}``)."""
    return [EvidenceEntry.observed(o.at, o.kind, o.detail) for o in observations]


def evidence_json(observations: Iterable[Observed]) -> list[dict[str, Any]]:
    """:func:`evidence_entries` as JSON-ready mappings (for events and command answers)."""
    return [entry.as_json() for entry in evidence_entries(observations)]


def episode_start(record: SimRecord, audit: Iterable[AuditEntry]) -> float:
    """From when the evidence of a quarantine is its own: a day before it began, but never
    before the SIM last left an earlier quarantine (``sim/release``, or a suspect that
    registered after all): a new block shows only its own episode. ``audit`` is the SIM's
    audit trail; the ledger keeps every episode for ``sim/report`` (past ``[storage]
    retention_days`` only while the SIM is quarantined)."""
    start = record.since - EVIDENCE_BEFORE_S
    ends = [a.at for a in audit if a.action in EPISODE_ENDS and a.at <= record.since]
    return max([start, *ends])


def block_info(record: SimRecord, evidence: Iterable[Observed]) -> BlockInfo:
    """The ``block`` of a quarantined SIM: why, since when, and its latest evidence (give it
    the evidence from :func:`episode_start` on)."""
    shown = evidence_entries(evidence)[-EVIDENCE_SHOWN:]
    return BlockInfo(reason=record.reason or record.state, since=_iso(record.since), evidence=shown)


def _iso(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
