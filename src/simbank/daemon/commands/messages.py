"""The inbox commands: ``sms/list`` (a page of received messages) and ``sms/ack`` (mark them
read). Both read and write only the ledger; no modem is involved, so they work while every
modem is busy or gone.
"""

from __future__ import annotations

from typing import Any

from simbank.contract import Request, SmsAckRequest, SmsListRequest
from simbank.daemon.inbox import message_payload
from simbank.daemon.runtime import BankRuntime


class MessageCommands:
    """``sms/list``, ``sms/ack``."""

    def __init__(self, runtime: BankRuntime) -> None:
        self.gw = runtime

    async def sms_list(self, req: Request) -> dict[str, Any]:
        """Messages in arrival order after ``after`` (the previous page's ``next``); ``next``
        is null on the last page. ``unread`` counts the SIM's (or the gateway's) unread."""
        assert isinstance(req, SmsListRequest)
        gw = self.gw
        page = gw.ledger.inbox(
            iccid=req.iccid,
            modem=req.modem,
            since=None if req.since is None else req.since.timestamp(),
            unread_only=req.unread,
            after=req.after,
            limit=req.limit + 1,
        )
        more = len(page) > req.limit
        page = page[: req.limit]
        unread = gw.inbox.unread
        show = gw.config.compliance.show_sms_sender
        return {
            "messages": [message_payload(sms, show_sender=show) for sms in page],
            "next": page[-1].id if more else None,
            "unread": unread.get(req.iccid, 0) if req.iccid else sum(unread.values()),
        }

    async def sms_ack(self, req: Request) -> dict[str, Any]:
        """Mark messages read; the SIMs' retained unread counts follow at once. Acknowledging
        a message twice (or an id that does not exist) is not an error: it counts nothing."""
        assert isinstance(req, SmsAckRequest)
        gw = self.gw
        counts = gw.ledger.ack_inbound(
            gw.clock.now(), ids=req.ids, iccid=req.iccid, up_to=req.up_to
        )
        gw.inbox.acknowledged(counts)
        for iccid in counts:
            if iccid in gw.sims:
                gw.publish_sim(iccid)
        return {
            "acked": sum(counts.values()),
            "unread": {iccid: gw.inbox.unread.get(iccid, 0) for iccid in sorted(counts)},
        }
