"""One modem's life on its port: open, probe, identify the SIM, follow it, recover, re-open.

:class:`ModemSession` owns the modem's published state and its sessions: each opens the port,
probes the modem (choosing the vendor driver), reads the SIM back and then follows the modem —
polling registration and signal, handling URCs, picking up SMS — until the port is lost or
the modem stops answering for good; :class:`~simbank.daemon.modem.reconnect.Reconnect` decides when
the next session starts. Nothing here lets one modem disturb another: every failure ends in
this modem's own loop. The actions on the modem are
:class:`~simbank.daemon.modem.supervisor.ModemSupervisor`'s.

Two kinds of time: the follow loop's cadence (the poll interval, the SMS sweep, the retry of an
unreadable card) is the event loop's, like the configured poll interval; every wait that
stands for modem time (a retry gap, a reboot, a SIM settling) is the injected clock's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Callable
from functools import partial

import structlog

from simbank.at import AtChannel, Urc
from simbank.bank.sim_identity import SimIdentity
from simbank.clock import Clock, SystemClock
from simbank.config.models import ModemConfig
from simbank.contract import ModemStateName, RegistrationInfo, SignalInfo
from simbank.daemon.board import StatusBoard
from simbank.daemon.modem.call_watch import CallWatch
from simbank.daemon.modem.identify import SimIdentification, sim_urc_ready, sim_urc_voids
from simbank.daemon.modem.liveness import reboot_and_reprobe, resyncs, still_answers
from simbank.daemon.modem.network import NetworkView
from simbank.daemon.modem.observer import ModemObserver
from simbank.daemon.modem.reconnect import STABLE_SESSION_S, Reconnect
from simbank.daemon.modem.ringing import IncomingCalls
from simbank.daemon.modem.sms_pickup import SMS_SWEEP_S, SmsPickup
from simbank.drivers.generic import GenericDriver
from simbank.drivers.parse.calls import CallReport
from simbank.drivers.parse.incoming import CallerId, Ring
from simbank.drivers.port import open_port
from simbank.drivers.registry import DRIVERS, driver_for_identity
from simbank.drivers.types import DeliveryReport, NewSms, Registration, Signal
from simbank.errors import (
    AtTimeout,
    CommandError,
    ModemFault,
    PortLost,
    PortUnavailable,
    ProtocolGarbage,
    SimbankError,
    StorageUnavailable,
)

log = structlog.get_logger(__name__)

CLOSE_TIMEOUT_S = 2.0


def port_present(path: str) -> bool:
    """A stat() of a device node: instant, so fine inside the event loop."""
    return os.path.exists(path)


class ModemSession:
    """Runs one modem forever (until cancelled): sessions on its port and its state."""

    def __init__(
        self,
        cfg: ModemConfig,
        board: StatusBoard,
        poll_interval_s: float,
        observer: ModemObserver | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock: Clock = SystemClock() if clock is None else clock
        self.board = board
        self.poll_interval_s = poll_interval_s
        self.observer = observer
        self.driver: GenericDriver | None = None
        #: The card in the active slot: unknown from any change until its ICCID is read back.
        self.sim = SimIdentity()
        self._online = False
        self._switching = False
        self._poll_now = asyncio.Event()
        self.network = NetworkView(cfg.id, board, observer, self.sim, self._poll_now)
        self.sms = SmsPickup(cfg.id, observer, self.sim, self._sim_steady)
        self.identification = SimIdentification(
            cfg.id,
            board,
            observer,
            sim=self.sim,
            sms=self.sms,
            network=self.network,
            clock=self.clock,
        )
        self.reconnect = Reconnect()
        #: Inbound calls (RING/+CLIP): followed by a task of each session.
        self.calls_in = IncomingCalls(cfg.id, self.sim, self.clock)
        #: Every call on the modem, whoever dialled it (``AT+CLCC`` polls, ``+CLCC`` URCs):
        #: followed by a task of each session, while no switch is under way.
        self.call_watch = CallWatch(
            cfg.id, self.sim, self.clock, steady=lambda: not self._switching
        )
        self._ready_since: float | None = None
        #: Set at every registration seen (a switch waits on it).
        self.registration_changed = self.network.changed
        #: Held for the whole of an action (switch, call, SMS, USSD, reset): one at a time.
        self.lock = asyncio.Lock()
        #: Held by anything that switches the SMS message format (AT+CMGF) for a while: a
        #: PDU-mode send and the pickup's reads. They must not interleave (a read's
        #: ``AT+CMGF=1`` between a send's ``AT+CMGF=0`` and ``AT+CMGS=<length>`` would make
        #: the length a text-mode destination); the pickup does not wait for a call's lock.
        self.sms_lock = asyncio.Lock()
        self.sessions = 0
        #: Called with (modem id, seconds, timed_out) for every AT command: latency metrics.
        self.at_hook: Callable[[str, float, bool], None] | None = None
        #: Called with (modem id, reason) each time the channel re-syncs: metrics.
        self.resync_hook: Callable[[str, str], None] | None = None

    # -- what is known of the modem -----------------------------------------------------------
    @property
    def iccid(self) -> str | None:
        """The SIM in the active slot as read back; None while that is uncertain."""
        return self.sim.iccid

    @property
    def imsi(self) -> str | None:
        return self.identification.imsi

    @property
    def mnc_length(self) -> int | None:
        """The MNC length read from the SIM's EF_AD (None: unknown), for the home network."""
        return self.identification.mnc_length

    @property
    def active_slot(self) -> int | None:
        return self.identification.active_slot

    @property
    def usable_slots(self) -> int:
        """The slots this modem can reach: the configured ones if it switches, else one."""
        driver = self.driver
        return driver.usable_slots if driver is not None else self.cfg.slots

    @property
    def ready(self) -> bool:
        return self.driver is not None and self._online

    @property
    def in_call(self) -> bool:
        """A call rings or is live on the modem (inbound, or any call ``AT+CLCC`` lists):
        its slot must not be switched now."""
        return self.calls_in.busy or self.call_watch.live

    @property
    def registration(self) -> Registration | None:
        return self.network.summary

    @property
    def operator_name(self) -> str | None:
        return self.network.operator

    @property
    def rssi_dbm(self) -> int | None:
        return self.network.rssi_dbm

    @property
    def failures(self) -> int:
        """Consecutive sessions that failed the same way."""
        return self.reconnect.failures

    @property
    def failure_reason(self) -> str | None:
        return self.reconnect.failure_reason

    @property
    def retry_delays(self) -> deque[float]:
        """The delays chosen before re-opening the port, newest last."""
        return self.reconnect.retry_delays

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

    def _sim_steady(self) -> bool:
        """No switch under way: the SIM read back last is the one in the active slot."""
        return not self._switching and self.sim.known

    def _set_state(self, state: ModemStateName) -> None:
        self.board.update_modem(self.cfg.id, state=state)

    def _went_offline(self, reason: str, error: str | None) -> None:
        """The session ended: publish the state once (``failed`` when the same failure
        repeats), one event per state change — never an online/offline flap per retry."""
        self.driver = None
        self.network.registrations.clear()
        self._switching = False
        self.calls_in.lost()
        last = self.sim.last_read
        # Whatever happens to the port meanwhile, the card must be read back again.
        self.sim.changed("port closed")
        if self._online and self.observer is not None:
            self.observer.modem_lost(self.cfg.id, last)
        state: ModemStateName
        if not port_present(self.cfg.port):
            state = "absent"
        elif self.reconnect.failed:
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
        with structlog.contextvars.bound_contextvars(modem=self.cfg.id):
            self.board.add_modem(self.cfg.id, self.cfg.port)
            while True:
                reason, error = await self._one_session()
                stable = (
                    self._ready_since is not None
                    and self.clock.monotonic() - self._ready_since >= STABLE_SESSION_S
                )
                delay = self.reconnect.session_ended(reason, stable=stable)
                self._went_offline(reason, error)
                failures = self.reconnect.failures
                # Rate-limited: the first failure of a kind is a warning, repeats are debug
                # except every tenth (a modem failing for good writes a line a few minutes).
                level = "warning" if failures <= 1 or failures % 10 == 0 else "debug"
                getattr(log, level)(
                    "modem_retry_scheduled",
                    reason=reason,
                    error=error,
                    failures=failures,
                    retry_in_s=round(delay, 2),
                )
                await self.clock.sleep(delay)

    async def _one_session(self) -> tuple[str, str | None]:
        """One session on the port: (why it ended, the error) — logged by the caller."""
        if not port_present(self.cfg.port):
            return "port_missing", None
        if not self.reconnect.failed:
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
        capabilities = {**capabilities, **await driver.setup_caller_id()}
        capabilities["call_reports"] = await driver.setup_call_reports()
        # A call left over from before (a crash, a restart) is ours to end: hang it up — but
        # not on a modem a PBX dials through (``device`` set): the radio is shared by its
        # ports, and the call may be the PBX's, live on its own port. A crash in the middle
        # of a SIM switch may have left the radio off.
        if self.cfg.device is None:
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
            # The calls up now, before anything may switch a slot (identify() starts the
            # inventory tour and the serving guard): a PBX's call on a modem it dials through
            # (not hung up above), or one a lost port left followed (ended, or still up?).
            self.call_watch.session_started()
            if self.cfg.device is not None or self.call_watch.live:
                await self.call_watch.poll(driver)
            self.board.update_modem(
                self.cfg.id,
                model=identity.model,
                manufacturer=identity.manufacturer,
                capabilities=capabilities,
            )
            # Online once the modem works end to end (probed, SIM identified): a modem that
            # fails here again and again is never published online/offline per retry.
            await self.identification.identify(driver)
            self.board.update_modem(self.cfg.id, state="ready", reason=None)
            self._online = True
            self._ready_since = self.clock.monotonic()
            self.board.event(
                "modem_online", modem=self.cfg.id, model=identity.model, dialect=driver.dialect
            )
            calls_in = asyncio.create_task(
                self.calls_in.run(driver), name=f"inbound-calls-{self.cfg.id}"
            )
            call_watch = asyncio.create_task(
                self.call_watch.run(driver), name=f"call-watch-{self.cfg.id}"
            )
            try:
                await self._follow(driver, channel)
            finally:
                for task in (calls_in, call_watch):
                    task.cancel()
                for task in (calls_in, call_watch):
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        finally:
            unsubscribe()

    async def _follow(self, driver: GenericDriver, channel: AtChannel) -> None:
        loop = asyncio.get_running_loop()
        garbage, sweep_at = channel.garbage_seen, loop.time() + SMS_SWEEP_S
        while True:
            if channel.garbage_seen != garbage or loop.time() >= sweep_at:
                garbage, sweep_at = channel.garbage_seen, loop.time() + SMS_SWEEP_S
                self.sms.list_again()
            try:
                if not self._switching:
                    if not self.sim.known or self.identification.unreadable_due(loop.time()):
                        await self.identification.identify(driver)
                    await self.network.ask_reject_cause(driver)
                    await self.network.poll(driver)
                    async with self.sms_lock:
                        await self.sms.take(driver)
                    await self._keep_serving()
            except AtTimeout:
                self.sms.list_again()
                if not await still_answers(channel, self.clock):
                    await self._escalate(driver, channel)
            except (CommandError, ProtocolGarbage) as exc:
                # One bad answer is not a reason to drop the modem: log it, poll again later.
                log.warning("poll_failed", error=str(exc), raw=exc.raw)
            except StorageUnavailable as exc:
                # The ledger cannot store what the poll saw (the gateway is degraded, which the
                # storage watch reports): the modem stays up, and it is seen again next poll.
                log.debug("poll_not_stored", error=str(exc))
            self._poll_now.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval_s):
                    await self._poll_now.wait()

    async def _keep_serving(self) -> None:
        """After each poll: leave a SIM that cannot serve for a usable one (the supervisor's
        :class:`~simbank.daemon.modem.serving.ServingGuard`; a bare session has none)."""

    async def _escalate(self, driver: GenericDriver, channel: AtChannel) -> None:
        """Re-sync, then reboot the modem; if both fail, give the port up (the caller re-opens)."""
        self._set_state("unresponsive")
        given_up = channel.abort("given up: the modem stopped answering")
        log.warning("modem_unresponsive", timeouts=channel.consecutive_timeouts, given_up=given_up)
        if await resyncs(channel):
            log.info("modem_resynced")
            self._set_state("ready")
            # What the SIM did while nobody heard (a refresh, a lock, a swap) is read again.
            self._sim_changed("resync")
            return
        log.warning("modem_rebooting")
        with contextlib.suppress(AtTimeout):
            await self._reboot(driver)
            return
        raise ModemFault("modem does not answer after re-sync and reboot; re-opening the port")

    async def _reboot(self, driver: GenericDriver) -> None:
        """The one reboot-and-reprobe (after a hang, or on request): the card is unknown from
        the reboot until it is read back."""
        self._sim_changed("reset")
        await reboot_and_reprobe(driver, self.clock)
        self._set_state("ready")
        await self.identification.identify(driver)

    # -- URCs -----------------------------------------------------------------------------------
    def _on_urc(self, urc: Urc) -> None:
        driver = self.driver
        if driver is None:
            return
        parsed = driver.parse_urc(urc)
        if isinstance(parsed, Registration):
            self.network.on_registration(parsed)
        elif isinstance(parsed, Signal):
            self.network.on_signal(parsed)
        elif isinstance(parsed, NewSms):
            self.sms.announced(parsed.index, parsed.storage)
            self._poll_now.set()
        elif isinstance(parsed, Ring):
            self.calls_in.on_ring(parsed)
        elif isinstance(parsed, CallerId):
            self.calls_in.on_caller(parsed)
        elif isinstance(parsed, CallReport):
            self.call_watch.on_report(parsed)
        elif isinstance(parsed, DeliveryReport):
            if self.observer is not None:
                self.observer.delivery_report(self.cfg.id, parsed)
        elif sim_urc_voids(urc):
            # The card re-initialised, went or was swapped (a refresh, a hot swap, a reboot,
            # +CPIN: NOT READY): unknown until read back, so nothing is blamed on the old one.
            self._sim_changed(f"urc:{urc.name}")
            self._poll_now.set()
        elif sim_urc_ready(urc):
            # Outside a switch, a card came up on its own (a refresh, a PIN/PUK lock, a swap
            # whose NOT READY was missed): read it again. In a switch it is what we wait for.
            if not self._switching:
                self._sim_changed(f"urc:{urc.name}")
            self._poll_now.set()
