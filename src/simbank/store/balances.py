"""Each SIM's last prepaid-balance check: the amount read (as text, exactly), whether it was
under the policy's floor, when, and the SIM's call count then (for "check after every N
calls"). A SIM under its floor rests until a later check shows it above, also across a
restart: this is that memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from simbank.store.core import LedgerCore, dump_json


@dataclass(frozen=True, slots=True)
class BalanceRecord:
    """The last check of one SIM (``amount`` None: the answer held no amount)."""

    iccid: str
    amount: Decimal | None
    low: bool
    checked_at: float
    calls_at_check: int
    detail: dict[str, object]


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


class BalanceLedger(LedgerCore):
    """The last balance check per SIM."""

    def record_balance(
        self,
        iccid: str,
        amount: Decimal | None,
        *,
        low: bool,
        now: float,
        calls_at_check: int,
        detail: dict[str, object],
    ) -> None:
        """Keep this check as the SIM's last one."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO sim_balance (iccid, amount, low, checked_at, calls_at_check, detail)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (iccid) DO UPDATE SET"
                " amount = excluded.amount, low = excluded.low,"
                " checked_at = excluded.checked_at, calls_at_check = excluded.calls_at_check,"
                " detail = excluded.detail",
                (
                    iccid,
                    None if amount is None else str(amount),
                    int(low),
                    now,
                    calls_at_check,
                    dump_json(detail),
                ),
            )

    def balances(self) -> dict[str, BalanceRecord]:
        """Every SIM's last check."""
        rows = self._read(
            "SELECT iccid, amount, low, checked_at, calls_at_check, detail FROM sim_balance"
        )
        return {
            r[0]: BalanceRecord(r[0], _decimal(r[1]), bool(r[2]), r[3], r[4], json.loads(r[5]))
            for r in rows
        }
