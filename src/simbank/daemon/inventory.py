"""The SIM inventory: which ICCID sits in which modem slot, which SIM each modem is using now,
and the one-time tour of a multi-slot modem's other slots to learn what they hold.

Part of the :class:`~simbank.daemon.runtime.BankRuntime`; it decides nothing about a SIM's
state (that is :mod:`simbank.bank.sim_state`) and feeds no detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from simbank.clock import Clock
from simbank.config.models import RotationConfig
from simbank.daemon.modem.supervisor import ModemSupervisor
from simbank.drivers.types import SimStatus
from simbank.store.ledger import Ledger

log = structlog.get_logger(__name__)

#: An inventory visit waits at most this long for a SIM: an empty slot must not stall it.
INVENTORY_SIM_S = 10.0


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


@dataclass(frozen=True, slots=True)
class Seating:
    """What changed when a modem read back the card of one of its slots."""

    #: The SIM the modem was using before, if another: its running episodes stop.
    switched_away: str | None
    #: The SIM the slot held before, if another: it is in no slot any more.
    evicted: str | None


class Inventory:
    """SIMs by ICCID, slot contents, the SIM each modem uses, and which modems were toured."""

    def __init__(self, ledger: Ledger, clock: Clock) -> None:
        self.ledger = ledger
        self.clock = clock
        self.sims: dict[str, SimInfo] = {}
        self.slots: dict[tuple[str, int], str | None] = {}
        self.active_since: dict[str, float] = {}
        self.active: dict[str, str | None] = {}
        self.inventoried: set[str] = set()

    def seat(self, modem_id: str, slot: int, iccid: str | None, now: float) -> Seating:
        """``modem_id`` now uses ``slot``, which holds ``iccid`` (None: empty or unreadable)."""
        was_active = self.active.get(modem_id)
        switched_away = was_active if was_active and was_active != iccid else None
        self.active[modem_id] = iccid
        previous = self.slots.get((modem_id, slot))
        evicted = None
        if previous and previous != iccid:
            log.warning("slot_content_changed", slot=slot, was=previous, now_iccid=iccid)
            self.sims[previous].modem = None
            self.sims[previous].slot = None
            evicted = previous
        self.slots[(modem_id, slot)] = iccid
        self.active_since[modem_id] = now
        return Seating(switched_away, evicted)

    def place(self, modem_id: str, slot: int, iccid: str, status: SimStatus, now: float) -> SimInfo:
        """Record where ``iccid`` sits (auditing a move from another slot)."""
        info = self.sims.setdefault(iccid, SimInfo(iccid))
        if info.modem not in (None, modem_id) or info.slot not in (None, slot):
            self.ledger.audit(
                now,
                "daemon",
                "sim_moved",
                {"iccid": iccid, "from": [info.modem, info.slot], "to": [modem_id, slot]},
            )
        info.modem, info.slot, info.status = modem_id, slot, status
        return info

    def unseat(self, modem_id: str) -> str | None:
        """The card in ``modem_id`` is unknown until read back; returns the SIM it was using."""
        was = self.active.get(modem_id)
        self.active[modem_id] = None
        return was

    def tour_due(self, sup: ModemSupervisor) -> bool:
        """Whether a multi-slot modem's other slots are still to be visited (marks it visited:
        one tour per session, started once the modem first reports a slot's content, also
        an empty or unreadable one, since the other slots may hold good cards)."""
        if sup.usable_slots <= 1 or sup.cfg.id in self.inventoried:
            return False
        self.inventoried.add(sup.cfg.id)
        return True

    async def tour(self, sup: ModemSupervisor, rot: RotationConfig) -> None:
        """Visit every other slot once to learn which SIM sits there, then come back."""
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
            self.clock.now(), "daemon", "inventory", {"modem": sup.cfg.id, "slots": found}
        )
        log.info("inventory_done", modem=sup.cfg.id, slots=found)
