"""The SIM commands: ``sim/rotate``, ``sim/select`` (a switch, through :mod:`.access`),
``sim/disable``, ``sim/enable``, ``sim/release`` (state moves decided by
:func:`simbank.bank.sim_state.operator_transition`) and ``sim/report``.
"""

from __future__ import annotations

from typing import Any

from simbank.bank.rotation import Action
from simbank.bank.sim_state import operator_transition
from simbank.bank.usage import UsageKind
from simbank.contract import IccidRequest, ModemRequest, ReleaseRequest, Request, SelectRequest
from simbank.daemon.commands.access import ModemAccess
from simbank.daemon.outbound_calls import unauthorized
from simbank.daemon.publication import balance_info, evidence_json
from simbank.daemon.redact import redact_text
from simbank.daemon.runtime import BankRuntime
from simbank.errors import Refused

#: How far back ``sim/report`` lists the SIM's usage.
REPORT_DAYS = 30
#: How many of the SIM's last inbound calls ``sim/report`` lists.
REPORT_CALLS_IN = 5


class SimCommands:
    """``sim/rotate``, ``sim/select``, ``sim/disable``, ``sim/enable``, ``sim/release``,
    ``sim/report``."""

    def __init__(self, runtime: BankRuntime, access: ModemAccess) -> None:
        self.gw = runtime
        self.access = access

    async def sim_rotate(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, ModemRequest)
        sup = self.access.ready(req.modem)
        await self.access.lock(sup)
        try:
            decision = self.access.plan(
                req.modem, Action(UsageKind.CALL, max_duration_s=60), rebalance=True
            )
            if decision.decision != "switch":
                return {
                    "modem": req.modem,
                    "rotated": False,
                    "slot": sup.active_slot,
                    "iccid": sup.iccid,
                    "why": "no other SIM has more headroom"
                    if decision.decision == "stay"
                    else "no eligible SIM",
                }
            assert decision.slot is not None
            result = await self.access.switch(sup, decision.slot, "operator", checked=True)
        finally:
            sup.lock.release()
        return {"modem": req.modem, "rotated": True, "slot": result.slot, "iccid": result.iccid}

    async def sim_select(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, SelectRequest)
        sup = self.access.ready(req.modem)
        if req.slot > sup.cfg.slots:
            raise Refused("validation_error", f"modem {req.modem} has {sup.cfg.slots} slot(s)")
        if req.slot > sup.usable_slots:
            raise Refused("validation_error", f"modem {req.modem} cannot switch SIM slots (probed)")
        await self.access.lock(sup)
        try:
            result = await self.access.switch(
                sup, req.slot, "operator", checked=False, audit="sim_select"
            )
        finally:
            sup.lock.release()
        return {
            "modem": req.modem,
            "slot": req.slot,
            "iccid": result.iccid,
            "sim_status": str(result.status),
            "registered": result.registered,
        }

    async def sim_disable(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, IccidRequest)
        gw = self.gw
        iccid = self.access.sim(req.iccid)
        state = operator_transition(iccid, gw.sim_state(iccid), "disable")
        gw.ledger.set_sim_state(iccid, state, gw.clock.now(), reason="operator")
        gw.ledger.audit(gw.clock.now(), "operator", "sim_disable", {"iccid": iccid})
        gw.publish_sim(iccid)
        return {"iccid": iccid, "state": state}

    async def sim_enable(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, IccidRequest)
        gw = self.gw
        iccid = self.access.sim(req.iccid)
        state = operator_transition(iccid, gw.sim_state(iccid), "enable")
        gw.ledger.set_sim_state(iccid, state, gw.clock.now(), reason="operator")
        gw.ledger.audit(gw.clock.now(), "operator", "sim_enable", {"iccid": iccid})
        gw.publish_sim(iccid)
        return {"iccid": iccid, "state": gw.sim_state(iccid)}

    async def sim_release(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, ReleaseRequest)
        gw = self.gw
        iccid = self.access.sim(req.iccid)
        before = gw.sim_state(iccid)
        state = operator_transition(iccid, before, "release")
        now = gw.clock.now()
        gw.detector.release(iccid)
        gw.ledger.set_sim_state(iccid, state, now, reason="released", note=req.note)
        gw.ledger.audit(
            now, "operator", "sim_release", {"iccid": iccid, "was": before, "note": req.note}
        )
        gw.board.event("sim_released", iccid=iccid, was=before, note=req.note)
        gw.publish_sim(iccid)
        return {"iccid": iccid, "was": before, "state": gw.sim_state(iccid)}

    async def sim_report(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, IccidRequest)
        gw = self.gw
        iccid = self.access.sim(req.iccid)
        since = gw.clock.now() - REPORT_DAYS * 86400
        records = gw.ledger.usage_records(iccid, since)
        usage = [
            {
                "id": r.id,
                "kind": str(r.kind),
                "booked_at": r.booked_at,
                "completed_at": r.completed_at,
                "outcome": r.outcome,
                "duration_s": r.duration_s,
                "destination": r.destination[:12] if r.destination else None,
                "modem": r.modem,
                **({"unauthorized": True} if unauthorized(r.transaction) else {}),
            }
            for r in records
        ]
        record = gw.verdicts.records().get(iccid)
        info = gw.sims[iccid]
        balance = balance_info(gw.balances.get(iccid), gw.limits_of(iccid).balance_floor)
        return {
            "iccid": iccid,
            "state": gw.sim_state(iccid),
            "reason": record.reason if record else None,
            "since": record.since if record else None,
            "policy": info.policy,
            "modem": info.modem,
            "slot": info.slot,
            "usage": usage,
            "evidence": evidence_json(gw.ledger.evidence(iccid)),
            "audit": [
                {"at": a.at, "actor": a.actor, "action": a.action, **a.detail}
                for a in gw.ledger.audit_trail(iccid)
            ],
            "sms": {
                "unread": gw.inbox.unread.get(iccid, 0),
                "sent": gw.ledger.delivery_summary(iccid, since),
            },
            "balance": None if balance is None else balance.model_dump(mode="json"),
            "calls_in": self._calls_in(iccid, since),
            # Calls seen on the modem that nobody asked simbank for (booked as usage).
            "calls_unauthorized": sum(1 for r in records if unauthorized(r.transaction)),
        }

    def _calls_in(self, iccid: str, since: float) -> dict[str, Any]:
        """Inbound calls: counts by outcome over the report's days, the last few calls (the
        caller as the privacy rule shows it now: masked unless show_sms_sender)."""
        calls = self.gw.ledger
        show = self.gw.config.compliance.show_sms_sender
        return {
            "days": REPORT_DAYS,
            **calls.inbound_call_counts(iccid, since),
            "recent": [
                {
                    "at": c.started_at,
                    "outcome": c.outcome,
                    "action": c.action,
                    "reason": c.reason,
                    "rings": c.rings,
                    "caller": c.shown_caller if show else redact_text(c.shown_caller),
                    "modem": c.modem,
                }
                for c in calls.inbound_calls(iccid, REPORT_CALLS_IN)
            ],
        }
