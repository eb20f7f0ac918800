"""``balance/check``: the prepaid balance of the SIM a modem serves with, checked now."""

from __future__ import annotations

from typing import Any

from simbank.contract import ModemRequest, Request
from simbank.daemon.commands.access import ModemAccess
from simbank.daemon.commands.balance_checks import BalanceService


class BalanceCommands:
    """``balance/check``."""

    def __init__(self, service: BalanceService, access: ModemAccess) -> None:
        self.service = service
        self.access = access

    async def balance_check(self, req: Request) -> dict[str, Any]:
        """Run the policy's balance code on the modem's active SIM; the amount, whether it is
        under the floor, and the answer's text."""
        assert isinstance(req, ModemRequest)
        sup = self.access.ready(req.modem)
        await self.access.lock(sup)
        try:
            return await self.service.check_locked(sup, req.transaction)
        finally:
            sup.lock.release()
