"""Getting a modem to act: which modem and SIM (the rotation plan), waiting for the modem's
lock, and switching its SIM. Shared by the traffic and SIM commands.

The decisions are :mod:`simbank.bank.rotation`'s and :mod:`simbank.bank.refusal`'s; this
module does the waiting and the switching, and records what it did.

No slot is switched under a live call, and no call is placed beside one
(:attr:`ModemSupervisor.in_call`: an inbound call ringing or live, or any call the modem
lists, whoever dialled it): without a forced modem, one with no call, no hold and no action
under way is preferred; a plan that must switch a modem whose call is live, or a voice action
(``call``, ``call/authorize``) that lands on one (forced, or no modem without a call can
serve), waits for the call's end (at most :data:`CALL_WAIT_S`), then plans again, else refuses
``busy``. An SMS or USSD may use a modem in a call when it need not switch (the radio sends
them during a call).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import structlog

from simbank.bank.policy import Refusal
from simbank.bank.refusal import gateway_refusal, plan_refusal
from simbank.bank.rotation import Action, Plan, best_for_gateway, plan
from simbank.bank.usage import UsageKind
from simbank.daemon.modem.supervisor import ModemSupervisor
from simbank.daemon.runtime import BankRuntime
from simbank.drivers.procedures import SwitchResult
from simbank.errors import Refused

log = structlog.get_logger(__name__)

#: How long a request waits for a modem that is busy with another action.
MODEM_WAIT_S = 120.0
#: A "wait for the active SIM" plan is re-checked at most this often before giving up.
WAIT_ROUNDS = 3
#: Wall-clock margin after such a wait, so the re-check sees the SIM free.
WAIT_SLACK_S = 0.05
#: How long a switch waits for a live call on the modem to end (loop seconds).
CALL_WAIT_S = 30.0
#: While waiting for a modem's lock, whether an open authorization took it is checked this
#: often (loop seconds): then the wait is over at once.
HOLD_CHECK_S = 0.25


class ModemAccess:
    """Finds, locks, plans for and switches the modems of one gateway."""

    def __init__(self, runtime: BankRuntime) -> None:
        self.gw = runtime
        #: Modems held (their lock taken) by something that outlives one request — an open
        #: PBX authorization (:mod:`.pbx`) — and why: they refuse ``busy`` at once.
        self.holds: dict[str, str] = {}
        self.call_wait_s = CALL_WAIT_S

    def modem(self, modem_id: str) -> ModemSupervisor:
        sup = self.gw.supervisors.get(modem_id)
        if sup is None:
            raise Refused("unknown_modem", f"no modem {modem_id!r} on this gateway")
        return sup

    def ready(self, modem_id: str) -> ModemSupervisor:
        sup = self.modem(modem_id)
        if not sup.ready:
            raise Refused("modem_error", f"modem {modem_id} is not ready")
        return sup

    def sim(self, iccid: str) -> str:
        """The known SIM ``iccid`` names (any case, padding ``F`` dropped)."""
        iccid = iccid.upper().rstrip("F")
        if iccid not in self.gw.sims:
            raise Refused("unknown_sim", f"no SIM {iccid} known to this gateway")
        return iccid

    def refuse_if_stopped(self) -> None:
        """Outbound traffic is stopped by the circuit breaker or an operator's pause."""
        if self.gw.circuit.is_open:
            raise Refused(
                "circuit_open",
                "outbound traffic is paused: too many SIMs were "
                "blocked recently; an operator must resume it (traffic/resume)",
            )
        if self.gw.paused_reason is not None:
            raise Refused("circuit_open", f"outbound traffic is paused: {self.gw.paused_reason}")

    async def lock(self, sup: ModemSupervisor) -> None:
        """Take the modem's lock (the caller releases it), or refuse ``busy``: at once when
        the modem is held (see :attr:`holds`) or becomes held while waited for, else after
        :data:`MODEM_WAIT_S`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MODEM_WAIT_S
        while True:
            held = self.holds.get(sup.cfg.id)
            if held is not None:
                raise Refused("busy", f"modem {sup.cfg.id} is busy: {held}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise Refused("busy", f"modem {sup.cfg.id} is busy")
            try:
                async with asyncio.timeout(min(remaining, HOLD_CHECK_S)):
                    await sup.lock.acquire()
            except TimeoutError:
                continue
            return

    async def acquire(
        self, action: Callable[[], Action], modem: str | None, *, needs: str | None = None
    ) -> tuple[ModemSupervisor, str]:
        """Choose the modem, take its lock, plan and switch: the modem (locked: the caller
        releases it) and the ICCID that is to act. ``action`` is asked afresh each time (the
        usage may move while waiting). Without a forced ``modem``, a modem an open
        authorization takes while it is waited for is left for another one."""
        passed: set[str] = set()
        while True:
            sup = self.choose(action(), modem, needs=needs, passed=passed)
            try:
                await self.lock(sup)
            except Refused as exc:
                if modem is not None or exc.reason != "busy" or sup.cfg.id not in self.holds:
                    raise
                log.info("modem_taken_meanwhile", modem=sup.cfg.id)
                passed.add(sup.cfg.id)
                continue
            try:
                self.refuse_if_stopped()
                iccid = await self.prepare(sup, action())
            except BaseException:
                sup.lock.release()
                raise
            return sup, iccid

    def plan(self, modem_id: str, action: Action, *, rebalance: bool = False) -> Plan:
        """This modem's plan for ``action`` now; a ``none`` plan raises its refusal."""
        now = self.gw.clock.now()
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
            raise with_segments(plan_refusal(decision), decision.refusals.values())
        return decision

    def choose(
        self,
        action: Action,
        modem: str | None,
        *,
        needs: str | None = None,
        passed: Iterable[str] = (),
    ) -> ModemSupervisor:
        """The modem for an action (the plan itself is made again under the modem's lock).
        ``needs``: a capability the modem must not lack (``pdu_mode`` for a text outside
        GSM-7): a modem whose probe found it absent is not chosen. Without ``modem``, the
        modems that are free (no action under way, no open authorization, no call) are
        planned first, then those without an action under way; ``passed`` are left out."""
        if modem is not None:
            sup = self.ready(modem)
            self.plan(modem, action)
            return sup
        now = self.gw.clock.now()
        rot = self.gw.config.rotation
        sups = self.gw.supervisors
        up = [m for m, s in sups.items() if s.ready]
        ready = [m for m in up if not (needs and self._lacks(m, needs))]
        if up and not ready:
            raise Refused(
                "validation_error", f"no ready modem has {needs} (probed): this cannot be sent"
            )
        left_out = set(passed)
        if ready and left_out.issuperset(ready):
            raise Refused("busy", "every modem that could act is busy with an authorized call")
        ready = [m for m in ready if m not in left_out]
        idle = [m for m in ready if not sups[m].lock.locked()] or ready
        free = [m for m in idle if m not in self.holds and not sups[m].in_call]
        tiers = [free, idle] if free and free != idle else [idle]
        for tier in tiers:
            choice = best_for_gateway(
                [self.gw.modem_view(m, now) for m in tier],
                now,
                tz=self.gw.tz,
                action=action,
                min_dwell_s=rot.min_dwell_s,
                wait_limit_s=rot.wait_for_active_s,
            )
            if choice.modem is not None:
                return sups[choice.modem]
        if not choice.plans:
            raise Refused("no_eligible_sim", "no modem is ready")
        refusals = [r for p in choice.plans.values() for r in p.refusals.values()]
        raise with_segments(gateway_refusal(choice), refusals)

    def _lacks(self, modem_id: str, capability: str) -> bool:
        driver = self.gw.supervisors[modem_id].driver
        return driver is not None and driver.capabilities.get(capability) is False

    async def prepare(self, sup: ModemSupervisor, action: Action) -> str:
        """Inside the modem lock: plan again (usage may have moved) and switch if needed;
        returns the ICCID that is to act. A switch, or a voice action, waits for a live call
        on the modem to end (at most :attr:`call_wait_s`), then the plan is made again."""
        decision = await self._settled_plan(sup, action)
        voice = action.kind is UsageKind.CALL
        if sup.in_call and (voice or decision.decision == "switch"):
            await self._call_ended(
                sup,
                "no second call is placed beside it"
                if voice
                else "its SIM is not switched under it",
            )
            decision = await self._settled_plan(sup, action)
        if decision.decision == "switch":
            assert decision.slot is not None
            await self.switch(sup, decision.slot, "rotation", checked=True)
        iccid = sup.iccid
        if iccid is None:
            raise Refused("no_eligible_sim", f"modem {sup.cfg.id} has no SIM")
        return iccid

    async def _call_ended(
        self, sup: ModemSupervisor, what: str = "its SIM is not switched under it"
    ) -> None:
        """Inside the modem lock: until no call is live on the modem, or refuse ``busy``
        after :attr:`call_wait_s` (loop seconds). ``what``: what is not done under the call
        (the refusal says so)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.call_wait_s
        log.info("action_waits_for_call", modem=sup.cfg.id, at_most_s=self.call_wait_s)
        while sup.in_call:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise Refused(
                    "busy",
                    f"modem {sup.cfg.id} has a live call that did not end within "
                    f"{self.call_wait_s:g} s; {what}",
                    modem=sup.cfg.id,
                )
            # The watch says when its calls change; an inbound call is looked at each step.
            await sup.call_watch.changed(min(remaining, HOLD_CHECK_S * 2))
        log.info("modem_call_ended", modem=sup.cfg.id)

    async def _settled_plan(self, sup: ModemSupervisor, action: Action) -> Plan:
        """This modem's plan, waited for while it says the active SIM frees up in a moment."""
        decision = self.plan(sup.cfg.id, action)
        for _ in range(WAIT_ROUNDS):
            if decision.decision != "wait" or decision.wait_until is None:
                break
            # The active SIM frees up in a moment: wait for it (holding the modem) rather
            # than switch and re-register.
            clock = self.gw.clock
            slack = WAIT_SLACK_S / (clock.real(1.0) or 1.0)  # the real margin in clock time
            await clock.sleep(max(0.0, decision.wait_until - clock.now()) + slack)
            decision = self.plan(sup.cfg.id, action)
        if decision.decision == "wait":
            raise with_segments(plan_refusal(decision), decision.refusals.values())
        return decision

    async def switch(
        self,
        sup: ModemSupervisor,
        slot: int,
        actor: str,
        *,
        checked: bool,
        audit: str = "sim_switched",
    ) -> SwitchResult:
        """Inside the modem lock: switch to ``slot``, audit it, announce ``sim_rotated``.

        ``checked`` (a switch made to act): refuse ``no_eligible_sim`` when the slot held
        another SIM than the inventory said, or the SIM did not register (then the block
        detector follows it). Unchecked (``sim/select``), the result is reported as found.
        """
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
        gw.ledger.audit(gw.clock.now(), actor, audit, detail)
        if old and old != result.iccid:
            gw.publish_sim(old)
        if checked and expected is not None and result.iccid != expected:
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
        if checked and not result.registered and result.iccid:
            # A SIM that does not come up is the detector's case, not a retry loop.
            gw.apply(gw.detector.tick(gw.clock.now()))
            raise Refused(
                "no_eligible_sim",
                f"SIM {result.iccid} did not register after "
                "the switch; the block detector follows it",
            )
        return result


def with_segments(refused: Refused, refusals: Iterable[Refusal]) -> Refused:
    """An SMS refused for its quota names the segments the text needs and the most that any
    refused SIM has left (``detail.segments_needed``, ``detail.segments_remaining``)."""
    counted = [r for r in refusals if r.segments_needed is not None]
    if counted:
        refused.data["segments_needed"] = counted[0].segments_needed
        refused.data["segments_remaining"] = max(r.segments_remaining or 0 for r in counted)
    return refused
