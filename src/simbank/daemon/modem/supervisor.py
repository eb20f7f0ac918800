"""One supervised task per modem, and the actions carried out on it.

:class:`ModemSupervisor` is the modem's :class:`~simbank.daemon.modem.session.ModemSession` (open,
probe, identify the SIM, follow it, recover) plus what the bank asks of it: switch slots,
call, send an SMS, run USSD, re-attach, reset. Callers hold :attr:`ModemSupervisor.lock` for
the whole of an action. Its parts, one idea each:

- :mod:`~simbank.daemon.modem.session` — the session loop and the modem's published state;
- :mod:`~simbank.daemon.modem.reconnect` — when the port is opened again (jittered backoff);
- :mod:`~simbank.daemon.modem.liveness` — checks after a missed answer, re-sync, reboot;
- :mod:`~simbank.daemon.modem.identify` — the SIM URCs, reading the card back and adopting it;
- :mod:`~simbank.daemon.modem.network` — registration, operator, signal, reject causes;
- :mod:`~simbank.daemon.modem.sms_pickup` — reading, handing over and deleting SMS;
- :mod:`~simbank.daemon.modem.observer` — what the bank side hears;
- :mod:`~simbank.daemon.modem.serving` — never resting on a SIM that cannot serve;
- :mod:`~simbank.daemon.modem.ringing` — inbound calls: one call per RINGs, decided, told;
- :mod:`~simbank.daemon.modem.call_watch` — every call the modem lists, whoever dialled it.

Every wait that stands for modem time (a call's length, a radio off, a reboot) is on the
injected :class:`~simbank.clock.Clock`.
"""

from __future__ import annotations

import functools

import structlog

from simbank.daemon.modem.identify import READ_BACK_TRIES
from simbank.daemon.modem.observer import ModemObserver
from simbank.daemon.modem.serving import ServingGuard
from simbank.daemon.modem.session import ModemSession
from simbank.drivers.generic import GenericDriver
from simbank.drivers.procedures import (
    CallResult,
    SwitchResult,
    place_call,
    select_and_wait,
    wait_registration,
)
from simbank.drivers.types import Registration, SimStatus
from simbank.errors import ModemFault, Refused, SimStateError

log = structlog.get_logger(__name__)

__all__ = [
    "RADIO_OFF_S",
    "ModemObserver",
    "ModemSupervisor",
]

#: How long the radio stays off in a re-attach.
RADIO_OFF_S = 1.0


class ModemSupervisor(ModemSession):
    """Runs one modem forever (until cancelled) and carries out actions on it."""

    @functools.cached_property
    def serving(self) -> ServingGuard:
        """Moves the modem off a SIM that cannot serve (checked after each poll)."""
        return ServingGuard(self)

    async def _keep_serving(self) -> None:
        await self.serving.check()

    def _driver(self) -> GenericDriver:
        if self.driver is None or not self._online:
            raise ModemFault(f"modem {self.cfg.id} is not ready")
        return self.driver

    # -- actions (callers hold self.lock) ---------------------------------------------------------
    async def switch_to(
        self, slot: int, *, sim_ready_timeout_s: float, registration_timeout_s: float
    ) -> SwitchResult:
        """Select ``slot`` and identify its SIM by reading the ICCID back. Refused
        (``busy``) while a call rings or is live on the modem (inbound, or any call
        ``AT+CLCC`` lists, whoever dialled it): a switch would drop it. The modem is asked
        ``AT+CLCC`` right before (the last poll may be seconds old, or not made yet after a
        restart); only a call it lists refuses the switch — a refusal, a timeout or garbage
        does not (nor is a modem that refuses ``AT+CLCC`` for good asked again)."""
        driver = self._driver()
        self._refuse_if_in_call()
        # Switching from here (no await before): nothing else polls or acts on the modem.
        self._switching = True
        self._set_state("switching")
        if not self.call_watch.backed_off:
            try:
                await self.call_watch.poll(driver)
                self._refuse_if_in_call()
            except BaseException:
                self._switching = False
                if self.driver is not None:
                    self._set_state("ready")
                raise
        # Until the ICCID is read back, nothing may be said of (or done to) any SIM here.
        self._sim_changed("switch")
        registration: Registration | None = None
        try:
            self.network.registrations.clear()
            status = await select_and_wait(driver, slot, sim_ready_timeout_s)
            # Adopted the moment it is read: what the registration wait sees is this SIM's.
            # A readiness URC glued late may void a read: read again (with a fresh status).
            for _ in range(READ_BACK_TRIES):
                if await self.identification.read_back(driver, slot, status):
                    break
                status = await driver.sim_status()
            iccid = self.sim.iccid
            if status is SimStatus.READY and self.sim.known:
                registration = await wait_registration(
                    driver, registration_timeout_s, self.registration_changed
                )
        finally:
            self._switching = False
            if self.driver is not None:
                self._set_state("ready")
        if registration is not None:
            self.network.on_registration(registration)
        self._poll_now.set()
        return SwitchResult(slot, status, iccid, registration)

    def _refuse_if_in_call(self) -> None:
        if self.in_call:
            what = "an inbound call ringing or live" if self.calls_in.busy else "a live call"
            raise Refused(
                "busy", f"modem {self.cfg.id} has {what}; not switching", modem=self.cfg.id
            )

    async def call(self, number: str, max_duration_s: float) -> CallResult:
        """Dial ``number`` for at most ``max_duration_s`` of talk (clock seconds, as is the
        duration reported). The call it places is booked already: the watch does not tell it
        (only it: another outgoing call that appears meanwhile, with another number, is told)."""
        try:
            with self.call_watch.own_call(number):
                return await place_call(self._driver(), number, max_duration_s, self.clock)
        except SimStateError as exc:
            self._sim_refused(exc)
            raise

    async def send_sms(self, number: str, text: str, status_report: bool = False) -> list[int]:
        """Send ``text``; the message reference of each segment (PDU mode where the modem has
        it, see :meth:`GenericDriver.send_sms`)."""
        try:
            async with self.sms_lock:  # the pickup's reads switch AT+CMGF too
                return await self._driver().send_sms(number, text, status_report=status_report)
        except SimStateError as exc:
            self._sim_refused(exc)
            raise

    async def ussd(self, code: str, timeout_s: float = 30.0) -> str:
        try:
            return await self._driver().ussd(code, timeout_s)
        except SimStateError as exc:
            self._sim_refused(exc)
            raise

    def _sim_refused(self, exc: SimStateError) -> None:
        """The modem refused because of the SIM (``SIM_LOCKED_CODES`` and friends): the card
        may have locked, gone or been swapped, so it is unknown until read back, and read back
        now; what +CPIN then says reaches the block detector against the SIM really there."""
        log.warning("sim_refused", problem=exc.problem, code=exc.code, sms=exc.sms)
        self._sim_changed(f"sim_error:{exc.problem}")
        self._poll_now.set()

    async def reattach(self) -> None:
        """Radio off and on again: the SIM registers afresh (one re-attach for a suspect)."""
        driver = self._driver()
        await driver.set_radio(False)
        await self.clock.sleep(RADIO_OFF_S)
        await driver.set_radio(True)
        self._poll_now.set()

    async def reset(self) -> None:
        """``AT+CFUN=1,1`` then a fresh probe and SIM identification."""
        driver = self._driver()
        self._set_state("probing")
        await self._reboot(driver)
