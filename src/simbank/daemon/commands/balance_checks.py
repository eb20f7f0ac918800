"""The prepaid-balance check: a policy's USSD code on the SIM a modem serves with, the amount
read from the answer, and the SIM resting (``balance_low``) while it is under the floor.

Checks run on the active SIM of a ready, idle modem: on the policy's schedule
(``balance_check_interval_s``), after every ``balance_check_every_calls`` calls, and on demand
(``balance/check``). A SIM resting for its balance in another slot is checked on its schedule
too: the idle modem switches to it (audited ``balance_check_switch``), so a topped-up SIM
comes back by itself. Each is booked (a USSD request) before it is sent. An answer that holds no
amount changes nothing but the record (a SIM resting for its balance keeps resting); a failed
request is logged and tried again on the next round. Reading the amount is
:func:`simbank.bank.balance.read_balance` (pure).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import structlog

from simbank.bank.balance import balance_low, read_balance
from simbank.bank.sim_state import ussd_refusal
from simbank.bank.usage import UsageKind
from simbank.config.policy import PolicyConfig
from simbank.daemon.commands.access import ModemAccess
from simbank.daemon.commands.booking import booked
from simbank.daemon.modem.supervisor import ModemSupervisor
from simbank.daemon.router import booking_key
from simbank.daemon.runtime import BankRuntime
from simbank.errors import Refused, SimbankError

log = structlog.get_logger(__name__)

#: How often the schedule is looked at (seconds).
ROUND_S = 5.0
#: A scheduled check that failed (no answer, a refused code, a failed switch) is tried again
#: no sooner than this (or the policy's interval, if shorter): no USSD storm, no slot flapping.
RETRY_S = 600.0


class BalanceService:
    """Balance checks for every modem of the gateway."""

    def __init__(self, runtime: BankRuntime, access: ModemAccess) -> None:
        self.gw = runtime
        self.access = access
        self._nudge = asyncio.Event()
        #: When each SIM's last scheduled check was tried (it may have failed).
        self._tried: dict[str, float] = {}

    def nudge(self) -> None:
        """A call ended: a check due after N calls need not wait for the next round."""
        self._nudge.set()

    def due(self, iccid: str, policy: PolicyConfig, now: float) -> bool:
        """Whether the SIM's policy wants its balance checked now."""
        if policy.balance_ussd is None or self._resting_from_failure(iccid, policy, now):
            return False
        last = self.gw.balances.get(iccid)
        interval = policy.balance_check_interval_s
        if interval is not None and (last is None or now - last.checked_at >= interval):
            return True
        every = policy.balance_check_every_calls
        if every is not None:
            since = last.checked_at if last is not None else float("-inf")
            return self.gw.ledger.calls_booked(iccid, since) >= every
        return False

    def _resting_from_failure(self, iccid: str, policy: PolicyConfig, now: float) -> bool:
        """A scheduled check of this SIM was tried lately and left no newer record."""
        tried = self._tried.get(iccid)
        if tried is None:
            return False
        last = self.gw.balances.get(iccid)
        if last is not None and last.checked_at >= tried:
            return False  # it succeeded
        wait = min(RETRY_S, policy.balance_check_interval_s or RETRY_S)
        return now - tried < wait

    async def run(self) -> None:
        """Check every due SIM, round after round (a failure is logged, never raised)."""
        while True:
            for sup in list(self.gw.supervisors.values()):
                if sup.iccid is None or not sup.ready or sup.lock.locked():
                    continue
                try:
                    await self._round(sup)
                except (SimbankError, Refused) as exc:
                    log.warning("balance_check_failed", modem=sup.cfg.id, error=str(exc))
            await self._pause()

    async def _pause(self) -> None:
        """Until the next round: :data:`ROUND_S` on the gateway's clock, or a nudge."""
        waits = {
            asyncio.create_task(self.gw.clock.sleep(ROUND_S)),
            asyncio.create_task(self._nudge.wait()),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        self._nudge.clear()

    async def _round(self, sup: ModemSupervisor) -> None:
        """The active SIM when it is due; else a SIM of another slot resting for its balance
        whose scheduled check is due (the modem switches to it: a topped-up SIM comes back by
        itself, rotation decides what serves next)."""
        now = self.gw.clock.now()
        iccid = sup.iccid
        quiet = iccid is not None and ussd_refusal(iccid, self.gw.sim_state(iccid)) is not None
        if iccid is not None and not quiet and self.due(iccid, self.gw.policy_of(iccid), now):
            self._tried[iccid] = now
            async with sup.lock:
                if sup.iccid == iccid and sup.ready:
                    await self.check_locked(sup, None)
            return
        slot = self._low_slot_due(sup, now)
        if slot is None:
            return
        low = self.gw.slots.get((sup.cfg.id, slot))
        if low is not None:
            self._tried[low] = now
        async with sup.lock:
            if not sup.ready or sup.active_slot == slot:
                return
            result = await self.access.switch(
                sup, slot, "balance", checked=True, audit="balance_check_switch"
            )
            if result.iccid is not None and sup.ready:
                await self.check_locked(sup, None)

    def _low_slot_due(self, sup: ModemSupervisor, now: float) -> int | None:
        """A slot (not the active one) whose SIM rests for its balance and whose policy's
        scheduled check is due; None when there is none."""
        if sup.usable_slots < 2:
            return None
        for slot in range(1, sup.usable_slots + 1):
            iccid = self.gw.slots.get((sup.cfg.id, slot))
            record = self.gw.balances.get(iccid) if iccid else None
            if iccid is None or slot == sup.active_slot or record is None or not record.low:
                continue
            if self.gw.sim_state(iccid) not in ("available", "active"):
                continue  # quarantined or disabled: nothing to check for
            policy = self.gw.policy_of(iccid)
            interval = policy.balance_check_interval_s
            if self._resting_from_failure(iccid, policy, now):
                continue
            if interval is not None and now - record.checked_at >= interval:
                return slot
        return None

    async def check_locked(self, sup: ModemSupervisor, transaction: Any) -> dict[str, Any]:
        """Check the balance of the SIM ``sup`` serves with (the caller holds its lock)."""
        gw = self.gw
        iccid = sup.iccid
        if iccid is None:
            raise Refused("no_eligible_sim", f"modem {sup.cfg.id} has no SIM")
        refusal = ussd_refusal(iccid, gw.sim_state(iccid))
        if refusal is not None:
            raise refusal  # a blocked or disabled SIM sends no USSD, not even a balance code
        policy = gw.policy_of(iccid)
        code = policy.balance_ussd
        if code is None:
            raise Refused(
                "validation_error", f"the policy of SIM {iccid} sets no balance_ussd code"
            )
        async with booked(
            gw, iccid, UsageKind.USSD, modem=sup.cfg.id, transaction=booking_key(transaction)
        ) as booking:
            text = await sup.ussd(code)
            booking.outcome = "answered"
        now = gw.clock.now()
        gw.apply(gw.detector.on_operator_text(iccid, now, text=text, source="ussd"))
        amount = read_balance(text, policy.balance_pattern)
        floor = None if policy.balance_floor is None else Decimal(str(policy.balance_floor))
        before = gw.balances.get(iccid)
        was_low = before is not None and before.low
        if amount is None:
            log.warning("balance_unreadable", iccid=iccid, modem=sup.cfg.id)
            low = was_low
        else:
            low = floor is not None and balance_low(amount, floor)
        gw.ledger.record_balance(
            iccid,
            amount,
            low=low,
            now=now,
            calls_at_check=gw.ledger.calls_booked(iccid, float("-inf")),
            detail={"code": code, "floor": None if floor is None else str(floor)},
        )
        gw.balances = gw.ledger.balances()
        shown = None if amount is None else str(amount)
        log.info("balance_checked", iccid=iccid, modem=sup.cfg.id, amount=shown, low=low)
        fields = {"iccid": iccid, "modem": sup.cfg.id, "amount": shown}
        if low and not was_low:
            gw.board.event("balance_low", **fields, floor=str(floor))
        elif was_low and not low:
            gw.board.event(
                "balance_restored", **fields, floor=None if floor is None else str(floor)
            )
        gw.publish_sim(iccid)
        return {
            "modem": sup.cfg.id,
            "iccid": iccid,
            "amount": shown,
            "low": low,
            "floor": None if floor is None else str(floor),
            "text": text,
        }
