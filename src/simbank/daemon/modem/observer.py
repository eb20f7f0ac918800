"""What the bank side hears from a modem's supervisor: the :class:`ModemObserver` protocol.

The supervisor reports what it reads from the modem (the SIM identified, registrations, reject
causes, SMS received, the modem lost); the :class:`~simbank.daemon.runtime.BankRuntime`
implements it and decides what that means for the bank. The supervisor asks one thing back:
how the bank sees the modem's slots, so that it never rests on a SIM that cannot serve
(:mod:`~simbank.daemon.modem.serving`).
"""

from __future__ import annotations

from typing import Protocol

from simbank.bank.rotation import ModemView
from simbank.config.models import Config
from simbank.drivers.types import DeliveryReport, Registration, SimStatus, SmsMessage


class ModemObserver(Protocol):
    """What the bank side hears from a modem (the BankRuntime implements it)."""

    def sim_identified(
        self,
        modem_id: str,
        slot: int,
        iccid: str | None,
        imsi: str | None,
        status: SimStatus,
        *,
        cme_code: int | None = None,
        warnings: tuple[str, ...] = (),
    ) -> None: ...

    def reject_cause_seen(
        self, modem_id: str, iccid: str, cause: int, *, source: str, raw: str | None
    ) -> None: ...

    def sim_unknown(self, modem_id: str, last: str | None) -> None: ...

    def registration_seen(
        self,
        modem_id: str,
        iccid: str | None,
        reg: Registration,
        rssi_dbm: int | None,
        operator: str | None,
    ) -> None: ...

    async def sms_received(
        self, modem_id: str, iccid: str | None, index: int, message: SmsMessage
    ) -> None:
        """A message (or a part of one) read from storage ``index``; it is stored durably
        when this returns, so the modem may delete it."""
        ...

    def delivery_report(self, modem_id: str, report: DeliveryReport) -> None:
        """A status report (``+CDS``, or one read from storage) for a message this modem sent."""
        ...

    def modem_lost(self, modem_id: str, iccid: str | None) -> None: ...

    # -- what the supervisor asks back (a modem keeps serving: ``serving``) ------------------
    @property
    def config(self) -> Config:
        """The gateway's configuration (the rotation timeouts of a switch)."""
        ...

    def modem_view(self, modem_id: str, now: float) -> ModemView:
        """The modem's slots as the rotation planner sees them: each SIM's state (the
        ledger's verdicts first), usage and limits."""
        ...
