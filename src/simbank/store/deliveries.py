"""Every SMS segment sent, with its message reference, and what its delivery report said.

``sms/send`` records one row per segment after the modem accepted it (``+CMGS: <mr>``). A
status report (23.040 §9.2.2.3) names the modem's message reference, which wraps at 256: it
is matched to the most recent segment that modem sent with that reference within
:data:`REPORT_WINDOW_S` and not already given a final outcome. A message (all its segments) is
``delivered`` once every segment is, ``failed`` as soon as one segment failed or expired,
``pending`` otherwise.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from simbank.store.core import LedgerCore

#: A status report is matched only to segments sent this recently (SMSCs retry for days).
REPORT_WINDOW_S = 7 * 86400.0
#: Segment statuses that are final.
FINAL = frozenset({"delivered", "failed", "expired"})


@dataclass(frozen=True, slots=True)
class MessageDelivery:
    """Where one sent message stands after a report: its segments' outcomes, and ``status``
    (``delivered``, ``failed`` or ``pending``). ``settled``: this report made it final."""

    message: int
    transaction: str | None
    iccid: str
    modem: str
    segments: int
    delivered: int
    failed: int
    status: str
    settled: bool
    status_code: int | None


def _message_status(statuses: list[str], segments: int) -> str:
    if any(s in ("failed", "expired") for s in statuses):
        return "failed"
    if len(statuses) == segments and all(s == "delivered" for s in statuses):
        return "delivered"
    return "pending"


class DeliveryLedger(LedgerCore):
    """Sent segments and their delivery reports."""

    def record_sent(
        self,
        message: int,
        *,
        transaction: str | None,
        iccid: str,
        modem: str,
        references: list[int],
        now: float,
        report_requested: bool,
    ) -> None:
        """The segments of one message the modem accepted, in order (``message``: the id the
        answer and the delivery events carry — its first booking)."""
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO sms_sent (message, txn, iccid, modem, reference, segment, segments,"
                " sent_at, report_requested) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        message,
                        transaction,
                        iccid,
                        modem,
                        reference,
                        n,
                        len(references),
                        now,
                        int(report_requested),
                    )
                    for n, reference in enumerate(references, start=1)
                ],
            )

    def delivery_report(
        self,
        modem: str,
        reference: int,
        status: str,
        code: int,
        now: float,
        *,
        iccid: str | None = None,
    ) -> MessageDelivery | None:
        """Apply a status report (``status``: delivered, pending, failed or expired; ``code``:
        TP-ST) to the segment it answers: one that asked for a report, sent by ``modem`` with
        that reference from ``iccid`` (the SIM the report reached: TP-MR is a counter on each
        SIM, so two SIMs of one modem reuse references). None when no segment matches (not
        ours, too old, or already final)."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT id, message FROM sms_sent WHERE modem = ? AND reference = ?"
                " AND (? IS NULL OR iccid = ?) AND report_requested = 1"
                " AND sent_at >= ? AND status NOT IN ('delivered', 'failed', 'expired')"
                " ORDER BY sent_at DESC, id DESC LIMIT 1",
                (modem, reference % 256, iccid, iccid, now - REPORT_WINDOW_S),
            ).fetchone()
            if row is None:
                return None
            segment_id, message = row
            before = self._statuses(conn, message)
            conn.execute(
                "UPDATE sms_sent SET status = ?, status_code = ?, reported_at = ? WHERE id = ?",
                (status, code, now, segment_id),
            )
            after = self._statuses(conn, message)
            head = conn.execute(
                "SELECT txn, iccid, modem, segments FROM sms_sent WHERE message = ? LIMIT 1",
                (message,),
            ).fetchone()
        txn, iccid, sent_by, segments = head
        was = _message_status(before, segments)
        now_status = _message_status(after, segments)
        return MessageDelivery(
            message=message,
            transaction=txn,
            iccid=iccid,
            modem=sent_by,
            segments=segments,
            delivered=after.count("delivered"),
            failed=sum(s in ("failed", "expired") for s in after),
            status=now_status,
            settled=now_status != "pending" and was == "pending",
            status_code=code,
        )

    @staticmethod
    def _statuses(conn: sqlite3.Connection, message: int) -> list[str]:
        rows = conn.execute(
            "SELECT status FROM sms_sent WHERE message = ? ORDER BY segment", (message,)
        ).fetchall()
        return [r[0] for r in rows]

    def delivery_summary(self, iccid: str, since: float) -> dict[str, int]:
        """Messages this SIM sent since ``since`` by outcome: ``delivered``, ``failed``,
        ``pending`` (a report was asked for and has not settled it), ``unreported`` (none
        asked for)."""
        rows = self._read(
            "SELECT message, segments, GROUP_CONCAT(status), MAX(report_requested)"
            " FROM sms_sent WHERE iccid = ? AND sent_at >= ? GROUP BY message",
            (iccid, since),
        )
        summary = {"delivered": 0, "failed": 0, "pending": 0, "unreported": 0}
        for _message, segments, statuses, requested in rows:
            if not requested:
                summary["unreported"] += 1
                continue
            summary[_message_status(str(statuses).split(","), int(segments))] += 1
        return summary
