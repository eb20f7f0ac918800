"""The traffic commands: ``call``, ``sms/send`` and ``ussd``.

Each goes request → policy → rotation → book → act → complete → publish: the checks and the
plan are :mod:`simbank.bank`'s, the modem is found and switched by :mod:`.access`, and the
act runs inside :func:`.booking.booked`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simbank.bank.numbers import Destination, parse_destination
from simbank.bank.rotation import Action
from simbank.bank.sim_state import (
    MOMENTARY_RESTS,
    announces_quota_exhausted,
    rest_reason,
    ussd_refusal,
)
from simbank.bank.usage import UsageKind, local_day_bounds
from simbank.contract import CallRequest, Request, SmsRequest, UssdRequest
from simbank.daemon.commands.access import ModemAccess
from simbank.daemon.commands.booking import Booking, booked
from simbank.daemon.router import booking_key
from simbank.daemon.runtime import BankRuntime
from simbank.errors import CommandError, Refused
from simbank.sms.dcs import Coding
from simbank.sms.segments import segment

#: Call outcomes that show the SIM works (the detector's good news).
CALL_OK_OUTCOMES = frozenset({"completed", "busy", "no_answer"})


@dataclass(frozen=True, slots=True)
class CheckedCall:
    """A call request that passed :meth:`TrafficCommands.check_call`."""

    gw: BankRuntime
    destination: Destination
    #: The destination's keyed hash (the ledger's and the do-not-call list's key).
    digest: str
    max_duration_s: int
    day_start: float

    def action(self) -> Action:
        """The rotation plan's view of the call, with the destination's calls so far today
        (read afresh: ask again under the modem's lock)."""
        return Action(
            UsageKind.CALL,
            max_duration_s=self.max_duration_s,
            destination_calls_today=self.gw.ledger.destination_calls(self.digest, self.day_start),
        )


class TrafficCommands:
    """``call``, ``sms/send``, ``ussd``."""

    def __init__(self, runtime: BankRuntime, access: ModemAccess) -> None:
        self.gw = runtime
        self.access = access
        #: Called after every call (the balance check due after N calls listens).
        self.after_call: Callable[[], None] = lambda: None
        #: Called once per booked call, however it ended, with (modem, outcome, duration_s,
        #: cause): ``unknown`` when the act raised (the metrics listen).
        self.on_call: Callable[[str, str, int, int | None], None] | None = None
        #: The limit each resting SIM was last announced ``quota_exhausted`` for.
        self._announced: dict[str, str] = {}

    def check_call(self, number: str, max_duration_s: int) -> CheckedCall:
        """The checks every call passes before a modem is chosen (``call`` and
        ``call/authorize`` alike): the longest call allowed, the number, a stop of traffic,
        the do-not-call list. The rest (quotas, quiet hours, the destination cap) is the
        rotation plan's, made from :meth:`CheckedCall.action`."""
        gw = self.gw
        if max_duration_s > gw.config.compliance.max_call_duration_s:
            raise Refused(
                "validation_error",
                f"max_duration_s above {gw.config.compliance.max_call_duration_s}",
            )
        destination = parse_destination(number, gw.config.compliance)
        e164 = destination.e164  # ledger and do-not-call key; the modem dials ``.dial``
        self.access.refuse_if_stopped()
        digest = gw.ledger.hasher.hash(e164)
        if gw.dnc.contains_hash(digest):
            raise Refused("do_not_call", "the destination is on the do-not-call list")
        day_start, _ = local_day_bounds(gw.clock.now(), gw.tz)
        return CheckedCall(gw, destination, digest, max_duration_s, day_start)

    def call_ended(
        self, iccid: str, outcome: str, cause: int | None, cause_text: str | None, digest: str
    ) -> None:
        """A booked call's outcome, once known, feeds the block detector (a failure with a
        cause is evidence, a call that reached the network shows the SIM works) and the
        quota announcements; the balance check due after N calls hears of it."""
        gw = self.gw
        now = gw.clock.now()
        if outcome == "failed" and cause is not None:
            gw.apply(
                gw.detector.on_call_failed(
                    iccid, now, cause=cause, destination_hash=digest, raw=cause_text
                )
            )
        elif outcome in CALL_OK_OUTCOMES:
            gw.detector.on_call_ok(iccid, now)
        self._after_use(iccid)
        self.after_call()

    async def call(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, CallRequest)
        gw = self.gw
        checked = self.check_call(req.number, req.max_duration_s)
        destination, number, digest = checked.destination, checked.destination.e164, checked.digest
        sup, iccid = await self.access.acquire(checked.action, req.modem)
        booking: Booking | None = None
        cause = None
        try:
            async with booked(
                gw,
                iccid,
                UsageKind.CALL,
                modem=sup.cfg.id,
                transaction=booking_key(req.transaction),
                reserved_s=req.max_duration_s,
                destination=number,
            ) as booking:
                result = await sup.call(destination.dial, req.max_duration_s)
                booking.outcome, booking.duration_s = result.outcome, result.duration_s
                cause = result.cause
        finally:
            sup.lock.release()
            if booking is not None and self.on_call is not None:
                code = cause.code if cause else None
                self.on_call(sup.cfg.id, booking.outcome, booking.duration_s, code)
        self.call_ended(
            iccid,
            booking.outcome,
            cause.code if cause else None,
            cause.text if cause else None,
            digest,
        )
        return {
            "modem": sup.cfg.id,
            "iccid": iccid,
            "outcome": booking.outcome,
            "duration_s": booking.duration_s,
            "cause": cause.code if cause else None,
            "cause_text": cause.text if cause else None,
        }

    async def sms_send(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, SmsRequest)
        gw = self.gw
        destination = parse_destination(req.number, gw.config.compliance)
        number = destination.e164
        self.access.refuse_if_stopped()
        if gw.dnc.contains_hash(gw.ledger.hasher.hash(number)):
            raise Refused("do_not_call", "the destination is on the do-not-call list")
        split = segment(req.text)
        segments = split.count
        action = Action(UsageKind.SMS, segments=segments)
        needs = None if split.coding is Coding.GSM7 else "pdu_mode"
        sup = self.access.choose(action, req.modem, needs=needs)
        await self.access.lock(sup)
        try:
            self.access.refuse_if_stopped()
            iccid = await self.access.prepare(sup, action)
            driver = sup.driver
            if (
                split.coding is not Coding.GSM7
                and driver is not None
                and driver.capabilities.get("pdu_mode") is False
            ):
                # Refused before anything is booked: a text-only modem cannot send it at all.
                raise Refused(
                    "validation_error",
                    f"modem {sup.cfg.id} has no SMS PDU mode: a text outside GSM-7 cannot be "
                    "sent from it",
                )
            report = req.status_report
            if report is None:
                report = gw.policy_of(iccid).sms_status_report
            transaction = booking_key(req.transaction)
            async with booked(
                gw,
                iccid,
                UsageKind.SMS,
                modem=sup.cfg.id,
                transaction=transaction,
                destination=number,
                count=segments,
            ) as booking:
                try:
                    references = await sup.send_sms(
                        destination.dial, req.text, status_report=report
                    )
                except CommandError as exc:
                    if exc.sms and exc.code is not None:
                        self._sms_refused(iccid, exc)
                    raise
                booking.outcome = "sent"
            gw.ledger.record_sent(
                booking.id,
                transaction=transaction,
                iccid=iccid,
                modem=sup.cfg.id,
                references=references,
                now=gw.clock.now(),
                report_requested=report,
            )
            gw.deliveries.sent(sup.cfg.id)
        finally:
            sup.lock.release()
        self._after_use(iccid)
        return {
            "modem": sup.cfg.id,
            "iccid": iccid,
            "message": booking.id,
            "reference": references[0],
            "references": references,
            "segments": segments,
            "status_report": report,
        }

    async def ussd(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, UssdRequest)
        gw = self.gw
        sup = self.access.ready(req.modem)
        await self.access.lock(sup)
        try:
            iccid = sup.iccid
            if iccid is None:
                raise Refused("no_eligible_sim", f"modem {req.modem} has no SIM")
            refusal = ussd_refusal(iccid, gw.sim_state(iccid))
            if refusal is not None:
                raise refusal
            async with booked(
                gw,
                iccid,
                UsageKind.USSD,
                modem=req.modem,
                transaction=booking_key(req.transaction),
            ) as booking:
                text = await sup.ussd(req.code)
                booking.outcome = "answered"
        finally:
            sup.lock.release()
        gw.apply(gw.detector.on_operator_text(iccid, gw.clock.now(), text=text, source="ussd"))
        return {"modem": req.modem, "iccid": iccid, "text": text}

    def _sms_refused(self, iccid: str, exc: CommandError) -> None:
        """The network refused the SMS (+CMS ERROR): a barring cause is block evidence."""
        assert exc.code is not None
        gw = self.gw
        gw.apply(gw.detector.on_sms_refused(iccid, gw.clock.now(), cms=exc.code, raw=exc.raw))

    def _after_use(self, iccid: str) -> None:
        gw = self.gw
        usage, limits = gw.usage_of(iccid)
        gw.publish_sim(iccid)
        reason = rest_reason(limits, usage, gw.clock.now(), gw.tz)
        announced = self._announced.get(iccid)
        if announces_quota_exhausted(gw.sim_state(iccid), reason=reason, announced=announced):
            self._announced[iccid] = str(reason)
            gw.board.event("quota_exhausted", iccid=iccid, modem=gw.sims[iccid].modem, limit=reason)
        elif reason is None or reason in MOMENTARY_RESTS:
            self._announced.pop(iccid, None)  # serving again: the next rest is news
