"""The simulated bank: modems on PTYs, their SIMs, the carrier, one clock."""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog

from simbank.simulator.carrier import Carrier
from simbank.simulator.clock import SimClock
from simbank.simulator.dialects import dialect
from simbank.simulator.modem import SimulatedModem
from simbank.simulator.scenario import Scenario, make_imei
from simbank.simulator.sim import SimCard

log = structlog.get_logger("simbank.simulator")


class SimulatedBank:
    """``async with SimulatedBank(scenario, directory=tmp) as bank:`` runs every modem."""

    def __init__(self, scenario: Scenario, directory: Path | str | None = None) -> None:
        chosen = directory if directory is not None else scenario.directory
        if chosen is None:
            raise ValueError("no directory for the modem symlinks (scenario or argument)")
        self.scenario = scenario
        self.directory = Path(chosen)
        self.clock = SimClock(scenario.time_scale)
        self.carrier = Carrier(
            {name: limits.to_limits() for name, limits in scenario.carrier.items()},
            self.clock.now,
            self._on_carrier_change,
        )
        self.sims: dict[str, SimCard] = {}
        self.modems: dict[str, SimulatedModem] = {}
        for number, spec in enumerate(scenario.modems, start=1):
            slots: list[SimCard | None] = []
            for slot in spec.slots:
                if slot.iccid is None:
                    slots.append(None)
                    continue
                card = SimCard(
                    iccid=slot.iccid,
                    imsi=slot.resolved_imsi(),
                    mnc_length=slot.mnc_length,
                    behaviour=slot.behaviour,
                    operator=slot.operator,
                    pin=slot.pin,
                    puk=slot.puk,
                    reject_cause=slot.reject_cause,
                    registration_delay_s=slot.registration_delay_s,
                    ussd_reply=slot.ussd_reply,
                )
                card.listener = self._on_sim_changed
                self.sims[card.iccid] = card
                slots.append(card)
            self.modems[spec.id] = SimulatedModem(
                spec.id,
                dialect(spec.dialect),
                slots,
                directory=self.directory,
                clock=self.clock,
                carrier=self.carrier,
                timing=scenario.timing,
                imei=spec.imei or make_imei(number),
                signal=spec.signal,
                active_slot=spec.active_slot,
                seed=scenario.seed,
            )
        self._started = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Create every PTY and symlink and power the modems on."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for modem in self.modems.values():
            modem.start()
        self._started = True
        log.info("simulator_started", modems=len(self.modems), directory=str(self.directory))

    async def close(self) -> None:
        """Unplug every modem, remove the symlinks, end every task."""
        for modem in self.modems.values():
            await modem.close()
        self._started = False

    # -- lookups -----------------------------------------------------------------------------
    def sim(self, iccid: str) -> SimCard:
        """The SIM with this ICCID (``KeyError`` if unknown)."""
        return self.sims[iccid]

    def holder(self, iccid: str) -> tuple[SimulatedModem, int] | None:
        """The modem and slot holding this SIM, if any."""
        for modem in self.modems.values():
            for index, card in enumerate(modem.slots, start=1):
                if card is not None and card.iccid == iccid:
                    return modem, index
        return None

    def _active_holder(self, iccid: str) -> SimulatedModem | None:
        found = self.holder(iccid)
        if found is None:
            return None
        modem, slot = found
        return modem if modem.active_slot == slot and modem.plugged else None

    # -- operator side ---------------------------------------------------------------------
    def send_sms(self, iccid: str, sender: str, text: str) -> int:
        """Deliver an inbound SMS to a SIM; returns its storage index."""
        card = self.sims[iccid]
        scts = time.strftime("%y/%m/%d,%H:%M:%S+00", time.gmtime())
        index = card.store_sms(sender, text, scts)
        modem = self._active_holder(iccid)
        if modem is not None:
            modem.sms_arrived(index, sender, text, scts)
        return index

    def set_ussd_reply(self, iccid: str, text: str) -> None:
        """What the network answers to this SIM's next USSD request."""
        self.sims[iccid].ussd_reply = text

    def move_sim(self, iccid: str, modem_id: str, slot: int) -> None:
        """Physically move a SIM into an empty slot (a carrier block follows the ICCID)."""
        target = self.modems[modem_id]
        if target.slots[slot - 1] is not None:
            raise ValueError(f"{modem_id} slot {slot} is not empty")
        found = self.holder(iccid)
        card = self.sims[iccid]
        if found is not None:
            source, old_slot = found
            source.slots[old_slot - 1] = None
            if source.active_slot == old_slot:
                source.refresh_registration()
        target.slots[slot - 1] = card
        if target.active_slot == slot:
            target.sim_unlocked()

    # -- change notifications --------------------------------------------------------------
    def _on_sim_changed(self, card: SimCard) -> None:
        modem = self._active_holder(card.iccid)
        if modem is not None:
            modem.sim_changed()

    def _on_carrier_change(self, iccid: str) -> None:
        block = self.carrier.block_of(iccid)
        if block is not None:
            log.info("carrier_blocked", iccid=iccid, reason=block.reason, action=block.action)
        else:
            log.info("carrier_released", iccid=iccid)
        modem = self._active_holder(iccid)
        if modem is not None:
            modem.refresh_registration_soon(1.0)
