"""The bank at run time: the pure rules of ``simbank.bank`` wired to the modems, the ledger and MQTT.

It hears every modem (``ModemObserver``), feeds the block detector and applies its verdicts
(``verdicts.py``: ledger first, then MQTT), keeps the SIM inventory (``inventory.py``: which
ICCID sits in which slot), and publishes each SIM's retained state with live usage and
limits. Command handlers (``commands/``) act through it. Pure decisions stay in
``simbank.bank`` (a SIM's state: ``bank.sim_state``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any, Concatenate, ParamSpec
from zoneinfo import ZoneInfo

import structlog

from simbank.bank.circuit import CircuitBreaker
from simbank.bank.detector import BlockDetector
from simbank.bank.evidence import Verdict
from simbank.bank.policy import Limits, select_policy
from simbank.bank.rotation import ModemView, SlotView
from simbank.bank.sim_state import (
    REFRESH_MAX_S,
    contract_state,
    is_resting,
    next_refresh,
    plan_state,
    recovered,
    rest_reason,
    shown_state,
    sticky,
)
from simbank.bank.usage import Usage, history_start, summarise
from simbank.clock import Clock
from simbank.config.models import ComplianceConfig, Config, PolicyConfig
from simbank.contract import SimStateName
from simbank.daemon.board import StatusBoard
from simbank.daemon.delivery import DeliveryReports
from simbank.daemon.inbox import InboxService
from simbank.daemon.inventory import Inventory, SimInfo
from simbank.daemon.modem.supervisor import ModemSupervisor
from simbank.daemon.publication import (
    EVIDENCE_BEFORE_S,
    balance_info,
    block_info,
    episode_start,
    limits_payload,
    shows_block,
    usage_payload,
)
from simbank.daemon.verdicts import CIRCUIT_KEY, VerdictLedger
from simbank.drivers.parse.plmn import home_network
from simbank.drivers.types import DeliveryReport, Registration, SimStatus, SmsMessage
from simbank.errors import ConfigError, StorageUnavailable
from simbank.store.dnc import DoNotCallList
from simbank.store.ledger import InboundSms, Ledger

log = structlog.get_logger(__name__)

_P = ParamSpec("_P")


def survives_storage(
    method: Callable[Concatenate[BankRuntime, _P], None],
) -> Callable[Concatenate[BankRuntime, _P], None]:
    """What a modem tells the runtime must not end the modem's session when the ledger cannot
    store it (the gateway is ``degraded``: the storage watch says so): a verdict is kept by
    :class:`VerdictLedger`, the rest is seen again at the next poll or URC."""

    @functools.wraps(method)
    def tolerant(runtime: BankRuntime, /, *args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            method(runtime, *args, **kwargs)
        except StorageUnavailable as exc:
            log.debug("not_stored_while_degraded", what=method.__name__, error=str(exc))

    return tolerant


TICK_S = 1.0
#: SIM payloads the clock changed that one tick publishes again, at most.
REFRESH_PER_TICK = 64
#: Gateway-clock seconds before a refresh the ledger refused is tried again.
REFRESH_RETRY_S = 5.0
PAUSE_KEY = "traffic_paused"


class BankRuntime:
    """Shared state and the glue between modems, bank and MQTT."""

    def __init__(self, config: Config, ledger: Ledger, board: StatusBoard, clock: Clock) -> None:
        self.config = config
        self.ledger = ledger
        self.board = board
        self.clock = clock
        self.tz = ZoneInfo(config.gateway.timezone)
        self.limits = {name: Limits.from_config(p) for name, p in config.policies.items()}
        self.detector = BlockDetector(config.detection)
        circuit_state = ledger.get_setting(CIRCUIT_KEY)
        det = config.detection
        self.circuit = (
            CircuitBreaker.from_state(
                circuit_state, blocks=det.circuit_blocks, window_s=det.circuit_window_s
            )
            if circuit_state
            else CircuitBreaker(det.circuit_blocks, det.circuit_window_s)
        )
        self.verdicts = VerdictLedger(ledger, board, self.circuit)
        pause = ledger.get_setting(PAUSE_KEY) or {}
        self.paused_reason: str | None = pause.get("reason") if pause.get("paused") else None
        self.dnc = DoNotCallList.load(
            config.compliance.do_not_call_file, ledger.hasher, config.compliance.default_region
        )
        self.supervisors: dict[str, ModemSupervisor] = {}
        self.inbox = InboxService(config, ledger, board, clock)
        self.deliveries = DeliveryReports(ledger, board, clock)
        #: Each SIM's last prepaid-balance check (:mod:`.balance` keeps it current).
        self.balances = ledger.balances()
        self.inventory = Inventory(ledger, clock)
        # The inventory's tables, under the names the commands (and tests) read.
        self.sims = self.inventory.sims
        self.slots = self.inventory.slots
        self.active_since = self.inventory.active_since
        self.active = self.inventory.active
        self.inventoried = self.inventory.inventoried
        self._background: set[asyncio.Task[None]] = set()
        #: Why requests are refused now (the daemon's storage watch): (cause, why, only
        #: those that book), or None while the ledger books.
        self.storage_refusal: Callable[[], tuple[str, str, bool] | None] = lambda: None
        self._wake = asyncio.Event()
        #: When each SIM's payload changes by the clock alone (``bank.sim_state.next_refresh``):
        #: a new day, a rest's end; the tick publishes it again then.
        self._refresh_at: dict[str, float] = {}
        for iccid, record in ledger.sim_states().items():
            self.sims[iccid] = SimInfo(iccid)
            if sticky(record.state) is not None and record.reason:
                with contextlib.suppress(ValueError):
                    self.detector.restore(iccid, record.state, record.reason)  # type: ignore[arg-type]

    def reconfigure(
        self, policies: Mapping[str, PolicyConfig], compliance: ComplianceConfig
    ) -> None:
        """New policies and compliance settings (SIGHUP); every SIM's policy is chosen again."""
        self.config = self.config.model_copy(
            update={"policies": dict(policies), "compliance": compliance}
        )
        self.limits = {name: Limits.from_config(p) for name, p in policies.items()}
        self.inbox.config = self.config  # show_sms_sender applies from now on
        if compliance.do_not_call_file != self.dnc.path:
            try:
                self.dnc = DoNotCallList.load(
                    compliance.do_not_call_file, self.ledger.hasher, compliance.default_region
                )
            except ConfigError as exc:
                log.warning("dnc_not_loaded_keeping_old", error=str(exc))
        for iccid, info in self.sims.items():
            info.policy = select_policy(self.config.policies, iccid, info.imsi)
            self.publish_sim(iccid)

    # -- traffic switch ----------------------------------------------------------------------
    @property
    def traffic_stopped(self) -> bool:
        return self.circuit.is_open or self.paused_reason is not None

    def set_paused(self, reason: str | None) -> None:
        self.paused_reason = reason
        self.ledger.put_setting(
            PAUSE_KEY, {"paused": reason is not None, "reason": reason}, self.clock.now()
        )

    def close_circuit(self) -> None:
        self.circuit.close()
        self.verdicts.save_circuit(self.clock.now())

    # -- usage and publishing ----------------------------------------------------------------
    def usage_of(self, iccid: str, now: float | None = None) -> tuple[Usage, Limits]:
        now = self.clock.now() if now is None else now
        limits = self.limits_of(iccid)
        since = history_start(
            now,
            self.tz,
            rest_after_calls=limits.rest_after_calls,
            rest_s=limits.rest_s,
            max_call_s=self.config.compliance.max_call_duration_s,
            billing_day=limits.counted_billing_day,
        )
        records = self.ledger.usage_records(iccid, since)
        usage = summarise(
            records, now, self.tz, rest_s=limits.rest_s, billing_day=limits.counted_billing_day
        )
        balance = self.balances.get(iccid)
        if balance is not None and balance.low and limits.balance_floor is not None:
            usage = replace(usage, balance_low=True)
        return usage, limits

    def policy_of(self, iccid: str) -> PolicyConfig:
        """The configured policy of ``iccid`` (``default`` for a SIM not seen yet)."""
        info = self.sims.get(iccid)
        policies = self.config.policies
        return policies.get(info.policy if info else "default", policies["default"])

    def limits_of(self, iccid: str) -> Limits:
        info = self.sims.get(iccid)
        return self.limits[info.policy if info else "default"]

    def resting(self, usage: Usage, limits: Limits) -> bool:
        """Whether the SIM's own quota stops it calling now (``bank.sim_state.is_resting``)."""
        return is_resting(limits, usage, self.clock.now(), self.tz)

    def sim_state(self, iccid: str) -> SimStateName:
        """The state the contract shows (before any rest): see ``bank.sim_state``."""
        record = self.verdicts.records().get(iccid)
        info = self.sims.get(iccid)
        sup = self.supervisors.get(info.modem) if info is not None and info.modem else None
        serving = sup is not None and sup.iccid == iccid and sup.ready
        reg = sup.registration if sup is not None else None
        return contract_state(
            record.state if record is not None else None,
            placed=info is not None and info.modem is not None,
            serving=serving,
            registered=reg is not None and reg.registered,
            status=info.status if info is not None else None,
        )

    @survives_storage
    def publish_sim(self, iccid: str) -> None:
        info = self.sims.setdefault(iccid, SimInfo(iccid))
        now = self.clock.now()
        usage, limits = self.usage_of(iccid, now)
        why = rest_reason(limits, usage, now, self.tz)
        self._refresh_at[iccid] = next_refresh(limits, usage, now, self.tz)
        state = shown_state(self.sim_state(iccid), resting=why is not None)
        record = self.verdicts.records().get(iccid)
        block = None
        if record is not None and shows_block(record):
            window = self.ledger.audit_trail(iccid, since=record.since - EVIDENCE_BEFORE_S)
            since = episode_start(record, window)
            block = block_info(record, self.ledger.evidence(iccid, since=since))
        self.board.update_sim(
            iccid,
            modem=info.modem,
            slot=info.slot,
            state=state,
            policy=info.policy,
            usage=usage_payload(usage),
            limits=limits_payload(limits),
            block=block,
            warnings=sorted(info.warnings),
            reason=why if state == "resting" else None,
            sms_unread=self.inbox.unread.get(iccid, 0),
            balance=balance_info(self.balances.get(iccid), limits.balance_floor),
        )

    # -- views for the planner -------------------------------------------------------------
    def modem_view(self, modem_id: str, now: float) -> ModemView:
        sup = self.supervisors[modem_id]
        states = self.verdicts.records()
        views = []
        for slot in range(1, sup.usable_slots + 1):
            iccid = self.slots.get((modem_id, slot))
            if iccid is None:
                views.append(SlotView(slot, None, "absent"))
                continue
            usage, limits = self.usage_of(iccid, now)
            record = states.get(iccid)
            info = self.sims.get(iccid)
            state = plan_state(
                record.state if record is not None else None,
                info.status if info is not None else None,
            )
            views.append(SlotView(slot, iccid, state, usage, limits))
        return ModemView(modem_id, views, sup.active_slot, self.active_since.get(modem_id))

    # -- ModemObserver -------------------------------------------------------------------------
    @survives_storage
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
    ) -> None:
        now = self.clock.now()
        seating = self.inventory.seat(modem_id, slot, iccid, now)
        if seating.switched_away is not None:
            self.detector.on_switched_away(seating.switched_away, now)
            self.publish_sim(seating.switched_away)
        if seating.evicted is not None:
            self.publish_sim(seating.evicted)
        sup = self.supervisors.get(modem_id)
        if sup is not None and self.inventory.tour_due(sup):
            self._spawn(self.inventory.tour(sup, self.config.rotation), f"inventory-{modem_id}")
        if iccid is None:
            return
        info = self.inventory.place(modem_id, slot, iccid, status, now)
        info.warnings.update(warnings)
        if imsi:
            info.imsi = imsi
        info.policy = select_policy(self.config.policies, iccid, info.imsi)
        self.apply(self.detector.on_sim_status(iccid, now, status=str(status), cme_code=cme_code))
        self.publish_sim(iccid)
        self._wake.set()

    @survives_storage
    def registration_seen(
        self,
        modem_id: str,
        iccid: str | None,
        reg: Registration,
        rssi_dbm: int | None,
        operator: str | None,
    ) -> None:
        if iccid is None:
            return
        info = self.sims.get(iccid)
        sup = self.supervisors.get(modem_id)
        mnc_length = sup.mnc_length if sup is not None else None
        # MCC + MNC of the right length (EF_AD, else the MCC table): not imsi[:5].
        home = home_network(info.imsi, mnc_length) if info is not None and info.imsi else operator
        verdicts = self.detector.on_registration(
            iccid,
            self.clock.now(),
            domain=str(reg.domain),
            stat=int(reg.stat),
            reject_cause=reg.reject_cause,
            rssi_dbm=rssi_dbm,
            operator=home,
            raw=reg.raw or None,
            cause_type=reg.cause_type,
        )
        self.apply(verdicts)
        record = self.verdicts.records().get(iccid)
        if record is not None and recovered(
            record.state, record.reason, self.detector.state_of(iccid)
        ):
            # The suspect registered after all: the detector has dropped it, so do we.
            now = self.clock.now()
            self.ledger.set_sim_state(iccid, "available", now, reason="recovered")
            # The end of that episode: a later block shows only its own evidence.
            self.ledger.audit(now, "detector", "sim_recovered", {"iccid": iccid})
            log.info("sim_recovered", iccid=iccid)
        self.publish_sim(iccid)

    @survives_storage
    def sim_unknown(self, modem_id: str, last: str | None) -> None:
        """The card in ``modem_id`` may have changed (a switch, a reset, a SIM URC): until it is
        read back nothing is attributed to ``last``; its running episodes stop here."""
        was = self.inventory.unseat(modem_id)
        if was is not None:
            self.detector.on_switched_away(was, self.clock.now())
            self.publish_sim(was)

    @survives_storage
    def reject_cause_seen(
        self, modem_id: str, iccid: str, cause: int, *, source: str, raw: str | None
    ) -> None:
        """A reject cause read on its own (``AT+CEER`` after a denial without one)."""
        self.apply(
            self.detector.on_reject_cause(
                iccid, self.clock.now(), cause=cause, source=source, raw=raw
            )
        )
        self.publish_sim(iccid)

    async def sms_received(
        self, modem_id: str, iccid: str | None, index: int, message: SmsMessage
    ) -> None:
        """Keep what the modem read (durably, before it is deleted there); a whole message is
        announced and read for the operator's suspension notices."""
        self._received(self.inbox.receive(modem_id, iccid, index, message))
        if iccid is not None:
            self.publish_sim(iccid)  # the unread count (also of a group closed early)

    def _received(self, sms: InboundSms | None) -> None:
        if sms is None or sms.iccid.startswith("unknown:"):
            return
        now = self.clock.now()
        self.apply(self.detector.on_operator_text(sms.iccid, now, text=sms.text, source="sms"))
        self.publish_sim(sms.iccid)

    @survives_storage
    def delivery_report(self, modem_id: str, report: DeliveryReport) -> None:
        """A status report read from ``modem_id``: matched to its send (:mod:`.delivery`)."""
        sup = self.supervisors.get(modem_id)
        self.deliveries.report(modem_id, report, sup.iccid if sup is not None else None)

    @survives_storage
    def modem_lost(self, modem_id: str, iccid: str | None) -> None:
        self.inventoried.discard(modem_id)
        if iccid is None:
            return
        self.detector.on_switched_away(iccid, self.clock.now())
        info = self.sims.get(iccid)
        if info is not None:
            self.publish_sim(iccid)

    # -- verdicts ------------------------------------------------------------------------------
    def apply(self, verdicts: list[Verdict]) -> None:
        """Store each verdict with its evidence, publish it, count blocks, start re-attaches."""
        for verdict in verdicts:
            iccid = verdict.iccid
            info = self.sims.get(iccid)
            self.verdicts.record(verdict, info.modem if info else None, self.clock.now())
            if verdict.action == "reattach" and info is not None and info.modem:
                self._spawn(self._reattach(info.modem, iccid), f"reattach-{iccid}")
            self.publish_sim(iccid)

    async def _reattach(self, modem_id: str, iccid: str) -> None:
        sup = self.supervisors.get(modem_id)
        if sup is None:
            return
        async with sup.lock:
            if sup.iccid != iccid or not sup.ready:
                return
            log.info("sim_reattaching", iccid=iccid)
            try:
                await sup.reattach()
            except Exception as exc:  # noqa: BLE001 - any failure is evidence, not a crash
                log.warning("reattach_failed", iccid=iccid, error=str(exc))
            self.detector.on_reattached(iccid, self.clock.now())

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _tick(self) -> None:
        self.apply(self.detector.tick(self.clock.now()))
        if self.verdicts.unsaved and self.ledger.refusing is None:
            for iccid in self.verdicts.retry():
                self.publish_sim(iccid)
        for sms in self.inbox.expire():
            self._received(sms)
        self._refresh_sims(self.clock.now())

    def _refresh_sims(self, now: float) -> None:
        """Publish again the SIMs whose payload the clock changed (a new day, a rest over): at
        most :data:`REFRESH_PER_TICK` a tick, the most overdue first, so a whole bank's
        midnight is spread over a few seconds. A refresh time further ahead than the longest
        wait means the clock was stepped back: that SIM is looked at now."""
        due = sorted(
            (at, iccid)
            for iccid, at in self._refresh_at.items()
            if at <= now or at > now + REFRESH_MAX_S
        )
        for _, iccid in due[:REFRESH_PER_TICK]:
            # If the ledger cannot be read now, try again a little later (not every tick).
            self._refresh_at[iccid] = now + REFRESH_RETRY_S
            self.publish_sim(iccid)

    async def run(self) -> None:
        """Detector timers once a second; background tasks are cancelled on the way out."""
        try:
            while True:
                try:
                    self._tick()
                except StorageUnavailable as exc:  # the storage watch has it: degraded
                    log.debug("tick_storage_unavailable", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK_S):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
