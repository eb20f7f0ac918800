"""Delivery reports matched to the SMS they answer, and the events that tell the sender.

``sms/send`` records each segment the modem accepted with its message reference
(:meth:`simbank.store.ledger.Ledger.record_sent`); a status report (``+CDS``, or ``+CDSI`` and a read) names the
modem and that reference. When a report settles the whole message — every segment delivered,
or one failed or expired — one ``sms_delivered`` or ``sms_failed`` event carries the message
id ``sms/send`` answered and the request's ``transaction``. A report still pending changes
nothing visible. A report matching no send yet is kept a few minutes per modem (it may come
while the message's later segments are still being sent) and matched once the send is
recorded; one that never matches is only logged.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from typing import Any

import structlog

from simbank.clock import Clock
from simbank.daemon.board import StatusBoard
from simbank.drivers.types import DeliveryReport
from simbank.store.ledger import Ledger, MessageDelivery

log = structlog.get_logger(__name__)


#: A report that matched no send yet is kept this long (seconds) and this many per modem: a
#: segment's report may come while the message's later segments are still being sent, before
#: the send is recorded.
EARLY_KEEP_S = 300.0
EARLY_MAX = 64


class DeliveryReports:
    """Status reports in, delivery events out."""

    def __init__(self, ledger: Ledger, board: StatusBoard, clock: Clock) -> None:
        self.ledger = ledger
        self.board = board
        self.clock = clock
        self._early: dict[str, deque[tuple[float, str | None, DeliveryReport]]] = {}

    def report(self, modem_id: str, report: DeliveryReport, iccid: str | None = None) -> None:
        """A status report read from ``modem_id`` while ``iccid`` was its SIM."""
        if not self._apply(modem_id, report, iccid):
            log.info(
                "delivery_report_unmatched",
                modem=modem_id,
                reference=report.reference,
                outcome=report.outcome,
            )
            early = self._early.setdefault(modem_id, deque(maxlen=EARLY_MAX))
            early.append((self.clock.monotonic(), iccid, report))

    def sent(self, modem_id: str) -> None:
        """A send on ``modem_id`` was recorded: reports that came before it are matched now."""
        early = self._early.pop(modem_id, None)
        if not early:
            return
        now = self.clock.monotonic()
        left: deque[tuple[float, str | None, DeliveryReport]] = deque(maxlen=EARLY_MAX)
        for at, iccid, report in early:
            if now - at <= EARLY_KEEP_S and not self._apply(modem_id, report, iccid):
                left.append((at, iccid, report))
        if left:
            self._early[modem_id] = left

    def _apply(self, modem_id: str, report: DeliveryReport, iccid: str | None) -> bool:
        found = self.ledger.delivery_report(
            modem_id,
            report.reference,
            report.outcome,
            report.status,
            self.clock.now(),
            iccid=iccid,
        )
        if found is None:
            return False
        log.info(
            "delivery_report",
            modem=modem_id,
            message=found.message,
            outcome=report.outcome,
            status=report.status,
        )
        if found.settled:
            self._settled(found, report)
        return True

    def _settled(self, found: MessageDelivery, report: DeliveryReport) -> None:
        event = "sms_delivered" if found.status == "delivered" else "sms_failed"
        fields: dict[str, Any] = {
            "message": found.message,
            "transaction": _transaction(found.transaction),
            "iccid": found.iccid,
            "modem": found.modem,
            "segments": found.segments,
            "delivered": found.delivered,
            "failed": found.failed,
            "status_code": found.status_code,
        }
        if report.discharged is not None:
            fields["at"] = report.discharged.isoformat()
        self.board.event(event, **fields)


def _transaction(stored: str | None) -> Any:
    """The request's ``transaction`` as the client sent it (the ledger keeps it as JSON)."""
    if stored is None:
        return None
    with contextlib.suppress(ValueError):
        return json.loads(stored)
    return stored
