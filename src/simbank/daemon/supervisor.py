"""One supervised task per modem: open, probe, identify the SIM, follow it, recover.

The supervisor owns the modem's state enum and its reconnect policy (jittered backoff).
Escalation on hangs (ModemManager-style): consecutive timeouts → re-sync with ``AT`` →
``AT+CFUN=1,1`` → close and re-open the port. Nothing here lets one modem disturb another:
every failure ends in this modem's own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Protocol

import structlog

from simbank.at import AtChannel, Urc
from simbank.config.models import ModemConfig
from simbank.daemon.actions import CallResult, SwitchResult, place_call, switch_sim
from simbank.daemon.backoff import Backoff
from simbank.daemon.contract import ModemStateName, RegistrationInfo, SignalInfo
from simbank.daemon.status import StatusBoard
from simbank.drivers.generic import GenericDriver
from simbank.drivers.port import open_port
from simbank.drivers.registry import DRIVERS, driver_for_identity
from simbank.drivers.types import NewSms, Registration, Signal, SimStatus, SmsMessage
from simbank.errors import (
    AtTimeout,
    CommandError,
    ModemFault,
    PortLost,
    PortUnavailable,
    ProtocolGarbage,
    SimbankError,
)

log = structlog.get_logger(__name__)

CLOSE_TIMEOUT_S = 2.0
#: Consecutive command timeouts after which the modem counts as unresponsive.
UNRESPONSIVE_AFTER = 2
#: Tries of the stored-SMS pickup (AT+CMGL) after a SIM is identified: storage may lag.
SMS_PICKUP_TRIES = 3
# A +CMTI lost to a hang or to garbage on the line would leave its SMS on the SIM until the next
# switch: the storage is listed again after either, and every SMS_SWEEP_S in any case.
SMS_SWEEP_S = 60.0
#: Order in which a registered domain speaks for the modem as a whole.
_DOMAIN_ORDER = ("cereg", "c5greg", "creg", "cgreg")
_SIM_STATE = {
    SimStatus.READY: "available",
    SimStatus.PIN: "locked",
    SimStatus.PUK: "locked",
    SimStatus.ABSENT: "absent",
}


def port_present(path: str) -> bool:
    """A stat() of a device node: instant, so fine inside the event loop."""
    return os.path.exists(path)


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


class ModemObserver(Protocol):
    """What the bank side hears from a modem (the Gateway implements it)."""

    def sim_identified(
        self, modem_id: str, slot: int, iccid: str | None, imsi: str | None, status: SimStatus
    ) -> None: ...

    def registration_seen(
        self,
        modem_id: str,
        iccid: str | None,
        reg: Registration,
        rssi_dbm: int | None,
        operator: str | None,
    ) -> None: ...

    async def sms_received(
        self,
        modem_id: str,
        iccid: str | None,
        index: int,
        sender: str | None,
        text: str,
        *,
        sent_at: str | None = None,
    ) -> None: ...

    def modem_lost(self, modem_id: str, iccid: str | None) -> None: ...


class ModemSupervisor:
    """Runs one modem forever (until cancelled) and carries out actions on it."""

    def __init__(
        self,
        cfg: ModemConfig,
        board: StatusBoard,
        poll_interval_s: float,
        observer: ModemObserver | None = None,
        *,
        time_scale: float = 1.0,
    ) -> None:
        self.cfg = cfg
        self.time_scale = time_scale
        self.board = board
        self.poll_interval_s = poll_interval_s
        self.observer = observer
        self.driver: GenericDriver | None = None
        self._registrations: dict[str, Registration] = {}
        self._operator: str | None = None
        self._iccid: str | None = None
        self.imsi: str | None = None
        self.active_slot: int | None = None
        self.rssi_dbm: int | None = None
        self._online = False
        self._switching = False
        self._poll_now = asyncio.Event()
        self._sms_waiting: list[int] = []
        #: Tries left of the AT+CMGL pickup of the SIM just identified (0: none due).
        self._sms_pickup = 0
        self._sms_listable = False
        self._identify_again = False
        self.registration_changed = asyncio.Event()
        #: Held for the whole of an action (switch, call, SMS, USSD, reset): one at a time.
        self.lock = asyncio.Lock()
        self.sessions = 0
        #: Called with (modem id, seconds, timed_out) for every AT command: latency metrics.
        self.at_hook: Callable[[str, float, bool], None] | None = None

    @property
    def iccid(self) -> str | None:
        """The SIM in the active slot as last read back; None while that is uncertain."""
        return None if self._identify_again else self._iccid

    @property
    def ready(self) -> bool:
        return self.driver is not None and self._online

    @property
    def registration(self) -> Registration | None:
        return summarize(self._registrations)

    @property
    def operator_name(self) -> str | None:
        return self._operator

    # -- state helpers ----------------------------------------------------------------------
    def _set_state(self, state: ModemStateName) -> None:
        self.board.update_modem(self.cfg.id, state=state)

    def _went_offline(self, reason: str) -> None:
        self.driver = None
        self._registrations.clear()
        self._switching = False
        if self.observer is not None:
            self.observer.modem_lost(self.cfg.id, self._iccid)
        state: ModemStateName = "offline" if port_present(self.cfg.port) else "absent"
        self.board.update_modem(
            self.cfg.id,
            state=state,
            registration=RegistrationInfo(),
            signal=SignalInfo(),
        )
        if self._online:
            self._online = False
            self.board.event("modem_offline", modem=self.cfg.id, reason=reason)
            if self._iccid:
                self.board.update_sim(self._iccid, state="absent", modem=None, slot=None)

    # -- the loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        backoff = Backoff(0.5, 30.0)
        with structlog.contextvars.bound_contextvars(modem=self.cfg.id):
            self.board.add_modem(self.cfg.id, self.cfg.port)
            while True:
                reason = await self._one_session()
                if self._online or reason == "session_ended":
                    backoff.reset()
                self._went_offline(reason)
                delay = backoff.next()
                log.info("modem_retry_scheduled", reason=reason, retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)

    async def _one_session(self) -> str:
        if not port_present(self.cfg.port):
            return "port_missing"
        self._set_state("probing")
        try:
            channel = await open_port(self.cfg.port, self.cfg.baudrate, self.cfg.id)
        except PortUnavailable as exc:
            log.warning("modem_open_failed", error=str(exc))
            return "open_failed"
        self.sessions += 1
        if self.at_hook is not None:
            channel.on_result = partial(self.at_hook, self.cfg.id)
        try:
            await self._session(channel)
        except PortLost as exc:
            log.warning("modem_port_lost", error=str(exc))
            return "port_lost"
        except ModemFault as exc:
            log.warning("modem_fault", error=str(exc))
            return "modem_fault"
        except AtTimeout as exc:
            log.warning("modem_timeout", error=str(exc))
            return "timeout"
        except SimbankError as exc:
            log.warning("modem_error", error=str(exc), error_type=type(exc).__name__)
            return "error"
        except Exception:  # a bug must not take the other modems down; it is logged in full
            log.exception("modem_session_crashed")
            return "crashed"
        finally:
            channel.close()
            # pyserial-asyncio-fast finishes closing in a task of its own (tcdrain in an
            # executor); wait for it so no task outlives the session.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await channel.wait_closed()
        return "session_ended"

    async def _session(self, channel: AtChannel) -> None:
        driver: GenericDriver = DRIVERS.get(self.cfg.driver, GenericDriver)(
            channel, slots=self.cfg.slots
        )
        identity = await driver.probe()
        if self.cfg.driver == "auto":
            driver = driver_for_identity(identity.manufacturer, identity.model)(
                channel, slots=self.cfg.slots
            )
        self.driver = driver
        await driver.setup_urcs()
        # A call left over from before (a crash, a restart) is ours to end: hang it up; and
        # a crash in the middle of a SIM switch may have left the radio off.
        with contextlib.suppress(CommandError, AtTimeout):
            await driver.hangup()
        with contextlib.suppress(CommandError, AtTimeout, ProtocolGarbage):
            await driver.ensure_radio_on()
        log.info(
            "modem_probed",
            dialect=driver.dialect,
            model=identity.model,
            manufacturer=identity.manufacturer,
        )
        unsubscribe = channel.subscribe_all(self._on_urc)
        try:
            self.board.update_modem(
                self.cfg.id,
                state="ready",
                model=identity.model,
                manufacturer=identity.manufacturer,
            )
            self._online = True
            self.board.event(
                "modem_online", modem=self.cfg.id, model=identity.model, dialect=driver.dialect
            )
            await self._identify_sim(driver)
            await self._follow(driver, channel)
        finally:
            unsubscribe()

    async def _identify_sim(self, driver: GenericDriver) -> None:
        slot = await driver.active_slot()
        status = await driver.sim_status()
        iccid = await driver.read_iccid() if status is not SimStatus.ABSENT else None
        imsi = await driver.read_imsi() if status is SimStatus.READY else None
        self._adopt_sim(slot, status, iccid, imsi)

    def _adopt_sim(self, slot: int, status: SimStatus, iccid: str | None, imsi: str | None) -> None:
        """Make ``iccid`` (read back from the card) the modem's current SIM."""
        self._identify_again = False
        if self._iccid != iccid:
            # +CMTI indexes point into the SIM that was there; the pickup lists the new one.
            self._sms_waiting.clear()
        self._sms_listable = status is SimStatus.READY
        self._sms_pickup = SMS_PICKUP_TRIES if iccid and self._sms_listable else 0
        if self._iccid and self._iccid != iccid:
            self._registrations.clear()
            if self.observer is None:
                self.board.update_sim(self._iccid, state="available", modem=self.cfg.id, slot=None)
        self._iccid = iccid
        self.imsi = imsi
        self.active_slot = slot
        self.board.update_modem(self.cfg.id, active_slot=slot, iccid=iccid)
        if iccid:
            structlog.contextvars.bind_contextvars(iccid=iccid)
            if self.observer is None:
                sim_state = _SIM_STATE.get(status, "available")
                self.board.update_sim(iccid, modem=self.cfg.id, slot=slot, state=sim_state)
        if self.observer is not None:
            self.observer.sim_identified(self.cfg.id, slot, iccid, imsi, status)
        log.info("sim_identified", slot=slot, sim_status=str(status))

    def _list_sms_again(self) -> None:
        """Have the next poll list the SIM's storage (only a ready SIM is listed)."""
        if self._iccid is not None and self._sms_listable:
            self._sms_pickup = max(self._sms_pickup, 1)

    async def _follow(self, driver: GenericDriver, channel: AtChannel) -> None:
        loop = asyncio.get_running_loop()
        garbage, sweep_at = channel.garbage_seen, loop.time() + SMS_SWEEP_S
        while True:
            if channel.garbage_seen != garbage or loop.time() >= sweep_at:
                garbage, sweep_at = channel.garbage_seen, loop.time() + SMS_SWEEP_S
                self._list_sms_again()
            try:
                if not self._switching:
                    if self._identify_again:
                        await self._identify_sim(driver)
                    await self._poll(driver)
                    await self._take_sms(driver)
            except AtTimeout:
                self._list_sms_again()
                if channel.consecutive_timeouts >= UNRESPONSIVE_AFTER:
                    await self._escalate(driver, channel)
            except (CommandError, ProtocolGarbage) as exc:
                # One bad answer is not a reason to drop the modem: log it, poll again later.
                log.warning("poll_failed", error=str(exc), raw=exc.raw)
            self._poll_now.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval_s):
                    await self._poll_now.wait()

    async def _poll(self, driver: GenericDriver) -> None:
        for reg in await driver.registrations():
            self._on_registration(reg)
        self._on_signal(await driver.signal())
        operator = await driver.operator()
        if operator.name != self._operator:
            self._operator = operator.name
            self._publish_registration()

    async def _take_sms(self, driver: GenericDriver) -> None:
        """Read each announced SMS, hand it over (stored durably), and only then delete it.

        After a SIM is identified (start, restart, switch) every stored message is listed
        first (AT+CMGL): those that arrived while nobody listened. One stored but not yet
        deleted when the daemon died is listed again; the ledger keeps it once.
        """
        if self._sms_pickup > 0 and self._sim_steady():
            # Checked right before the AT command is queued: a switch queues its own commands
            # after it, so the listing is of the SIM ``iccid`` names.
            iccid = self._iccid
            try:
                stored = await driver.list_sms()
            except (CommandError, ProtocolGarbage) as exc:
                self._sms_pickup -= 1
                log.warning("sms_list_failed", error=str(exc), tries_left=self._sms_pickup)
            else:
                self._sms_pickup = 0
                if stored:
                    log.info("sms_picked_up", count=len(stored))
                for index, message in stored:
                    await self._hand_over(driver, iccid, index, message)
        while self._sms_waiting and self._sim_steady():
            index = self._sms_waiting[0]
            iccid = self._iccid
            try:
                message = await driver.read_sms(index)
            except (CommandError, ProtocolGarbage) as exc:
                log.warning("sms_unreadable", index=index, error=str(exc))
                self._sms_waiting.pop(0)
                continue
            await self._hand_over(driver, iccid, index, message)
            if self._sms_waiting and self._sms_waiting[0] == index:
                self._sms_waiting.pop(0)

    async def _hand_over(
        self, driver: GenericDriver, iccid: str | None, index: int, message: SmsMessage
    ) -> None:
        """Store one message (durably, via the observer), then delete it from the modem."""
        if self.observer is not None:
            await self.observer.sms_received(
                self.cfg.id,
                iccid,
                index,
                message.sender,
                message.text,
                sent_at=message.timestamp.isoformat() if message.timestamp else None,
            )
        if not self._sim_steady() or self._iccid != iccid:
            # A switch began meanwhile: the index may now point into another SIM. The message
            # stays on its own SIM and is listed again when that SIM is back (kept once).
            return
        await driver.delete_sms(index)

    def _sim_steady(self) -> bool:
        """No switch under way: the SIM read back last is the one in the active slot."""
        return not self._switching and not self._identify_again

    async def _escalate(self, driver: GenericDriver, channel: AtChannel) -> None:
        """Re-sync, then reboot the modem; if both fail, give the port up (the caller re-opens)."""
        self._set_state("unresponsive")
        given_up = channel.abort("given up: the modem stopped answering")
        log.warning("modem_unresponsive", timeouts=channel.consecutive_timeouts, given_up=given_up)
        for _ in range(3):
            with contextlib.suppress(AtTimeout):
                await channel.request("AT")
                log.info("modem_resynced")
                self._set_state("ready")
                # What the SIM did while nobody heard (a refresh, a lock, an SMS) is read again.
                self._identify_again = True
                return
        log.warning("modem_rebooting")
        with contextlib.suppress(AtTimeout):
            await driver.reboot()
            await asyncio.sleep(2.0)
            await driver.probe()
            await driver.setup_urcs()
            self._set_state("ready")
            await self._identify_sim(driver)
            return
        raise ModemFault("modem does not answer after re-sync and reboot; re-opening the port")

    # -- actions (callers hold self.lock) ---------------------------------------------------------
    def _driver(self) -> GenericDriver:
        if self.driver is None or not self._online:
            raise ModemFault(f"modem {self.cfg.id} is not ready")
        return self.driver

    async def switch_to(
        self, slot: int, *, sim_ready_timeout_s: float, registration_timeout_s: float
    ) -> SwitchResult:
        """Select ``slot`` and identify its SIM by reading the ICCID back."""
        driver = self._driver()
        self._switching = True
        self._set_state("switching")
        # Until the ICCID is read back, nobody may act on the SIM we believed was there.
        self._identify_again = True
        try:
            self._registrations.clear()
            result = await switch_sim(
                driver,
                slot,
                sim_ready_timeout_s=sim_ready_timeout_s,
                registration_timeout_s=registration_timeout_s,
                registration_settled=self.registration_changed,
            )
            imsi = await driver.read_imsi() if result.status is SimStatus.READY else None
        finally:
            self._switching = False
            if self.driver is not None:
                self._set_state("ready")
        self._adopt_sim(slot, result.status, result.iccid, imsi)
        if result.registration is not None:
            self._on_registration(result.registration)
        self._poll_now.set()
        return result

    async def call(self, number: str, max_duration_s: float) -> CallResult:
        scale = self.time_scale
        result = await place_call(self._driver(), number, max_duration_s / scale)
        if scale == 1.0:
            return result
        return replace(result, duration_s=round(result.duration_s * scale))

    async def send_sms(self, number: str, text: str) -> int:
        return await self._driver().send_sms(number, text)

    async def ussd(self, code: str, timeout_s: float = 30.0) -> str:
        return await self._driver().ussd(code, timeout_s)

    async def reattach(self) -> None:
        """Radio off and on again: the SIM registers afresh (one re-attach for a suspect)."""
        driver = self._driver()
        await driver.set_radio(False)
        await asyncio.sleep(1.0)
        await driver.set_radio(True)
        self._poll_now.set()

    async def reset(self) -> None:
        """``AT+CFUN=1,1`` then a fresh probe and SIM identification."""
        driver = self._driver()
        self._set_state("probing")
        await driver.reboot()
        await asyncio.sleep(2.0)
        await driver.probe()
        await driver.setup_urcs()
        self._set_state("ready")
        await self._identify_sim(driver)

    # -- URCs and updates -------------------------------------------------------------------------
    def _on_urc(self, urc: Urc) -> None:
        driver = self.driver
        if driver is None:
            return
        parsed = driver.parse_urc(urc)
        if isinstance(parsed, Registration):
            self._on_registration(parsed)
        elif isinstance(parsed, Signal):
            self._on_signal(parsed)
        elif isinstance(parsed, NewSms):
            if parsed.index not in self._sms_waiting:
                self._sms_waiting.append(parsed.index)
            self._poll_now.set()
        elif urc.name in {"+CPIN", "RDY", "^SIMST", "+QUSIM", "+SIM READY"}:
            # Outside a switch the card re-initialised on its own (a SIM refresh, a hot swap,
            # a PIN/PUK lock): read it again, so a locked or different card is seen at once.
            if not self._switching:
                self._identify_again = True
            self._poll_now.set()

    def _on_registration(self, reg: Registration) -> None:
        before = summarize(self._registrations)
        self._registrations[str(reg.domain)] = reg
        after = summarize(self._registrations)
        self._publish_registration()
        self.registration_changed.set()
        if self.observer is not None and not self._switching:
            self.observer.registration_seen(
                self.cfg.id, self._iccid, reg, self.rssi_dbm, self._operator
            )
        if after is None or (
            before is not None
            and (before.stat, before.reject_cause) == (after.stat, after.reject_cause)
        ):
            return
        self.board.event(
            "registration_changed",
            modem=self.cfg.id,
            iccid=self._iccid,
            domain=str(after.domain),
            stat=int(after.stat),
            state=after.state,
            reject_cause=after.reject_cause,
        )
        sim = self.board.sims.get(self._iccid) if self._iccid else None
        if self.observer is None and sim is not None and sim.state in {"available", "active"}:
            self.board.update_sim(sim.iccid, state="active" if after.registered else "available")

    def _publish_registration(self) -> None:
        reg = summarize(self._registrations)
        info = RegistrationInfo(
            stat=int(reg.stat) if reg else None,
            state=reg.state if reg else None,
            act=reg.act if reg else None,
            operator=self._operator,
            reject_cause=reg.reject_cause if reg else None,
        )
        self.board.update_modem(self.cfg.id, registration=info)

    def _on_signal(self, signal: Signal) -> None:
        if signal.rssi_dbm is not None:
            self.rssi_dbm = signal.rssi_dbm
        self.board.update_modem(
            self.cfg.id, signal=SignalInfo(rssi_dbm=signal.rssi_dbm, quality=signal.quality)
        )
