"""SMS pickup: read each message the modem announced or stored, hand it over, then delete it.

After a SIM is identified (start, restart, switch) its whole storage is listed (``AT+CMGL``):
the messages that arrived while nobody listened. A ``+CMTI`` lost to a hang or to garbage on the
line would leave its message on the SIM until the next switch, so the storage is listed again
after either, and every :data:`SMS_SWEEP_S` in any case. A message is deleted only after the
bank side stored it durably; one stored but not deleted when the daemon died is listed again
and kept once.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from simbank.bank.sim_identity import SimIdentity
from simbank.daemon.modem.observer import ModemObserver
from simbank.drivers.generic import GenericDriver
from simbank.drivers.types import DeliveryReport, SmsMessage
from simbank.errors import CommandError, LedgerError, ProtocolGarbage

log = structlog.get_logger(__name__)

#: Tries of the stored-SMS pickup (AT+CMGL) after a SIM is identified: storage may lag.
SMS_PICKUP_TRIES = 3
#: The storage is listed again this often (seconds of the follow loop) in any case.
SMS_SWEEP_S = 60.0


class SmsPickup:
    """The messages waiting on one modem's SIM, and their way to the bank side."""

    def __init__(
        self,
        modem_id: str,
        observer: ModemObserver | None,
        sim: SimIdentity,
        steady: Callable[[], bool],
    ) -> None:
        self.modem_id = modem_id
        self.observer = observer
        self.sim = sim
        #: No switch under way and the SIM read back: what is read belongs to ``sim.iccid``.
        self._steady = steady
        #: (index, storage) announced by ``+CMTI`` / ``+CDSI`` and not read yet, oldest first
        #: (storage None: the one messages are read from).
        self.waiting: list[tuple[int, str | None]] = []
        #: Tries left of the AT+CMGL listing of the SIM just identified (0: none due).
        self.tries = 0
        #: The SIM is ready, so its storage can be listed.
        self.listable = False

    def announced(self, index: int, storage: str | None = None) -> None:
        """``+CMTI``: a message was stored at ``index`` (``+CDSI``: a status report, in
        ``storage``, often "SR")."""
        where = storage if storage is not None and storage.upper() == "SR" else None
        if (index, where) not in self.waiting:
            self.waiting.append((index, where))

    def sim_adopted(self, *, another_card: bool, iccid: str | None, ready: bool) -> None:
        """A card was read back: list its storage (if it is ready) on the next poll."""
        if another_card:
            # +CMTI indexes point into the SIM that was there; the pickup lists the new one.
            self.waiting.clear()
        self.listable = ready
        self.tries = SMS_PICKUP_TRIES if iccid and self.listable else 0

    def list_again(self) -> None:
        """Have the next poll list the SIM's storage (only a ready SIM is listed)."""
        if self.sim.iccid is not None and self.listable:
            self.tries = max(self.tries, 1)

    async def take(self, driver: GenericDriver) -> None:
        """Read each announced SMS, hand it over (stored durably), and only then delete it.

        After a SIM is identified (start, restart, switch) every stored message is listed
        first (AT+CMGL): those that arrived while nobody listened. One stored but not yet
        deleted when the daemon died is listed again; the ledger keeps it once.
        """
        if self.tries > 0 and self._steady():
            # Checked right before the AT command is queued: a switch queues its own commands
            # after it, so the listing is of the SIM ``iccid`` names.
            iccid = self.sim.iccid
            try:
                stored = await driver.list_sms()
            except (CommandError, ProtocolGarbage) as exc:
                self.tries -= 1
                log.warning("sms_list_failed", error=str(exc), tries_left=self.tries)
            else:
                if not self._still(iccid):
                    return  # a switch began while the listing waited its turn: listed again
                self.tries = 0
                if stored:
                    log.info("sms_picked_up", count=len(stored))
                for index, message in stored:
                    if not await self._hand_over(driver, iccid, index, message):
                        break  # the ledger cannot store: the rest wait on the modem too
        while self.waiting and self._steady():
            index, storage = head = self.waiting[0]
            iccid = self.sim.iccid
            try:
                message = await driver.read_sms(index, storage)
            except (CommandError, ProtocolGarbage) as exc:
                log.warning("sms_unreadable", index=index, storage=storage, error=str(exc))
                self.waiting.pop(0)
                continue
            if not self._still(iccid):
                return  # what was read may be the next SIM's: its listing reads it again
            handed = await self._hand_over(driver, iccid, index, message, storage)
            if self.waiting and self.waiting[0] == head:
                self.waiting.pop(0)
            if not handed:
                return  # left on the modem: the next listing (AT+CMGL) takes it

    def _still(self, iccid: str | None) -> bool:
        """No switch began (and the card is the same) since ``iccid`` was read: in PDU mode a
        read waits for ``AT+CMGF=0`` first, and a switch's commands may be queued meanwhile."""
        return self._steady() and self.sim.iccid == iccid

    async def _hand_over(
        self,
        driver: GenericDriver,
        iccid: str | None,
        index: int,
        message: SmsMessage | DeliveryReport,
        storage: str | None = None,
    ) -> bool:
        """Store one message (durably, via the observer) or apply a status report, then
        delete it from the modem. False: the ledger could not store it, so it stays on the
        modem (never deleted unstored) and is listed again by the next sweep."""
        if self.observer is not None:
            try:
                if isinstance(message, DeliveryReport):
                    self.observer.delivery_report(self.modem_id, message)
                else:
                    await self.observer.sms_received(self.modem_id, iccid, index, message)
            except LedgerError as exc:
                log.warning("sms_left_on_modem", index=index, error=str(exc))
                self.list_again()
                return False
        if not self._steady() or self.sim.iccid != iccid:
            # A switch began meanwhile: the index may now point into another SIM. The message
            # stays on its own SIM and is listed again when that SIM is back (kept once).
            return True
        await driver.delete_sms(index, storage)
        return True
