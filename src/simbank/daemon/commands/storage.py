"""``storage/backup`` and ``storage/confirm``: the ledger's backups on demand, and an
operator's acceptance of a ledger restored after corruption. Both are served while the
gateway is ``degraded`` (that is when they are needed) and neither is recorded as a
transaction (doing one twice is harmless)."""

from __future__ import annotations

from typing import Any

from simbank.contract import ConfirmRequest, Request
from simbank.daemon.upkeep import LedgerUpkeep
from simbank.errors import LedgerError, Refused, StorageUnavailable


class StorageCommands:
    def __init__(self, upkeep: LedgerUpkeep) -> None:
        self.upkeep = upkeep

    async def backup(self, req: Request) -> dict[str, Any]:
        if self.upkeep.storage.checking:
            raise Refused(
                "storage_unavailable",
                "the ledger is being checked for corruption: no backup of a ledger in doubt",
                cause="corrupt",
            )
        try:
            info = await self.upkeep.backup_now()
        except LedgerError as exc:
            raise Refused("storage_unavailable", f"no backup was made: {exc}") from exc
        return info.to_data()

    async def confirm(self, req: Request) -> dict[str, Any]:
        assert isinstance(req, ConfirmRequest)
        storage = self.upkeep.storage
        had = storage.recovery
        if had is None:
            spell = storage.degraded
            return {
                "confirmed": False,
                "recovery": None,
                "state": "online" if spell is None else "degraded",
                "why": "no restored ledger waits for a confirmation",
            }
        try:
            record = await self.upkeep.confirm("operator", req.note)
        except StorageUnavailable as exc:
            raise Refused(
                "storage_unavailable", f"the confirmation cannot be recorded: {exc}"
            ) from exc
        spell = storage.degraded
        return {
            "confirmed": True,
            "recovery": record,
            "state": "online" if spell is None else "degraded",
        }
