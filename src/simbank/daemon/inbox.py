"""Received SMS on their way in: stored durably (a part of a concatenated message on its own,
the whole once its siblings are there), announced, counted unread per SIM, forwarded.

A message is announced once (``sms_received``), when it is whole — or, when parts stay
missing past ``[sms] reassembly_timeout_s``, with what arrived and ``missing`` naming the
rest. The sender is published masked unless ``[compliance] show_sms_sender``; the ledger keeps
a phone-number sender only as its keyed hash, and ``sms/list`` shows what the event showed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from simbank.clock import Clock
from simbank.config.models import Config
from simbank.daemon.board import StatusBoard
from simbank.daemon.forwarding import SmsForwarder
from simbank.daemon.redact import redact_text
from simbank.drivers.types import SmsMessage
from simbank.store.ledger import InboundSms, Ledger

log = structlog.get_logger(__name__)

#: Incomplete groups are looked at this often (seconds).
EXPIRE_EVERY_S = 30.0


def message_payload(sms: InboundSms, *, show_sender: bool) -> dict[str, Any]:
    """One message as ``sms/list``, the ``sms_received`` event and forwarding show it. The
    sender is masked unless ``show_sender`` (``[compliance] show_sms_sender``) is on *now*: a
    sender kept in clear while it was on is masked again once it is off."""
    shown = sms.shown_sender if sms.shown_sender is not None else sms.sender
    payload: dict[str, Any] = {
        "id": sms.id,
        "iccid": None if sms.iccid.startswith("unknown:") else sms.iccid,
        "modem": sms.modem,
        "received_at": datetime.fromtimestamp(sms.received_at, UTC).isoformat(),
        "sent_at": sms.sent_at,
        "sender": shown if show_sender else redact_text(shown),
        "text": sms.text,
        "parts": sms.parts,
        "acked": sms.acked_at is not None,
    }
    if sms.missing:
        payload["missing"] = list(sms.missing)
    return payload


class InboxService:
    """Stores what the modems read, announces whole messages, keeps the unread counts."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        board: StatusBoard,
        clock: Clock,
        forwarder: SmsForwarder | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.board = board
        self.clock = clock
        self.forwarder = forwarder
        self.unread: dict[str, int] = ledger.unread_counts()
        self._next_expiry = 0.0

    def shown_sender(self, sender: str | None) -> str:
        """The sender as the privacy rule lets the contract show it."""
        if self.config.compliance.show_sms_sender:
            return sender or ""
        return redact_text(sender or "")

    def receive(
        self, modem_id: str, iccid: str | None, index: int, message: SmsMessage
    ) -> InboundSms | None:
        """Keep one message or part read from ``modem_id`` (before the modem deletes it); the
        whole message when this completed one (announced here), else None."""
        now = self.clock.now()
        owner = iccid or f"unknown:{modem_id}"
        sender = message.sender or ""
        shown = self.shown_sender(message.sender)
        sent_at = message.timestamp.isoformat() if message.timestamp else None
        if message.concat is not None and message.concat[1] > 1:
            reference, total, sequence = message.concat
            stored = self.ledger.store_inbound_part(
                owner,
                now,
                sender,
                message.text,
                reference=reference,
                total=total,
                sequence=sequence,
                sent_at=sent_at,
                modem=modem_id,
                shown_sender=shown,
            )
            if stored.duplicate:
                log.info("sms_part_already_stored", modem=modem_id, index=index)
            elif stored.sms_id is None:
                log.info("sms_part_stored", modem=modem_id, part=sequence, of=total)
            if stored.closed is not None:
                log.warning("sms_parts_missing", id=stored.closed, reason="reference_reused")
                self._announce(stored.closed)
            sms_id = stored.sms_id
        else:
            sms_id = self.ledger.store_inbound_sms(
                owner,
                now,
                sender,
                message.text,
                index,
                sent_at=sent_at,
                modem=modem_id,
                shown_sender=shown,
            )
            if sms_id is None:
                # Read again (a crash came between storing and deleting it): already kept,
                # and its event already published.
                log.info("sms_already_stored", modem=modem_id, index=index)
        return None if sms_id is None else self._announce(sms_id)

    def expire(self) -> list[InboundSms]:
        """Groups whose parts stayed missing too long, now kept and announced as they are
        (looked at every :data:`EXPIRE_EVERY_S`)."""
        now = self.clock.now()
        if now < self._next_expiry:
            return []
        self._next_expiry = now + EXPIRE_EVERY_S
        ids = self.ledger.expire_inbound_parts(now, self.config.sms.reassembly_timeout_s)
        out = []
        for sms_id in ids:
            found = self._announce(sms_id)
            if found is not None:
                log.warning("sms_parts_missing", id=sms_id, missing=list(found.missing))
                out.append(found)
        return out

    def _announce(self, sms_id: int) -> InboundSms | None:
        found = self.ledger.inbox(after=sms_id - 1, limit=1)
        if not found or found[0].id != sms_id:
            return None
        sms = found[0]
        payload = message_payload(sms, show_sender=self.config.compliance.show_sms_sender)
        self.board.event("sms_received", **{k: v for k, v in payload.items() if k != "acked"})
        self.unread[sms.iccid] = self.unread.get(sms.iccid, 0) + 1
        if self.forwarder is not None:
            self.forwarder.submit(payload)
        return sms

    def acknowledged(self, counts: dict[str, int]) -> None:
        """``sms/ack`` marked these many messages per SIM read."""
        for iccid, count in counts.items():
            left = self.unread.get(iccid, 0) - count
            if left > 0:
                self.unread[iccid] = left
            else:
                self.unread.pop(iccid, None)
