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
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Protocol

import structlog

from simbank.at import AtChannel, Urc
from simbank.at.codes import SIM_BUSY_CODES
from simbank.backoff import Backoff
from simbank.bank.sim_identity import ReadToken, SimIdentity
from simbank.config.models import ModemConfig
from simbank.contract import ModemStateName, RegistrationInfo, SignalInfo
from simbank.daemon.board import StatusBoard
from simbank.drivers.generic import GenericDriver
from simbank.drivers.parse.identity import iccid_checksum_ok
from simbank.drivers.port import open_port
from simbank.drivers.procedures import (
    CallResult,
    SwitchResult,
    place_call,
    select_and_wait,
    wait_registration,
)
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
#: After a poll goes unanswered, the modem is checked with bare ``AT``s this far apart; when
#: all of them go unanswered too it is ``unresponsive`` (within 10 s of the first miss).
LIVENESS_CHECKS = 2
LIVENESS_GAP_S = 2.0
#: A session that stayed ready this long was a good one: the reconnect backoff starts again.
STABLE_SESSION_S = 30.0
#: The backoff of a modem that keeps failing grows to this (minutes, not seconds).
FAILED_BACKOFF_MAX_S = 300.0
#: The longest wait between two looks for an unplugged modem's port.
ABSENT_BACKOFF_MAX_S = 30.0
#: The same failure this many sessions in a row: the modem is published ``failed``.
FAILED_AFTER = 2
#: How long the ICCID read may be answered "SIM busy" after a switch or a reset (CME 14 lasts
#: seconds on real modems: modem-realism.md B10).
SIM_BUSY_WAIT_S = 10.0
SIM_BUSY_RETRY_S = 0.5
#: Reads of a card's identity before giving up for this round when each overlapped a change.
READ_BACK_TRIES = 3
#: URCs that say the card in the active slot may have changed (or re-initialised): the SIM is
#: unknown until its ICCID is read back. ``RDY`` is a reboot; ``+QUSIM: 1`` a SIM re-init.
_SIM_CHANGE_URCS = frozenset({"RDY", "+SIMCARD", "+SIM", "+SIM DROP", "#QSS"})
#: Readiness URCs: a change outside a switch (a hot swap whose NOT READY was missed); during a
#: switch they are what we wait for, and must not void the read-back that follows them.
_SIM_READY_URCS = frozenset({"+CPIN", "+SIM READY", "+QUSIM", "^SIMST"})
#: How soon an unreadable card (its ICCID refused) is tried again.
UNREADABLE_RETRY_S = 60.0
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


def _sim_ready_urc(urc: Urc) -> bool:
    """False for a SIM URC that says the card went or is not ready (``+CPIN: NOT READY``,
    ``^SIMST: 0``/``255``, ``+QUSIM: 0``); True for the rest (readiness, or not a SIM URC)."""
    if urc.name not in _SIM_READY_URCS or urc.name == "+SIM READY":
        return True
    value = urc.text.partition(":")[2].strip().strip('"').upper()
    if urc.name == "+CPIN":
        return value == "READY"
    return value.split(",")[0].strip() == "1"


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
        #: The card in the active slot: unknown from any change until its ICCID is read back.
        self.sim = SimIdentity()
        self.imsi: str | None = None
        #: The MNC length read from the SIM's EF_AD (None: unknown), for the home network.
        self.mnc_length: int | None = None
        #: A denial without a cause was seen: ask AT+CEER once (outside the URC callback).
        self._ask_ceer = False
        #: The last AT+CEER line and the SIM it was read for: the modem keeps its last cause
        #: across a switch, and one SIM's cause must never be pinned on the next.
        self._last_ceer: tuple[str, str] | None = None
        self._unreadable_since: float | None = None
        self._warned_check_digit: set[str] = set()
        self.active_slot: int | None = None
        self.rssi_dbm: int | None = None
        self._online = False
        self._switching = False
        self._poll_now = asyncio.Event()
        self._sms_waiting: list[int] = []
        #: Tries left of the AT+CMGL pickup of the SIM just identified (0: none due).
        self._sms_pickup = 0
        self._sms_listable = False
        #: Consecutive sessions that failed the same way, and how (for state and backoff).
        self.failures = 0
        self.failure_reason: str | None = None
        #: The delays chosen before re-opening the port, newest last (what the backoff decided).
        self.retry_delays: deque[float] = deque(maxlen=64)
        self._ready_since: float | None = None
        self.registration_changed = asyncio.Event()
        #: Held for the whole of an action (switch, call, SMS, USSD, reset): one at a time.
        self.lock = asyncio.Lock()
        self.sessions = 0
        #: Called with (modem id, seconds, timed_out) for every AT command: latency metrics.
        self.at_hook: Callable[[str, float, bool], None] | None = None
        #: Called with (modem id, reason) each time the channel re-syncs: metrics.
        self.resync_hook: Callable[[str, str], None] | None = None

    @property
    def iccid(self) -> str | None:
        """The SIM in the active slot as read back; None while that is uncertain."""
        return self.sim.iccid

    @property
    def usable_slots(self) -> int:
        """The slots this modem can reach: the configured ones if it switches, else one."""
        driver = self.driver
        return driver.usable_slots if driver is not None else self.cfg.slots

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
    def _sim_changed(self, reason: str) -> None:
        """The card in the active slot may have changed: unknown until read back; the bank
        side hears it at once (the old card's timers stop, nothing more is its doing)."""
        was_known, last = self.sim.known, self.sim.last_read
        self.sim.changed(reason)
        if not was_known:
            return
        self.board.update_modem(self.cfg.id, iccid=None)
        if self.observer is not None and self.driver is not None:
            self.observer.sim_unknown(self.cfg.id, last)

    def _set_state(self, state: ModemStateName) -> None:
        self.board.update_modem(self.cfg.id, state=state)

    def _went_offline(self, reason: str, error: str | None) -> None:
        """The session ended: publish the state once (``failed`` when the same failure
        repeats), one event per state change — never an online/offline flap per retry."""
        self.driver = None
        self._registrations.clear()
        self._switching = False
        last = self.sim.last_read
        # Whatever happens to the port meanwhile, the card must be read back again.
        self.sim.changed("port closed")
        if self._online and self.observer is not None:
            self.observer.modem_lost(self.cfg.id, last)
        state: ModemStateName
        if not port_present(self.cfg.port):
            state = "absent"
        elif self.failures >= FAILED_AFTER:
            state = "failed"
        else:
            state = "offline"
        was = self.board.modems[self.cfg.id].state
        self.board.update_modem(
            self.cfg.id,
            state=state,
            reason=(error or reason) if state == "failed" else None,
            registration=RegistrationInfo(),
            signal=SignalInfo(),
        )
        if self._online:
            self._online = False
            self._ready_since = None
            self.board.event("modem_offline", modem=self.cfg.id, reason=reason)
            if last:
                self.board.update_sim(last, state="absent", modem=None, slot=None)
        if state == "failed" and was != "failed":
            self.board.event("modem_failed", modem=self.cfg.id, reason=error or reason)

    # -- the loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        backoff = Backoff(0.5, FAILED_BACKOFF_MAX_S)
        # An unplugged modem is looked for every 30 s at most: it is not failing, it is away.
        absent = Backoff(0.5, ABSENT_BACKOFF_MAX_S)
        with structlog.contextvars.bound_contextvars(modem=self.cfg.id):
            self.board.add_modem(self.cfg.id, self.cfg.port)
            while True:
                reason, error = await self._one_session()
                loop = asyncio.get_running_loop()
                stable = (
                    self._ready_since is not None
                    and loop.time() - self._ready_since >= STABLE_SESSION_S
                )
                if stable or reason in {"session_ended", "port_missing"}:
                    backoff.reset()
                    self.failures = 0
                elif reason == self.failure_reason:
                    self.failures += 1  # the same failure again: the backoff keeps growing
                else:
                    self.failures = 1  # another kind of failure starts its own count
                if reason != "port_missing":
                    absent.reset()
                self.failure_reason = None if reason == "port_missing" else reason
                self._went_offline(reason, error)
                delay = absent.next() if reason == "port_missing" else backoff.next()
                self.retry_delays.append(delay)
                # Rate-limited: the first failure of a kind is a warning, repeats are debug
                # except every tenth (a modem failing for good writes a line a few minutes).
                level = "warning" if self.failures <= 1 or self.failures % 10 == 0 else "debug"
                getattr(log, level)(
                    "modem_retry_scheduled",
                    reason=reason,
                    error=error,
                    failures=self.failures,
                    retry_in_s=round(delay, 2),
                )
                await asyncio.sleep(delay)

    async def _one_session(self) -> tuple[str, str | None]:
        """One session on the port: (why it ended, the error) — logged by the caller."""
        if not port_present(self.cfg.port):
            return "port_missing", None
        if self.failures < FAILED_AFTER:
            self._set_state("probing")
        try:
            channel = await open_port(self.cfg.port, self.cfg.baudrate, self.cfg.id)
        except PortUnavailable as exc:
            return "open_failed", str(exc)
        self.sessions += 1
        if self.at_hook is not None:
            channel.on_result = partial(self.at_hook, self.cfg.id)
        if self.resync_hook is not None:
            channel.on_resync = partial(self.resync_hook, self.cfg.id)
        try:
            await self._session(channel)
        except PortLost as exc:
            return "port_lost", str(exc)
        except ModemFault as exc:
            return "modem_fault", str(exc)
        except AtTimeout as exc:
            return "timeout", str(exc)
        except SimbankError as exc:
            return "error", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug must not take the other modems down: logged in full
            log.exception("modem_session_crashed")
            return "crashed", f"{type(exc).__name__}: {exc}"
        finally:
            channel.close()
            # pyserial-asyncio-fast finishes closing in a task of its own (tcdrain in an
            # executor); wait for it so no task outlives the session.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await channel.wait_closed()
        return "session_ended", None

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
        capabilities = await driver.probe_capabilities()
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
                model=identity.model,
                manufacturer=identity.manufacturer,
                capabilities=capabilities,
            )
            # Online once the modem works end to end (probed, SIM identified): a modem that
            # fails here again and again is never published online/offline per retry.
            await self._identify_sim(driver)
            self.board.update_modem(self.cfg.id, state="ready", reason=None)
            self._online = True
            self._ready_since = asyncio.get_running_loop().time()
            self.board.event(
                "modem_online", modem=self.cfg.id, model=identity.model, dialect=driver.dialect
            )
            await self._follow(driver, channel)
        finally:
            unsubscribe()

    async def _identify_sim(self, driver: GenericDriver) -> None:
        slot = await driver.active_slot()
        for _ in range(READ_BACK_TRIES):
            status = await driver.sim_status()
            if await self._read_back(driver, slot, status):
                return

    async def _read_back(self, driver: GenericDriver, slot: int, status: SimStatus) -> bool:
        """Read the card's identity and adopt it; False if the card may have changed meanwhile
        (read again). A card whose ICCID is refused (CME 13 "SIM failure", a locked card that
        will not give it, garbage twice) is adopted as no readable card — the modem stays in
        service and its other slots reachable — and tried again after a while."""
        token = self.sim.begin_read()
        self._unreadable_since = None
        try:
            iccid = await self._read_iccid(driver, status)
        except (CommandError, ProtocolGarbage) as exc:
            log.warning("iccid_unreadable", slot=slot, error=str(exc))
            iccid = None
            self._unreadable_since = asyncio.get_running_loop().time()
            if status is SimStatus.READY:
                status = SimStatus.ERROR
        try:
            imsi = await self._read_imsi(driver, status)
        except (CommandError, ProtocolGarbage) as exc:
            log.warning("imsi_unreadable", error=str(exc))
            imsi = None
        return self._adopt_sim(token, slot, status, iccid, imsi, cme_code=driver.last_sim_cme)

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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SIM_BUSY_WAIT_S
        while True:
            try:
                iccid = await driver.read_iccid()
            except CommandError as exc:
                if exc.code not in SIM_BUSY_CODES or loop.time() >= deadline:
                    raise CommandError(
                        f"cannot read the ICCID: {exc}", raw=exc.raw, code=exc.code
                    ) from exc
                log.debug("iccid_sim_busy")
                await asyncio.sleep(SIM_BUSY_RETRY_S)
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

    def _adopt_sim(
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
        if previous != iccid:
            # +CMTI indexes point into the SIM that was there; the pickup lists the new one.
            self._sms_waiting.clear()
        self._sms_listable = status is SimStatus.READY
        self._sms_pickup = SMS_PICKUP_TRIES if iccid and self._sms_listable else 0
        if previous and previous != iccid:
            self._registrations.clear()
            if self.observer is None:
                self.board.update_sim(previous, state="available", modem=self.cfg.id, slot=None)
        self.imsi = imsi
        self.active_slot = slot
        self.board.update_modem(self.cfg.id, active_slot=slot, iccid=iccid)
        if iccid:
            structlog.contextvars.bind_contextvars(iccid=iccid)
            if self.observer is None:
                sim_state = _SIM_STATE.get(status, "available")
                self.board.update_sim(iccid, modem=self.cfg.id, slot=slot, state=sim_state)
        if self.observer is not None:
            warnings = ("iccid_check_digit",) if iccid in self._warned_check_digit else ()
            self.observer.sim_identified(
                self.cfg.id, slot, iccid, imsi, status, cme_code=cme_code, warnings=warnings
            )
        log.info("sim_identified", slot=slot, sim_status=str(status))
        return True

    def _list_sms_again(self) -> None:
        """Have the next poll list the SIM's storage (only a ready SIM is listed)."""
        if self.sim.iccid is not None and self._sms_listable:
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
                    unreadable = self._unreadable_since
                    if not self.sim.known or (
                        unreadable is not None and loop.time() - unreadable >= UNREADABLE_RETRY_S
                    ):
                        await self._identify_sim(driver)
                    await self._ask_reject_cause(driver)
                    await self._poll(driver)
                    await self._take_sms(driver)
            except AtTimeout:
                self._list_sms_again()
                if not await self._still_answers(channel):
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

    async def _ask_reject_cause(self, driver: GenericDriver) -> None:
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
            self.observer.reject_cause_seen(self.cfg.id, iccid, cause, source="ceer", raw=line)

    async def _take_sms(self, driver: GenericDriver) -> None:
        """Read each announced SMS, hand it over (stored durably), and only then delete it.

        After a SIM is identified (start, restart, switch) every stored message is listed
        first (AT+CMGL): those that arrived while nobody listened. One stored but not yet
        deleted when the daemon died is listed again; the ledger keeps it once.
        """
        if self._sms_pickup > 0 and self._sim_steady():
            # Checked right before the AT command is queued: a switch queues its own commands
            # after it, so the listing is of the SIM ``iccid`` names.
            iccid = self.sim.iccid
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
            iccid = self.sim.iccid
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
        if not self._sim_steady() or self.sim.iccid != iccid:
            # A switch began meanwhile: the index may now point into another SIM. The message
            # stays on its own SIM and is listed again when that SIM is back (kept once).
            return
        await driver.delete_sms(index)

    def _sim_steady(self) -> bool:
        """No switch under way: the SIM read back last is the one in the active slot."""
        return not self._switching and self.sim.known

    async def _still_answers(self, channel: AtChannel) -> bool:
        """After a missed answer: bare ``AT``s a few seconds apart. False when none is
        answered — the modem is unresponsive (noticed within ~10 s, not after 3 polls)."""
        for check in range(LIVENESS_CHECKS):
            if check:
                await asyncio.sleep(LIVENESS_GAP_S)
            try:
                await channel.request("AT")
            except AtTimeout:
                continue
            return True
        return False

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
                # What the SIM did while nobody heard (a refresh, a lock, a swap) is read again.
                self._sim_changed("resync")
                return
        log.warning("modem_rebooting")
        self._sim_changed("reset")
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
        # Until the ICCID is read back, nothing may be said of (or done to) any SIM here.
        self._sim_changed("switch")
        registration: Registration | None = None
        try:
            self._registrations.clear()
            status = await select_and_wait(driver, slot, sim_ready_timeout_s)
            # Adopted the moment it is read: what the registration wait sees is this SIM's.
            # A readiness URC glued late may void a read: read again (with a fresh status).
            for _ in range(READ_BACK_TRIES):
                if await self._read_back(driver, slot, status):
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
            self._on_registration(registration)
        self._poll_now.set()
        return SwitchResult(slot, status, iccid, registration)

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
        self._sim_changed("reset")
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
        elif urc.name in _SIM_CHANGE_URCS or not _sim_ready_urc(urc):
            # The card re-initialised, went or was swapped (a refresh, a hot swap, a reboot,
            # +CPIN: NOT READY): unknown until read back, so nothing is blamed on the old one.
            self._sim_changed(f"urc:{urc.name}")
            self._poll_now.set()
        elif urc.name in _SIM_READY_URCS:
            # Outside a switch, a card came up on its own (a refresh, a PIN/PUK lock, a swap
            # whose NOT READY was missed): read it again. In a switch it is what we wait for.
            if not self._switching:
                self._sim_changed(f"urc:{urc.name}")
            self._poll_now.set()

    def _on_registration(self, reg: Registration) -> None:
        before = summarize(self._registrations)
        self._registrations[str(reg.domain)] = reg
        after = summarize(self._registrations)
        self._publish_registration()
        self.registration_changed.set()
        # Attributed only to a card read back since the last change: never to the one that
        # was in the slot before a switch, a reset or a hot swap.
        iccid = self.sim.iccid
        if self.observer is not None and iccid is not None:
            self.observer.registration_seen(self.cfg.id, iccid, reg, self.rssi_dbm, self._operator)
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
            modem=self.cfg.id,
            iccid=iccid,
            domain=str(after.domain),
            stat=int(after.stat),
            state=after.state,
            reject_cause=after.reject_cause,
        )
        sim = self.board.sims.get(iccid) if iccid else None
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
