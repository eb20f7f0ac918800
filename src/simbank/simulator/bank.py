"""The simulated bank: modems on PTYs, their SIMs, the carrier, one clock."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog

from simbank.simulator.carrier import Carrier
from simbank.simulator.clock import SimClock
from simbank.simulator.deliver_pdu import deliver_parts, text_timestamp
from simbank.simulator.dialects import dialect
from simbank.simulator.modem import SimulatedModem
from simbank.simulator.reports import now_utc
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
        ussd_service = scenario.ussd.to_service()
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
                    balance=slot.balance,
                    currency=slot.currency,
                    balance_text=slot.balance_text,
                    valid_till=slot.valid_till,
                    ussd_service=ussd_service,
                    call_cost=scenario.call_cost,
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
                ports=spec.ports,
                urc_port=spec.urc_port,
            )
        self._started = False
        self._concat_reference = 0  # the last reference a concatenated inbound message used

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

    def aux_port(self, modem_id: str) -> Path:
        """The stable path of a modem's second AT port (``<directory>/<id>.at2``), where a PBX
        dials; ``KeyError`` for an unknown modem, ``ValueError`` for a one-port modem."""
        link = self.modems[modem_id].aux_link
        if link is None:
            raise ValueError(f"{modem_id} has one AT port (scenario: ports = 2)")
        return link

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
        """Deliver an inbound SMS to a SIM as the network does (``deliver_pdu``: GSM-7 or
        UCS-2, concatenated parts when too long for one); returns the first part's index."""
        return self.deliver_sms_parts(iccid, sender, text)[0]

    def deliver_sms_parts(
        self,
        iccid: str,
        sender: str,
        text: str,
        *,
        sequences: Sequence[int] | None = None,
        reference: int | None = None,
        ref16: bool = False,
    ) -> list[int]:
        """Deliver the parts ``sequences`` (1-based; None: all) of ``text`` split as the network
        splits it; the storage index of each, in order. Each part is stored (with its
        SMS-DELIVER PDU) and announced on its own (``+CMTI: "SM",<index>``). ``reference``
        (None: the bank's next) ties the parts of one message, so a test can deliver parts 1-2
        now and part 3 later with the same ``reference``; ``ref16`` uses a 16-bit reference
        (IE 08) instead of an 8-bit one (IE 00)."""
        card = self.sims[iccid]
        when = now_utc()
        if reference is None:
            self._concat_reference += 1
            reference = self._concat_reference
        parts = deliver_parts(sender, text, when, reference=reference, ref16=ref16)
        wanted = range(1, len(parts) + 1) if sequences is None else sequences
        if any(not 1 <= sequence <= len(parts) for sequence in wanted):
            raise ValueError(f"the message has parts 1-{len(parts)}")
        scts = text_timestamp(when)
        modem = self._active_holder(iccid)
        indexes: list[int] = []
        for sequence in wanted:
            part = parts[sequence - 1]
            index = card.store_sms(
                sender, part.text, scts, pdu=part.pdu, tpdu_length=part.tpdu_length
            )
            indexes.append(index)
            if modem is not None:
                modem.sms_arrived(
                    index, sender, part.text, scts, pdu=part.pdu, tpdu_length=part.tpdu_length
                )
        return indexes

    def set_ussd_reply(self, iccid: str, text: str | None) -> None:
        """What the network answers to every USSD request of this SIM from now on, whatever
        the code (None: back to the balance, menu and other codes)."""
        self.sims[iccid].ussd_override = text

    def set_balance(self, iccid: str, amount: float | None) -> None:
        """The SIM's prepaid balance, as the balance code reports it (None: no balance)."""
        self.sims[iccid].balance = amount

    def balance(self, iccid: str) -> float | None:
        """The SIM's prepaid balance."""
        return self.sims[iccid].balance

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
