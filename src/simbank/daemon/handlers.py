"""Command handlers: each request → policy → rotation → book → act → complete → publish.

Book before act: the ledger commits the booking before the AT command goes out, and a booking
whose outcome never arrives (crash, unplug) stays charged in full. Handlers raise ``Refused``
with a contract error code; the router turns it into the error response.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from simbank.bank.numbers import parse_destination
from simbank.bank.rotation import Action, ModemView, Plan, best_for_gateway, plan
from simbank.bank.usage import UsageKind, local_day_bounds
from simbank.contract import (
    CallRequest,
    IccidRequest,
    ModemRequest,
    PauseRequest,
    ReleaseRequest,
    Request,
    SelectRequest,
    SmsRequest,
    UssdRequest,
)
from simbank.daemon.router import Handler, booking_key
from simbank.daemon.runtime import BankRuntime
from simbank.daemon.supervisor import ModemSupervisor
from simbank.drivers.procedures import SwitchResult
from simbank.errors import Refused

log = structlog.get_logger(__name__)

#: How long a request waits for a modem that is busy with another action.
MODEM_WAIT_S = 120.0
#: A "wait for the active SIM" plan is re-checked at most this often before giving up.
WAIT_ROUNDS = 3
WAIT_SLACK_S = 0.05


class Handlers:
    """The request handlers of DESIGN §5, bound to one gateway."""

    def __init__(self, gateway: BankRuntime) -> None:
        self.gw = gateway

    def table(self) -> dict[str, Handler]:
        return {
            "status": self.status,
            "call": self.call,
            "sms/send": self.sms_send,
            "ussd": self.ussd,
            "sim/rotate": self.sim_rotate,
            "sim/select": self.sim_select,
            "sim/disable": self.sim_disable,
            "sim/enable": self.sim_enable,
            "sim/release": self.sim_release,
            "sim/report": self.sim_report,
            "modem/reset": self.modem_reset,
            "traffic/pause": self.traffic_pause,
            "traffic/resume": self.traffic_resume,
        }

    # -- helpers -------------------------------------------------------------------------------
    def _modem(self, modem_id: str) -> ModemSupervisor:
        sup = self.gw.supervisors.get(modem_id)
        if sup is None:
            raise Refused("unknown_modem", f"no modem {modem_id!r} on this gateway")
        return sup

    def _ready(self, modem_id: str) -> ModemSupervisor:
        sup = self._modem(modem_id)
        if not sup.ready:
            raise Refused("modem_error", f"modem {modem_id} is not ready")
        return sup

    def _sim(self, iccid: str) -> str:
        iccid = iccid.upper().rstrip("F")
        if iccid not in self.gw.sims:
            raise Refused("unknown_sim", f"no SIM {iccid} known to this gateway")
        return iccid

    def _stopped(self) -> None:
        if self.gw.circuit.is_open:
            raise Refused(
                "circuit_open",
                "outbound traffic is paused: too many SIMs were "
                "blocked recently; an operator must resume it (traffic/resume)",
            )
        if self.gw.paused_reason is not None:
            raise Refused("circuit_open", f"outbound traffic is paused: {self.gw.paused_reason}")

    def _views(self, modem_ids: list[str], now: float) -> list[ModemView]:
        return [self.gw.modem_view(m, now) for m in modem_ids]

    async def _locked(self, sup: ModemSupervisor) -> None:
        try:
            async with asyncio.timeout(MODEM_WAIT_S):
                await sup.lock.acquire()
        except TimeoutError as exc:
            raise Refused("busy", f"modem {sup.cfg.id} is busy") from exc

    def _plan(self, modem_id: str, action: Action, *, rebalance: bool = False) -> Plan:
        """This modem's plan for ``action`` now; a ``none`` plan raises its refusal."""
        now = self.gw.clock()
        view = self.gw.modem_view(modem_id, now)
        decision = plan(
            view.slots,
            view.active_slot,
            view.active_since,
            now,
            tz=self.gw.tz,
            action=action,
            min_dwell_s=self.gw.config.rotation.min_dwell_s,
            rebalance=rebalance,
            wait_limit_s=self.gw.config.rotation.wait_for_active_s,
        )
        if decision.decision == "none" and not rebalance:
            raise _refusal(decision)
        return decision

    def _choose(self, action: Action, modem: str | None) -> ModemSupervisor:
        """The modem for an action (the plan itself is made again under the modem's lock)."""
        now = self.gw.clock()
        rot = self.gw.config.rotation
        if modem is not None:
            sup = self._ready(modem)
            self._plan(modem, action)
            return sup
        ready = [m for m, s in self.gw.supervisors.items() if s.ready]
        idle = [m for m in ready if not self.gw.supervisors[m].lock.locked()] or ready
        choice = best_for_gateway(
            self._views(idle, now),
            now,
            tz=self.gw.tz,
            action=action,
            min_dwell_s=rot.min_dwell_s,
            wait_limit_s=rot.wait_for_active_s,
        )
        if choice.modem is None:
            if not choice.plans:
                raise Refused("no_eligible_sim", "no modem is ready")
            raise _refusal(choice.plan, choice.plans.values())
        return self.gw.supervisors[choice.modem]

    async def _switch(self, sup: ModemSupervisor, slot: int, actor: str) -> SwitchResult:
        gw = self.gw
        old = sup.iccid
        expected = gw.slots.get((sup.cfg.id, slot))
        rot = gw.config.rotation
        result = await sup.switch_to(
            slot,
            sim_ready_timeout_s=rot.sim_ready_timeout_s,
            registration_timeout_s=rot.registration_timeout_s,
        )
        detail = {
            "modem": sup.cfg.id,
            "slot": slot,
            "from": old,
            "iccid": result.iccid,
            "expected": expected,
            "registered": result.registered,
            "status": str(result.status),
        }
        gw.ledger.audit(gw.clock(), actor, "sim_switched", detail)
        if old:
            gw.publish_sim(old)
        if expected is not None and result.iccid != expected:
            log.warning("slot_iccid_mismatch", slot=slot, expected=expected, found=result.iccid)
            raise Refused(
                "no_eligible_sim",
                f"slot {slot} of {sup.cfg.id} holds "
                f"{result.iccid}, not {expected}; inventory updated, try again",
            )
        gw.board.event(
            "sim_rotated",
            modem=sup.cfg.id,
            slot=slot,
            iccid=result.iccid,
            previous=old,
            registered=result.registered,
            actor=actor,
        )
        if not result.registered and result.iccid:
            # A SIM that does not come up is the detector's case, not a retry loop.
            gw.apply(gw.detector.tick(gw.clock()))
            raise Refused(
                "no_eligible_sim",
                f"SIM {result.iccid} did not register after "
                "the switch; the block detector follows it",
            )
        return result

    async def _prepare(self, sup: ModemSupervisor, action: Action) -> str:
        """Inside the modem lock: plan again (usage may have moved) and switch if needed."""
        decision = self._plan(sup.cfg.id, action)
        for _ in range(WAIT_ROUNDS):
            if decision.decision != "wait" or decision.wait_until is None:
                break
            # The active SIM frees up in a moment: wait for it (holding the modem) rather
            # than switch and re-register.
            delay = (decision.wait_until - self.gw.clock()) / self.gw.time_scale
            await asyncio.sleep(max(0.0, delay) + WAIT_SLACK_S)
            decision = self._plan(sup.cfg.id, action)
        if decision.decision == "wait":
            raise _refusal(decision)
        if decision.decision == "switch":
            assert decision.slot is not None
            await self._switch(sup, decision.slot, "rotation")
        iccid = sup.iccid
        if iccid is None:
            raise Refused("no_eligible_sim", f"modem {sup.cfg.id} has no SIM")
        return iccid

    # -- commands ------------------------------------------------------------------------------
    async def status(self, _req: Request) -> dict[str, Any]:
        gw = self.gw
        return {
            "modems": {m: s.model_dump(mode="json") for m, s in gw.board.modems.items()},
            "sims": {i: s.model_dump(mode="json") for i, s in gw.board.sims.items()},
            "traffic": {
                "paused": gw.paused_reason is not None,
                "pause_reason": gw.paused_reason,
                "circuit_open": gw.circuit.is_open,
                "blocks_in_window": gw.circuit.blocks_in_window(gw.clock()),
            },
        }

    async def call(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, CallRequest)
        gw = self.gw
        if req.max_duration_s > gw.config.compliance.max_call_duration_s:
            raise Refused(
                "validation_error",
                f"max_duration_s above {gw.config.compliance.max_call_duration_s}",
            )
        destination = parse_destination(req.number, gw.config.compliance)
        number = destination.e164  # ledger and do-not-call key; the modem dials ``.dial``
        self._stopped()
        digest = gw.ledger.hasher.hash(number)
        if gw.dnc.contains_hash(digest):
            raise Refused("do_not_call", "the destination is on the do-not-call list")
        day_start, _ = local_day_bounds(gw.clock(), gw.tz)
        action = Action(
            UsageKind.CALL,
            max_duration_s=req.max_duration_s,
            destination_calls_today=gw.ledger.destination_calls(digest, day_start),
        )
        sup = self._choose(action, req.modem)
        await self._locked(sup)
        try:
            self._stopped()
            action = Action(
                UsageKind.CALL,
                max_duration_s=req.max_duration_s,
                destination_calls_today=gw.ledger.destination_calls(digest, day_start),
            )
            iccid = await self._prepare(sup, action)
            booking = gw.ledger.book(
                iccid,
                UsageKind.CALL,
                gw.clock(),
                reserved_s=req.max_duration_s,
                destination=number,
                modem=sup.cfg.id,
                transaction=_txn(req),
            )
            gw.publish_sim(iccid)
            outcome, duration, cause = "unknown", req.max_duration_s, None
            try:
                result = await sup.call(destination.dial, req.max_duration_s)
                outcome, duration, cause = result.outcome, result.duration_s, result.cause
            finally:
                # An unknown end (the modem vanished mid-call) stays charged in full.
                gw.ledger.complete(booking, gw.clock(), outcome, duration)
                gw.publish_sim(iccid)
        finally:
            sup.lock.release()
        now = gw.clock()
        if outcome == "failed" and cause is not None:
            gw.apply(
                gw.detector.on_call_failed(
                    iccid, now, cause=cause.code, destination_hash=digest, raw=cause.text
                )
            )
        elif outcome in {"completed", "busy", "no_answer"}:
            gw.detector.on_call_ok(iccid, now)
        self._after_use(iccid)
        return {
            "modem": sup.cfg.id,
            "iccid": iccid,
            "outcome": outcome,
            "duration_s": duration,
            "cause": cause.code if cause else None,
            "cause_text": cause.text if cause else None,
        }

    async def sms_send(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, SmsRequest)
        gw = self.gw
        destination = parse_destination(req.number, gw.config.compliance)
        number = destination.e164
        self._stopped()
        if gw.dnc.contains_hash(gw.ledger.hasher.hash(number)):
            raise Refused("do_not_call", "the destination is on the do-not-call list")
        action = Action(UsageKind.SMS)
        sup = self._choose(action, req.modem)
        await self._locked(sup)
        try:
            self._stopped()
            iccid = await self._prepare(sup, action)
            booking = gw.ledger.book(
                iccid,
                UsageKind.SMS,
                gw.clock(),
                destination=number,
                modem=sup.cfg.id,
                transaction=_txn(req),
            )
            gw.publish_sim(iccid)
            outcome, reference = "unknown", None
            try:
                reference = await sup.send_sms(destination.dial, req.text)
                outcome = "sent"
            finally:
                # A failed send stays booked: the retained usage must show it too.
                gw.ledger.complete(booking, gw.clock(), outcome)
                gw.publish_sim(iccid)
        finally:
            sup.lock.release()
        self._after_use(iccid)
        return {"modem": sup.cfg.id, "iccid": iccid, "reference": reference}

    def _after_use(self, iccid: str) -> None:
        usage, limits = self.gw.usage_of(iccid)
        self.gw.publish_sim(iccid)
        if self.gw.sim_state(iccid) != "blocked" and self.gw.resting(usage, limits):
            self.gw.board.event("quota_exhausted", iccid=iccid, modem=self.gw.sims[iccid].modem)

    async def ussd(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, UssdRequest)
        gw = self.gw
        sup = self._ready(req.modem)
        await self._locked(sup)
        try:
            iccid = sup.iccid
            if iccid is None:
                raise Refused("no_eligible_sim", f"modem {req.modem} has no SIM")
            if gw.sim_state(iccid) in {"blocked", "disabled"}:
                raise Refused("not_permitted", f"SIM {iccid} is {gw.sim_state(iccid)}")
            booking = gw.ledger.book(
                iccid, UsageKind.USSD, gw.clock(), modem=req.modem, transaction=_txn(req)
            )
            outcome, text = "unknown", ""
            try:
                text = await sup.ussd(req.code)
                outcome = "answered"
            finally:
                gw.ledger.complete(booking, gw.clock(), outcome)
        finally:
            sup.lock.release()
        gw.apply(gw.detector.on_operator_text(iccid, gw.clock(), text=text, source="ussd"))
        return {"modem": req.modem, "iccid": iccid, "text": text}

    async def sim_rotate(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, ModemRequest)
        sup = self._ready(req.modem)
        await self._locked(sup)
        try:
            decision = self._plan(
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
            result = await self._switch(sup, decision.slot, "operator")
        finally:
            sup.lock.release()
        return {"modem": req.modem, "rotated": True, "slot": result.slot, "iccid": result.iccid}

    async def sim_select(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, SelectRequest)
        gw = self.gw
        sup = self._ready(req.modem)
        if req.slot > sup.cfg.slots:
            raise Refused("validation_error", f"modem {req.modem} has {sup.cfg.slots} slot(s)")
        if req.slot > sup.usable_slots:
            raise Refused("validation_error", f"modem {req.modem} cannot switch SIM slots (probed)")
        await self._locked(sup)
        try:
            rot = gw.config.rotation
            old = sup.iccid
            result = await sup.switch_to(
                req.slot,
                sim_ready_timeout_s=rot.sim_ready_timeout_s,
                registration_timeout_s=rot.registration_timeout_s,
            )
            gw.ledger.audit(
                gw.clock(),
                "operator",
                "sim_select",
                {"modem": req.modem, "slot": req.slot, "iccid": result.iccid},
            )
            if old and old != result.iccid:
                gw.publish_sim(old)
        finally:
            sup.lock.release()
        gw.board.event(
            "sim_rotated",
            modem=req.modem,
            slot=req.slot,
            iccid=result.iccid,
            previous=old,
            registered=result.registered,
            actor="operator",
        )
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
        iccid = self._sim(req.iccid)
        state = gw.sim_state(iccid)
        if state == "blocked":
            raise Refused("not_permitted", "a blocked SIM stays quarantined until released")
        gw.ledger.set_sim_state(iccid, "disabled", gw.clock(), reason="operator")
        gw.ledger.audit(gw.clock(), "operator", "sim_disable", {"iccid": iccid})
        gw.publish_sim(iccid)
        return {"iccid": iccid, "state": "disabled"}

    async def sim_enable(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, IccidRequest)
        gw = self.gw
        iccid = self._sim(req.iccid)
        if gw.sim_state(iccid) != "disabled":
            raise Refused("not_permitted", f"SIM {iccid} is {gw.sim_state(iccid)}, not disabled")
        gw.ledger.set_sim_state(iccid, "available", gw.clock(), reason="operator")
        gw.ledger.audit(gw.clock(), "operator", "sim_enable", {"iccid": iccid})
        gw.publish_sim(iccid)
        return {"iccid": iccid, "state": gw.sim_state(iccid)}

    async def sim_release(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, ReleaseRequest)
        gw = self.gw
        iccid = self._sim(req.iccid)
        before = gw.sim_state(iccid)
        if before not in {"blocked", "suspected", "locked"}:
            raise Refused("not_permitted", f"SIM {iccid} is {before}: nothing to release")
        now = gw.clock()
        gw.detector.release(iccid)
        gw.ledger.set_sim_state(iccid, "available", now, reason="released", note=req.note)
        gw.ledger.audit(
            now, "operator", "sim_release", {"iccid": iccid, "was": before, "note": req.note}
        )
        gw.board.event("sim_released", iccid=iccid, was=before, note=req.note)
        gw.publish_sim(iccid)
        return {"iccid": iccid, "was": before, "state": gw.sim_state(iccid)}

    async def sim_report(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, IccidRequest)
        gw = self.gw
        iccid = self._sim(req.iccid)
        since = gw.clock() - 30 * 86400
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
            }
            for r in gw.ledger.usage_records(iccid, since)
        ]
        record = gw.ledger.sim_states().get(iccid)
        info = gw.sims[iccid]
        return {
            "iccid": iccid,
            "state": gw.sim_state(iccid),
            "reason": record.reason if record else None,
            "since": record.since if record else None,
            "policy": info.policy,
            "modem": info.modem,
            "slot": info.slot,
            "usage": usage,
            "evidence": [
                {"at": e.at, "kind": e.kind, **e.detail} for e in gw.ledger.evidence(iccid)
            ],
            "audit": [
                {"at": a.at, "actor": a.actor, "action": a.action, **a.detail}
                for a in gw.ledger.audit_trail(iccid)
            ],
        }

    async def modem_reset(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, ModemRequest)
        sup = self._ready(req.modem)
        await self._locked(sup)
        try:
            await sup.reset()
        finally:
            sup.lock.release()
        self.gw.ledger.audit(self.gw.clock(), "operator", "modem_reset", {"modem": req.modem})
        return {
            "modem": req.modem,
            "state": "ready" if sup.ready else "probing",
            "iccid": sup.iccid,
        }

    async def traffic_pause(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, PauseRequest)
        gw = self.gw
        reason = req.reason or "paused by an operator"
        gw.set_paused(reason)
        gw.ledger.audit(gw.clock(), "operator", "traffic_pause", {"reason": reason})
        gw.board.event("circuit_opened", reason="operator", note=reason)
        return {"paused": True, "reason": reason}

    async def traffic_resume(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, PauseRequest)
        gw = self.gw
        was_open = gw.circuit.is_open
        gw.set_paused(None)
        gw.close_circuit()
        gw.ledger.audit(
            gw.clock(),
            "operator",
            "traffic_resume",
            {"reason": req.reason, "circuit_was_open": was_open},
        )
        gw.board.event("circuit_closed", reason="operator", note=req.reason)
        return {"paused": False, "circuit_open": False}


def _refusal(decision: Plan, plans: Any = ()) -> Refused:
    refusals = list(decision.refusals.values())
    for other in plans:
        refusals += list(other.refusals.values())
    code = decision.error_code if not plans else _shared_code(plans)
    frees = [r.frees_at for r in refusals if r.frees_at is not None]
    reasons = sorted({f"{r.limit or r.code}: {r.message}" for r in refusals})
    unusable = dict(decision.unusable)
    message = "; ".join(reasons) or (
        f"no eligible SIM ({', '.join(f'slot {k}: {v}' for k, v in unusable.items())})"
        if unusable
        else "no eligible SIM"
    )
    return Refused(
        code,
        message,
        frees_at=min(frees, default=None),
        limits=sorted({r.limit for r in refusals if r.limit}),
    )


def _shared_code(plans: Any) -> str:
    codes = {p.error_code for p in plans}
    return codes.pop() if len(codes) == 1 else "no_eligible_sim"


def _txn(req: Request) -> str | None:
    return booking_key(req.transaction)
