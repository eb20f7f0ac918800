"""Delivery reports matched to the SMS they answer, and the events that tell the sender.

``sms/send`` records each segment the modem accepted with its message reference
(:meth:`simbank.store.ledger.Ledger.record_sent`); a status report (``+CDS``, or ``+CDSI`` and a read) names the
modem and that reference. When a report settles the whole message — every segment delivered,
or one failed or expired — one ``sms_delivered`` or ``sms_failed`` event carries the message
id ``sms/send`` answered and the request's ``transaction``. A report still pending changes
nothing visible; a report matching no send is logged and dropped.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import structlog

from simbank.clock import Clock
from simbank.daemon.board import StatusBoard
from simbank.drivers.types import DeliveryReport
from simbank.store.ledger import Ledger

log = structlog.get_logger(__name__)


class DeliveryReports:
    """Status reports in, delivery events out."""

    def __init__(self, ledger: Ledger, board: StatusBoard, clock: Clock) -> None:
        self.ledger = ledger
        self.board = board
        self.clock = clock

    def report(self, modem_id: str, report: DeliveryReport) -> None:
        """A status report read from ``modem_id``."""
        found = self.ledger.delivery_report(
            modem_id, report.reference, report.outcome, report.status, self.clock.now()
        )
        if found is None:
            log.info(
                "delivery_report_unmatched",
                modem=modem_id,
                reference=report.reference,
                outcome=report.outcome,
            )
            return
        log.info(
            "delivery_report",
            modem=modem_id,
            message=found.message,
            outcome=report.outcome,
            status=report.status,
        )
        if not found.settled:
            return
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
