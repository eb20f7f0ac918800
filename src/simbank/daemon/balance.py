"""The prepaid-balance check: a policy's USSD code on the SIM a modem serves with, the amount
read from the answer, and the SIM resting (``balance_low``) while it is under the floor.

Checks run on the active SIM of a ready, idle modem: on the policy's schedule
(``balance_check_interval_s``), after every ``balance_check_every_calls`` calls, and on demand
(``balance/check``). Each is booked (a USSD request) before it is sent. An answer that holds no
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
from simbank.bank.usage import UsageKind
from simbank.config.policy import PolicyConfig
from simbank.daemon.commands.booking import booked
from simbank.daemon.modem.supervisor import ModemSupervisor
from simbank.daemon.router import booking_key
from simbank.daemon.runtime import BankRuntime
from simbank.errors import Refused, SimbankError

log = structlog.get_logger(__name__)

#: How often the schedule is looked at (seconds).
ROUND_S = 15.0


class BalanceService:
    """Balance checks for every modem of the gateway."""

    def __init__(self, runtime: BankRuntime) -> None:
        self.gw = runtime
        self._nudge = asyncio.Event()

    def nudge(self) -> None:
        """A call ended: a check due after N calls need not wait for the next round."""
        self._nudge.set()

    def due(self, iccid: str, policy: PolicyConfig, now: float) -> bool:
        """Whether the SIM's policy wants its balance checked now."""
        if policy.balance_ussd is None:
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

    async def run(self) -> None:
        """Check every due SIM, round after round (a failure is logged, never raised)."""
        while True:
            for sup in list(self.gw.supervisors.values()):
                iccid = sup.iccid
                if iccid is None or not sup.ready or sup.lock.locked():
                    continue
                if not self.due(iccid, self.gw.policy_of(iccid), self.gw.clock.now()):
                    continue
                try:
                    async with sup.lock:
                        if sup.iccid == iccid and sup.ready:
                            await self.check_locked(sup, None)
                except (SimbankError, Refused) as exc:
                    log.warning("balance_check_failed", modem=sup.cfg.id, error=str(exc))
            try:
                async with asyncio.timeout(ROUND_S):
                    await self._nudge.wait()
            except TimeoutError:
                pass
            self._nudge.clear()

    async def check_locked(self, sup: ModemSupervisor, transaction: Any) -> dict[str, Any]:
        """Check the balance of the SIM ``sup`` serves with (the caller holds its lock)."""
        gw = self.gw
        iccid = sup.iccid
        if iccid is None:
            raise Refused("no_eligible_sim", f"modem {sup.cfg.id} has no SIM")
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
