"""Which card is in a modem's active slot: the SIM URCs that void what we knew, and reading the
card back (ICCID, IMSI, MNC length) and adopting it.

From any change until its ICCID is read back the card is unknown
(:class:`~simbank.bank.sim_identity.SimIdentity`); :class:`SimIdentification` does the reading
and, the moment a read is valid, makes the card the modem's current SIM on the board and for
the bank side. The SIM-busy window after a switch or a reset is modem time: it is waited out on
the injected clock.
"""

from __future__ import annotations

import asyncio

import structlog

from simbank.at import Urc
from simbank.at.codes import SIM_BUSY_CODES
from simbank.bank.sim_identity import ReadToken, SimIdentity
from simbank.clock import Clock
from simbank.daemon.board import StatusBoard
from simbank.daemon.modem.network import NetworkView
from simbank.daemon.modem.observer import ModemObserver
from simbank.daemon.modem.sms_pickup import SmsPickup
from simbank.drivers.generic import GenericDriver
from simbank.drivers.parse.identity import iccid_checksum_ok
from simbank.drivers.types import SimStatus
from simbank.errors import CommandError, ProtocolGarbage

log = structlog.get_logger(__name__)

#: How long the ICCID read may be answered "SIM busy" after a switch or a reset (CME 14 lasts
#: seconds on real modems: modem-realism.md B10).
SIM_BUSY_WAIT_S = 10.0
SIM_BUSY_RETRY_S = 0.5
#: Reads of a card's identity before giving up for this round when each overlapped a change.
READ_BACK_TRIES = 3
#: How soon an unreadable card (its ICCID refused) is tried again (seconds of the follow loop).
UNREADABLE_RETRY_S = 60.0
#: URCs that say the card in the active slot may have changed (or re-initialised): the SIM is
#: unknown until its ICCID is read back. ``RDY`` is a reboot; ``+QUSIM: 1`` a SIM re-init.
_SIM_CHANGE_URCS = frozenset({"RDY", "+SIMCARD", "+SIM", "+SIM DROP", "#QSS"})
#: Readiness URCs: a change outside a switch (a hot swap whose NOT READY was missed); during a
#: switch they are what we wait for, and must not void the read-back that follows them.
_SIM_READY_URCS = frozenset({"+CPIN", "+SIM READY", "+QUSIM", "^SIMST"})
_SIM_STATE = {
    SimStatus.READY: "available",
    SimStatus.PIN: "locked",
    SimStatus.PUK: "locked",
    SimStatus.ABSENT: "absent",
}


def _sim_ready_urc(urc: Urc) -> bool:
    """False for a SIM URC that says the card went or is not ready (``+CPIN: NOT READY``,
    ``^SIMST: 0``/``255``, ``+QUSIM: 0``); True for the rest (readiness, or not a SIM URC)."""
    if urc.name not in _SIM_READY_URCS or urc.name == "+SIM READY":
        return True
    value = urc.text.partition(":")[2].strip().strip('"').upper()
    if urc.name == "+CPIN":
        return value == "READY"
    return value.split(",")[0].strip() == "1"


def sim_urc_voids(urc: Urc) -> bool:
    """The card re-initialised, went or was swapped (a refresh, a hot swap, a reboot,
    ``+CPIN: NOT READY``): whatever was read before no longer holds."""
    return urc.name in _SIM_CHANGE_URCS or not _sim_ready_urc(urc)


def sim_urc_ready(urc: Urc) -> bool:
    """A card came up (``+CPIN: READY``, ``+QUSIM: 1``, …)."""
    return urc.name in _SIM_READY_URCS


class SimIdentification:
    """Reads the card in one modem's active slot back and adopts it."""

    def __init__(
        self,
        modem_id: str,
        board: StatusBoard,
        observer: ModemObserver | None,
        *,
        sim: SimIdentity,
        sms: SmsPickup,
        network: NetworkView,
        clock: Clock,
    ) -> None:
        self.modem_id = modem_id
        self.board = board
        self.observer = observer
        self.sim = sim
        self.sms = sms
        self.network = network
        self.clock = clock
        self.imsi: str | None = None
        #: The MNC length read from the SIM's EF_AD (None: unknown), for the home network.
        self.mnc_length: int | None = None
        self.active_slot: int | None = None
        #: When (loop time) the card's ICCID was refused; None: it was read.
        self.unreadable_since: float | None = None
        self._warned_check_digit: set[str] = set()

    def unreadable_due(self, now: float) -> bool:
        """An unreadable card is due to be tried again (``now``: loop time)."""
        since = self.unreadable_since
        return since is not None and now - since >= UNREADABLE_RETRY_S

    async def identify(self, driver: GenericDriver) -> None:
        slot = await driver.active_slot()
        for _ in range(READ_BACK_TRIES):
            status = await driver.sim_status()
            if await self.read_back(driver, slot, status):
                return

    async def read_back(self, driver: GenericDriver, slot: int, status: SimStatus) -> bool:
        """Read the card's identity and adopt it; False if the card may have changed meanwhile
        (read again). A card whose ICCID is refused (CME 13 "SIM failure", a locked card that
        will not give it, garbage twice) is adopted as no readable card — the modem stays in
        service and its other slots reachable — and tried again after a while."""
        token = self.sim.begin_read()
        self.unreadable_since = None
        try:
            iccid = await self._read_iccid(driver, status)
        except (CommandError, ProtocolGarbage) as exc:
            log.warning("iccid_unreadable", slot=slot, error=str(exc))
            iccid = None
            self.unreadable_since = asyncio.get_running_loop().time()
            if status is SimStatus.READY:
                status = SimStatus.ERROR
        try:
            imsi = await self._read_imsi(driver, status)
        except (CommandError, ProtocolGarbage) as exc:
            log.warning("imsi_unreadable", error=str(exc))
            imsi = None
        return self._adopt(token, slot, status, iccid, imsi, cme_code=driver.last_sim_cme)

    async def _read_imsi(self, driver: GenericDriver, status: SimStatus) -> str | None:
        """The IMSI and, with it, the MNC length from EF_AD (only a ready SIM answers)."""
        if status is not SimStatus.READY:
            self.mnc_length = None
            return None
        imsi = await driver.read_imsi()
        self.mnc_length = await driver.read_mnc_length() if imsi else None
        return imsi

    async def _read_iccid(self, driver: GenericDriver, status: SimStatus) -> str | None:
        """The card's ICCID (None: no card), retried while the SIM answers "busy" (CME 14),
        as it does for seconds after a switch, a reset or a hot plug."""
        if status is SimStatus.ABSENT:
            return None
        deadline = self.clock.monotonic() + SIM_BUSY_WAIT_S
        while True:
            try:
                iccid = await driver.read_iccid()
            except CommandError as exc:
                if exc.code not in SIM_BUSY_CODES or self.clock.monotonic() >= deadline:
                    raise CommandError(
                        f"cannot read the ICCID: {exc}", raw=exc.raw, code=exc.code
                    ) from exc
                log.debug("iccid_sim_busy")
                await self.clock.sleep(SIM_BUSY_RETRY_S)
                continue
            return await self._check_digit(driver, iccid)

    async def _check_digit(self, driver: GenericDriver, iccid: str | None) -> str | None:
        """A check digit that fails: a garbled line, or a card issued that way. Read
        identically twice it is the card's: a warning on the SIM, never a modem fault."""
        if iccid is None or iccid_checksum_ok(iccid):
            return iccid
        again = await driver.read_iccid()
        if again != iccid:
            raise ProtocolGarbage("ICCID read differently twice", raw=f"{iccid}/{again}")
        if iccid not in self._warned_check_digit:
            self._warned_check_digit.add(iccid)
            log.warning("iccid_check_digit_mismatch", iccid=iccid)
        return iccid

    def _adopt(
        self,
        token: ReadToken,
        slot: int,
        status: SimStatus,
        iccid: str | None,
        imsi: str | None,
        *,
        cme_code: int | None = None,
    ) -> bool:
        """Make ``iccid`` (read back from the card) the modem's current SIM — at once, the
        moment it is read. Not if the card may have changed while it was read (the follow
        loop reads it again). Returns whether it was adopted."""
        previous = self.sim.last_read
        if not self.sim.read_back(token, slot, iccid):
            log.info("sim_changed_during_read", reason=self.sim.reason, slot=slot)
            return False
        self.sms.sim_adopted(
            another_card=previous != iccid, iccid=iccid, ready=status is SimStatus.READY
        )
        if previous and previous != iccid:
            self.network.registrations.clear()
            if self.observer is None:
                self.board.update_sim(previous, state="available", modem=self.modem_id, slot=None)
        self.imsi = imsi
        self.active_slot = slot
        self.board.update_modem(self.modem_id, active_slot=slot, iccid=iccid)
        if iccid:
            structlog.contextvars.bind_contextvars(iccid=iccid)
            if self.observer is None:
                sim_state = _SIM_STATE.get(status, "available")
                self.board.update_sim(iccid, modem=self.modem_id, slot=slot, state=sim_state)
        if self.observer is not None:
            warnings = ("iccid_check_digit",) if iccid in self._warned_check_digit else ()
            self.observer.sim_identified(
                self.modem_id, slot, iccid, imsi, status, cme_code=cme_code, warnings=warnings
            )
        log.info("sim_identified", slot=slot, sim_status=str(status))
        return True
