"""The carrier's hidden limits: a SIM that exceeds them gets blocked (by ICCID).

The controller under test does not know these limits; they are what its quota policy must
stay under. Windows count simulated seconds (the bank's ``SimClock``).
"""

from __future__ import annotations

import enum
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

HOUR = 3600.0
DAY = 86400.0


class BlockAction(enum.StrEnum):
    """What the carrier does to a SIM over its limits."""

    DENY = "deny"  # deregister: stat 3 with ``deny_cause``
    BAR = "bar"  # stays registered, outgoing calls fail with cause 8


@dataclass(frozen=True)
class CarrierLimits:
    """Per-operator hidden limits (``None`` = unlimited)."""

    calls_per_hour: int | None = None
    calls_per_day: int | None = None
    min_call_gap_s: float | None = None
    sms_per_day: int | None = None
    action: BlockAction = BlockAction.DENY
    deny_cause: int = 7


@dataclass(frozen=True)
class Block:
    """A SIM the carrier blocked."""

    iccid: str
    reason: str
    action: BlockAction
    cause: int
    at: float


@dataclass(frozen=True)
class SmsSegment:
    """One SMS (a segment of a concatenated one) that reached the network."""

    destination: str
    text: str
    coding: str  # "gsm7", "8bit", "ucs2" (PDU mode) or "text" (text mode)
    concat: tuple[int, int, int] | None  # (reference, total, sequence) from the UDH
    status_report: bool  # TP-SRR (PDU mode only)
    message_reference: int  # the modem's TP-MR, as answered in +CMGS
    at: float


@dataclass
class CarrierStats:
    """What happened, for tests to read."""

    calls: int = 0
    calls_answered: int = 0
    calls_rejected: int = 0
    sms: int = 0
    sms_rejected: int = 0
    ussd: int = 0
    blocks: list[Block] = field(default_factory=list)
    calls_by_iccid: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sms_by_iccid: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sms_segments_by_iccid: dict[str, list[SmsSegment]] = field(
        default_factory=lambda: defaultdict(list)
    )


class Carrier:
    """Counts traffic per ICCID against per-operator limits and blocks offenders."""

    def __init__(
        self,
        limits: dict[str, CarrierLimits],
        now: Callable[[], float],
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.limits = limits
        self._now = now
        self.on_change = on_change
        self.stats = CarrierStats()
        self._blocked: dict[str, Block] = {}
        self._calls: dict[str, deque[float]] = defaultdict(deque)
        self._sms: dict[str, deque[float]] = defaultdict(deque)
        #: The TP-ST of the status report for an SMS to a destination (as submitted, "+" and
        #: all): absent = 0x00 (delivered). Set 0x40-0x5F for a permanent failure (0x41
        #: incompatible destination; 23.040 §9.2.3.15), or use
        #: :meth:`fail_delivery`.
        self.delivery_status: dict[str, int] = {}

    def limits_for(self, operator: str) -> CarrierLimits:
        """The operator's limits (unlimited if the operator has none configured)."""
        return self.limits.get(operator, CarrierLimits())

    def block_of(self, iccid: str) -> Block | None:
        """The block on this ICCID, if any."""
        return self._blocked.get(iccid)

    def is_blocked(self, iccid: str) -> bool:
        """True if the carrier blocked this ICCID."""
        return iccid in self._blocked

    def block(self, iccid: str, reason: str, operator: str = "test") -> Block:
        """Block a SIM now (also used by the limit checks)."""
        limits = self.limits_for(operator)
        cause = limits.deny_cause if limits.action is BlockAction.DENY else 8
        block = Block(iccid, reason, limits.action, cause, self._now())
        self._blocked[iccid] = block
        self.stats.blocks.append(block)
        if self.on_change is not None:
            self.on_change(iccid)
        return block

    def unblock(self, iccid: str) -> None:
        """Lift a block (the carrier's support desk)."""
        if self._blocked.pop(iccid, None) is not None and self.on_change is not None:
            self.on_change(iccid)

    @staticmethod
    def _prune(times: deque[float], now: float) -> None:
        while times and times[0] <= now - DAY:
            times.popleft()

    def call_attempt(self, iccid: str, operator: str) -> Block | None:
        """Record an outgoing call; return the block if this call broke a limit."""
        now = self._now()
        self.stats.calls += 1
        self.stats.calls_by_iccid[iccid] += 1
        times = self._calls[iccid]
        self._prune(times, now)
        limits = self.limits_for(operator)
        reason: str | None = None
        if limits.min_call_gap_s is not None and times and now - times[-1] < limits.min_call_gap_s:
            reason = "min_call_gap"
        times.append(now)
        in_hour = sum(1 for t in times if t > now - HOUR)
        if limits.calls_per_hour is not None and in_hour > limits.calls_per_hour:
            reason = "calls_per_hour"
        if limits.calls_per_day is not None and len(times) > limits.calls_per_day:
            reason = "calls_per_day"
        if reason is not None and iccid not in self._blocked:
            return self.block(iccid, reason, operator)
        return None

    def sms_attempt(self, iccid: str, operator: str) -> Block | None:
        """Record an outgoing SMS; return the block if this SMS broke a limit."""
        now = self._now()
        self.stats.sms += 1
        self.stats.sms_by_iccid[iccid] += 1
        times = self._sms[iccid]
        self._prune(times, now)
        times.append(now)
        limits = self.limits_for(operator)
        if (
            limits.sms_per_day is not None
            and len(times) > limits.sms_per_day
            and iccid not in self._blocked
        ):
            return self.block(iccid, "sms_per_day", operator)
        return None

    def record_segment(
        self,
        iccid: str,
        destination: str,
        text: str,
        *,
        coding: str,
        message_reference: int,
        concat: tuple[int, int, int] | None = None,
        status_report: bool = False,
    ) -> SmsSegment:
        """Note an accepted SMS segment in ``stats.sms_segments_by_iccid`` (for tests)."""
        segment = SmsSegment(
            destination, text, coding, concat, status_report, message_reference, self._now()
        )
        self.stats.sms_segments_by_iccid[iccid].append(segment)
        return segment

    def fail_delivery(self, destination: str, status: int = 0x41) -> None:
        """Every later SMS to ``destination`` fails with TP-ST ``status`` (a status report,
        when one was asked for, says so); 0x00 makes it deliverable again."""
        if not 0 <= status <= 0xFF:
            raise ValueError("TP-ST is one octet")
        self.delivery_status[destination] = status

    def delivery_status_for(self, destination: str) -> int:
        """The TP-ST a status report for an SMS to ``destination`` carries (0x00 delivered)."""
        return self.delivery_status.get(destination, 0x00)
