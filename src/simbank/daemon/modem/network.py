"""What the network says of one modem: registration per domain, the operator, the signal, and
the reject cause asked of the modem (``AT+CEER``) when a denial came without one.

:class:`NetworkView` keeps that state for its supervisor, publishes it on the board and hands
it to the bank side — attributed only to a SIM read back since the last change.
"""

from __future__ import annotations

import asyncio

import structlog

from simbank.bank.sim_identity import SimIdentity
from simbank.contract import RegistrationInfo, SignalInfo
from simbank.daemon.board import StatusBoard
from simbank.daemon.modem.observer import ModemObserver
from simbank.drivers.generic import GenericDriver
from simbank.drivers.types import Registration, Signal

log = structlog.get_logger(__name__)

#: Order in which a registered domain speaks for the modem as a whole.
_DOMAIN_ORDER = ("cereg", "c5greg", "creg", "cgreg")


def summarize(registrations: dict[str, Registration]) -> Registration | None:
    """The registration that describes the modem: a registered domain first, else the worst."""
    regs = [registrations[d] for d in _DOMAIN_ORDER if d in registrations]
    for reg in regs:
        if reg.registered:
            return reg
    for wanted in ("denied", "searching", "not_registered"):
        for reg in regs:
            if reg.state == wanted:
                return reg
    return regs[0] if regs else None


class NetworkView:
    """One modem's registrations, operator and signal, as polled and as announced by URCs."""

    def __init__(
        self,
        modem_id: str,
        board: StatusBoard,
        observer: ModemObserver | None,
        sim: SimIdentity,
        poll_now: asyncio.Event,
    ) -> None:
        self.modem_id = modem_id
        self.board = board
        self.observer = observer
        self.sim = sim
        self._poll_now = poll_now
        #: The last registration seen per domain ("creg", "cereg", …).
        self.registrations: dict[str, Registration] = {}
        self.operator: str | None = None
        self.rssi_dbm: int | None = None
        #: Set at every registration seen (a switch waits on it).
        self.changed = asyncio.Event()
        #: A denial without a cause was seen: ask AT+CEER once (outside the URC callback).
        self._ask_ceer = False
        #: The last AT+CEER line and the SIM it was read for: the modem keeps its last cause
        #: across a switch, and one SIM's cause must never be pinned on the next.
        self._last_ceer: tuple[str, str] | None = None

    @property
    def summary(self) -> Registration | None:
        return summarize(self.registrations)

    async def poll(self, driver: GenericDriver) -> None:
        for reg in await driver.registrations():
            self.on_registration(reg)
        self.on_signal(await driver.signal())
        operator = await driver.operator()
        if operator.name != self.operator:
            self.operator = operator.name
            self.publish()

    async def ask_reject_cause(self, driver: GenericDriver) -> None:
        """A denial came without a reject cause: ask ``AT+CEER`` once (modems without it, or
        answering it empty, give nothing) and hand a cause to the detector."""
        if not self._ask_ceer:
            return
        self._ask_ceer = False
        iccid = self.sim.iccid
        if iccid is None or not driver.capabilities.get("ceer", False):
            return
        cause, line = await driver.last_reject_cause()
        log.info("reject_cause_asked", cause=cause, raw=line or None)
        previous, self._last_ceer = self._last_ceer, (line, iccid)
        if previous is not None and line and previous[0] == line and previous[1] != iccid:
            log.info("reject_cause_stale", raw=line)  # the previous SIM's cause, still there
            return
        if cause is not None and self.observer is not None and self.sim.iccid == iccid:
            self.observer.reject_cause_seen(self.modem_id, iccid, cause, source="ceer", raw=line)

    def on_registration(self, reg: Registration) -> None:
        before = summarize(self.registrations)
        self.registrations[str(reg.domain)] = reg
        after = summarize(self.registrations)
        self.publish()
        self.changed.set()
        # Attributed only to a card read back since the last change: never to the one that
        # was in the slot before a switch, a reset or a hot swap.
        iccid = self.sim.iccid
        if self.observer is not None and iccid is not None:
            self.observer.registration_seen(self.modem_id, iccid, reg, self.rssi_dbm, self.operator)
        if reg.stat == 3 and reg.reject_cause is None and (before is None or before.stat != 3):
            self._ask_ceer = True
            self._poll_now.set()
        if after is None or (
            before is not None
            and (before.stat, before.reject_cause) == (after.stat, after.reject_cause)
        ):
            return
        self.board.event(
            "registration_changed",
            modem=self.modem_id,
            iccid=iccid,
            domain=str(after.domain),
            stat=int(after.stat),
            state=after.state,
            reject_cause=after.reject_cause,
        )
        sim = self.board.sims.get(iccid) if iccid else None
        if self.observer is None and sim is not None and sim.state in {"available", "active"}:
            self.board.update_sim(sim.iccid, state="active" if after.registered else "available")

    def publish(self) -> None:
        reg = summarize(self.registrations)
        info = RegistrationInfo(
            stat=int(reg.stat) if reg else None,
            state=reg.state if reg else None,
            act=reg.act if reg else None,
            operator=self.operator,
            reject_cause=reg.reject_cause if reg else None,
        )
        self.board.update_modem(self.modem_id, registration=info)

    def on_signal(self, signal: Signal) -> None:
        if signal.rssi_dbm is not None:
            self.rssi_dbm = signal.rssi_dbm
        self.board.update_modem(
            self.modem_id, signal=SignalInfo(rssi_dbm=signal.rssi_dbm, quality=signal.quality)
        )
