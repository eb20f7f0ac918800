"""The bank at run time: the pure rules of ``simbank.bank`` wired to the modems, the ledger and MQTT.

It hears every modem (``ModemObserver``), feeds the block detector, applies its verdicts
(ledger first, then MQTT), keeps the SIM inventory (which ICCID sits in which slot), and
publishes each SIM's retained state with live usage and limits. Command handlers
(``handlers.py``) act through it. Pure decisions stay in ``simbank.bank``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from simbank.bank.circuit import CircuitBreaker
from simbank.bank.detector import BlockDetector
from simbank.bank.evidence import Verdict
from simbank.bank.policy import Limits, check_call, select_policy
from simbank.bank.rotation import ModemView, SlotView
from simbank.bank.usage import Usage, history_start, summarise
from simbank.config.models import ComplianceConfig, Config, PolicyConfig
from simbank.contract import BlockInfo
from simbank.contract import Usage as UsagePayload
from simbank.daemon.board import StatusBoard
from simbank.daemon.redact import redact_text
from simbank.daemon.supervisor import ModemSupervisor
from simbank.drivers.parse.plmn import home_network
from simbank.drivers.types import Registration, SimStatus
from simbank.errors import ConfigError
from simbank.store.dnc import DoNotCallList
from simbank.store.ledger import Ledger

log = structlog.get_logger(__name__)

TICK_S = 1.0
#: An inventory visit waits at most this long for a SIM: an empty slot must not stall it.
INVENTORY_SIM_S = 10.0
#: Ledger states an operator or the detector set; they override what the modem shows.
STICKY_STATES = frozenset({"blocked", "suspected", "locked", "disabled"})
CIRCUIT_KEY = "circuit"
PAUSE_KEY = "traffic_paused"


@dataclass(slots=True)
class SimInfo:
    """What the gateway knows of one SIM card."""

    iccid: str
    imsi: str | None = None
    modem: str | None = None
    slot: int | None = None
    policy: str = "default"
    status: SimStatus | None = None
    warnings: set[str] = field(default_factory=set)


def limits_payload(limits: Limits) -> dict[str, Any]:
    """A policy's limits as the ``sim/<iccid>`` payload shows them."""
    return {
        "calls_per_hour": limits.calls_per_hour,
        "calls_per_day": limits.calls_per_day,
        "call_seconds_per_day": limits.call_seconds_per_day,
        "sms_per_day": limits.sms_per_day,
        "min_call_gap_s": limits.min_call_gap_s,
        "calls_per_destination_per_day": limits.calls_per_destination_per_day,
        "rest_after_calls": limits.rest_after_calls,
        "rest_s": limits.rest_s,
        "quiet_hours": [
            f"{w.start_min // 60:02d}:{w.start_min % 60:02d}-{w.end_min // 60:02d}:{w.end_min % 60:02d}"
            for w in limits.quiet_hours
        ],
    }


def _iso(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class BankRuntime:
    """Shared state and the glue between modems, bank and MQTT."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        board: StatusBoard,
        clock: Callable[[], float] = time.time,
        time_scale: float = 1.0,
    ) -> None:
        self.config = config
        self.time_scale = time_scale
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
        pause = ledger.get_setting(PAUSE_KEY) or {}
        self.paused_reason: str | None = pause.get("reason") if pause.get("paused") else None
        self.dnc = DoNotCallList.load(
            config.compliance.do_not_call_file, ledger.hasher, config.compliance.default_region
        )
        self.supervisors: dict[str, ModemSupervisor] = {}
        self.sims: dict[str, SimInfo] = {}
        self.slots: dict[tuple[str, int], str | None] = {}
        self.active_since: dict[str, float] = {}
        self.active: dict[str, str | None] = {}
        self.inventoried: set[str] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        for iccid, record in ledger.sim_states().items():
            self.sims[iccid] = SimInfo(iccid)
            if record.state in STICKY_STATES and record.reason:
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
            PAUSE_KEY, {"paused": reason is not None, "reason": reason}, self.clock()
        )

    def close_circuit(self) -> None:
        self.circuit.close()
        self.ledger.put_setting(CIRCUIT_KEY, self.circuit.to_state(), self.clock())

    # -- usage and publishing ----------------------------------------------------------------
    def usage_of(self, iccid: str, now: float | None = None) -> tuple[Usage, Limits]:
        now = self.clock() if now is None else now
        limits = self.limits_of(iccid)
        since = history_start(
            now,
            self.tz,
            rest_after_calls=limits.rest_after_calls,
            rest_s=limits.rest_s,
            max_call_s=self.config.compliance.max_call_duration_s,
        )
        records = self.ledger.usage_records(iccid, since)
        return summarise(records, now, self.tz, rest_s=limits.rest_s), limits

    def limits_of(self, iccid: str) -> Limits:
        info = self.sims.get(iccid)
        return self.limits[info.policy if info else "default"]

    def sim_state(self, iccid: str) -> str:
        """The state the contract shows: sticky ledger states first, then what modems show."""
        record = self.ledger.sim_states().get(iccid)
        if record is not None and record.state in STICKY_STATES:
            return record.state
        info = self.sims.get(iccid)
        if info is None or info.modem is None:
            return "absent"
        sup = self.supervisors.get(info.modem)
        if sup is not None and sup.iccid == iccid and sup.ready:
            reg = sup.registration
            return "active" if reg is not None and reg.registered else "available"
        return "available"

    def publish_sim(self, iccid: str) -> None:
        info = self.sims.setdefault(iccid, SimInfo(iccid))
        usage, limits = self.usage_of(iccid)
        state = self.sim_state(iccid)
        if state in {"available", "active"} and self.resting(usage, limits):
            state = "resting"
        block = None
        record = self.ledger.sim_states().get(iccid)
        if record is not None and record.state in {"blocked", "suspected", "locked"}:
            evidence = [
                {"at": _iso(e.at).isoformat(), "kind": e.kind, **e.detail}
                for e in self.ledger.evidence(iccid, since=record.since - 86400)
            ][-20:]
            block = BlockInfo(
                reason=record.reason or record.state, since=_iso(record.since), evidence=evidence
            )
        self.board.update_sim(
            iccid,
            modem=info.modem,
            slot=info.slot,
            state=state,
            policy=info.policy,
            usage=UsagePayload(
                calls_hour=usage.calls_hour,
                calls_day=usage.calls_day,
                call_seconds_day=usage.call_seconds_day,
                sms_day=usage.sms_day,
            ),
            limits=limits_payload(limits),
            block=block,
            warnings=sorted(info.warnings),
        )

    def resting(self, usage: Usage, limits: Limits) -> bool:
        """Whether the SIM's own quota stops it calling now (a one-second call, any number)."""
        refusal = check_call(
            limits,
            usage,
            self.clock(),
            self.tz,
            max_duration_s=1,
            destination_calls_today=0,
            on_dnc=False,
            circuit_open=False,
        )
        return refusal is not None and refusal.code == "quota_exhausted"

    # -- views for the planner -------------------------------------------------------------
    def modem_view(self, modem_id: str, now: float) -> ModemView:
        sup = self.supervisors[modem_id]
        views = []
        for slot in range(1, sup.usable_slots + 1):
            iccid = self.slots.get((modem_id, slot))
            if iccid is None:
                views.append(SlotView(slot, None, "absent"))
                continue
            usage, limits = self.usage_of(iccid, now)
            views.append(SlotView(slot, iccid, self._plan_state(iccid), usage, limits))
        return ModemView(modem_id, views, sup.active_slot, self.active_since.get(modem_id))

    def _plan_state(self, iccid: str) -> str:
        record = self.ledger.sim_states().get(iccid)
        if record is not None and record.state in STICKY_STATES:
            return record.state
        info = self.sims.get(iccid)
        if info is not None and info.status not in (None, SimStatus.READY):
            return "locked" if info.status in {SimStatus.PIN, SimStatus.PUK} else "absent"
        return "available"

    # -- ModemObserver -------------------------------------------------------------------------
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
        now = self.clock()
        was_active = self.active.get(modem_id)
        if was_active and was_active != iccid:
            self.detector.on_switched_away(was_active, now)
            self.publish_sim(was_active)
        self.active[modem_id] = iccid
        previous = self.slots.get((modem_id, slot))
        if previous and previous != iccid:
            log.warning("slot_content_changed", slot=slot, was=previous, now_iccid=iccid)
            self.sims[previous].modem = None
            self.sims[previous].slot = None
            self.publish_sim(previous)
        self.slots[(modem_id, slot)] = iccid
        self.active_since[modem_id] = now
        self._inventory_once(modem_id)
        if iccid is None:
            return
        info = self.sims.setdefault(iccid, SimInfo(iccid))
        if info.modem not in (None, modem_id) or info.slot not in (None, slot):
            self.ledger.audit(
                now,
                "daemon",
                "sim_moved",
                {"iccid": iccid, "from": [info.modem, info.slot], "to": [modem_id, slot]},
            )
        info.modem, info.slot, info.status = modem_id, slot, status
        info.warnings.update(warnings)
        if imsi:
            info.imsi = imsi
        info.policy = select_policy(self.config.policies, iccid, info.imsi)
        self.apply(self.detector.on_sim_status(iccid, now, status=str(status), cme_code=cme_code))
        self.publish_sim(iccid)
        self._wake.set()

    def _inventory_once(self, modem_id: str) -> None:
        """Visit a multi-slot modem's other slots once it first reports a slot's content (also
        an empty or unreadable one: the other slots may hold good cards)."""
        sup = self.supervisors.get(modem_id)
        if sup is not None and sup.usable_slots > 1 and modem_id not in self.inventoried:
            self.inventoried.add(modem_id)
            self._spawn(self._inventory(sup), f"inventory-{modem_id}")

    async def _inventory(self, sup: ModemSupervisor) -> None:
        """Visit every other slot once to learn which SIM sits there, then come back."""
        rot = self.config.rotation
        async with sup.lock:
            home = sup.active_slot
            if home is None or not sup.ready:
                self.inventoried.discard(sup.cfg.id)
                return
            try:
                for slot in range(1, sup.usable_slots + 1):
                    if slot != home:
                        await sup.switch_to(
                            slot,
                            sim_ready_timeout_s=min(rot.sim_ready_timeout_s, INVENTORY_SIM_S),
                            registration_timeout_s=0.0,
                        )
                await sup.switch_to(
                    home,
                    sim_ready_timeout_s=rot.sim_ready_timeout_s,
                    registration_timeout_s=rot.registration_timeout_s,
                )
            except Exception as exc:  # noqa: BLE001 - the next session tries again
                log.warning("inventory_failed", modem=sup.cfg.id, error=str(exc))
                self.inventoried.discard(sup.cfg.id)
                return
        found = {
            slot: self.slots.get((sup.cfg.id, slot)) for slot in range(1, sup.usable_slots + 1)
        }
        self.ledger.audit(
            self.clock(), "daemon", "inventory", {"modem": sup.cfg.id, "slots": found}
        )
        log.info("inventory_done", modem=sup.cfg.id, slots=found)

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
            self.clock(),
            domain=str(reg.domain),
            stat=int(reg.stat),
            reject_cause=reg.reject_cause,
            rssi_dbm=rssi_dbm,
            operator=home,
            raw=reg.raw or None,
            cause_type=reg.cause_type,
        )
        self.apply(verdicts)
        record = self.ledger.sim_states().get(iccid)
        if (
            record is not None
            and record.state == "suspected"
            and record.reason == "stuck_searching"
            and self.detector.state_of(iccid) is None
        ):
            # The suspect registered after all: the detector has dropped it, so do we.
            self.ledger.set_sim_state(iccid, "available", self.clock(), reason="recovered")
            log.info("sim_recovered", iccid=iccid)
        self.publish_sim(iccid)

    def sim_unknown(self, modem_id: str, last: str | None) -> None:
        """The card in ``modem_id`` may have changed (a switch, a reset, a SIM URC): until it is
        read back nothing is attributed to ``last``; its running episodes stop here."""
        was = self.active.get(modem_id)
        self.active[modem_id] = None
        if was is not None:
            self.detector.on_switched_away(was, self.clock())
            self.publish_sim(was)

    def reject_cause_seen(
        self, modem_id: str, iccid: str, cause: int, *, source: str, raw: str | None
    ) -> None:
        """A reject cause read on its own (``AT+CEER`` after a denial without one)."""
        self.apply(
            self.detector.on_reject_cause(iccid, self.clock(), cause=cause, source=source, raw=raw)
        )
        self.publish_sim(iccid)

    async def sms_received(
        self,
        modem_id: str,
        iccid: str | None,
        index: int,
        sender: str | None,
        text: str,
        *,
        sent_at: str | None = None,
    ) -> None:
        now = self.clock()
        owner = iccid or f"unknown:{modem_id}"
        sms_id = self.ledger.store_inbound_sms(
            owner, now, sender or "", text, index, sent_at=sent_at
        )
        if sms_id is None:
            # Read again (a crash came between storing and deleting it): already kept, and
            # its event already published.
            log.info("sms_already_stored", modem=modem_id, index=index)
            return
        shown = sender if self.config.compliance.show_sms_sender else redact_text(sender or "")
        self.board.event(
            "sms_received", modem=modem_id, iccid=iccid, id=sms_id, sender=shown, text=text
        )
        if iccid:
            self.apply(self.detector.on_operator_text(iccid, now, text=text, source="sms"))

    def modem_lost(self, modem_id: str, iccid: str | None) -> None:
        self.inventoried.discard(modem_id)
        if iccid is None:
            return
        self.detector.on_switched_away(iccid, self.clock())
        info = self.sims.get(iccid)
        if info is not None:
            self.publish_sim(iccid)

    # -- verdicts ------------------------------------------------------------------------------
    def apply(self, verdicts: list[Verdict]) -> None:
        """Store each verdict with its evidence, publish it, count blocks, start re-attaches."""
        for verdict in verdicts:
            now = self.clock()
            iccid = verdict.iccid
            self.ledger.record_verdict(
                iccid,
                verdict.state,
                verdict.since,
                verdict.reason,
                [(obs.at, obs.kind, dict(obs.detail)) for obs in verdict.evidence],
            )
            info = self.sims.get(iccid)
            self.board.event(
                f"sim_{verdict.state}",
                iccid=iccid,
                modem=info.modem if info else None,
                reason=verdict.reason,
                evidence=[o.as_dict() for o in verdict.evidence][-10:],
            )
            log.warning("sim_verdict", iccid=iccid, state=verdict.state, reason=verdict.reason)
            if verdict.state == "blocked":
                opened = self.circuit.record_block(iccid, now)
                self.ledger.put_setting(CIRCUIT_KEY, self.circuit.to_state(), now)
                if opened:
                    self.board.event(
                        "circuit_opened",
                        reason="blocks",
                        blocks=self.circuit.blocks_in_window(now),
                        window_s=self.circuit.window_s,
                    )
                    self.ledger.audit(now, "daemon", "circuit_opened", self.circuit.to_state())
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
            self.detector.on_reattached(iccid, self.clock())

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def run(self) -> None:
        """Detector timers once a second; background tasks are cancelled on the way out."""
        try:
            while True:
                self.apply(self.detector.tick(self.clock()))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TICK_S):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
