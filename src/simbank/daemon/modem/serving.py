"""A modem never rests on a SIM that cannot serve while a usable one waits in another slot.

After each poll of a ready multi-slot modem that no action holds, the bank's view of its
slots (:meth:`~simbank.daemon.modem.observer.ModemObserver.modem_view`) goes through the pure
:func:`~simbank.bank.rotation.serving_move`; when it says move, the modem switches under its
action lock and announces ``sim_rotated`` (``actor`` ``rotation``, ``reason`` the state of the
SIM it left). This covers the card selected at power-on (a PUK-locked SIM in slot 1 and a
healthy one in slot 2) as well as a card that locks or is blocked later, with no traffic
asking. A switch that fails is not tried again for :data:`RETRY_S` (loop time). Nothing moves
while a call rings or is live on the modem, whoever dialled it
(:mod:`~simbank.daemon.modem.ringing`, :mod:`~simbank.daemon.modem.call_watch`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from simbank.bank.rotation import ServingMove, serving_move
from simbank.errors import CommandError, ProtocolGarbage, Refused

if TYPE_CHECKING:
    from simbank.daemon.modem.supervisor import ModemSupervisor

log = structlog.get_logger(__name__)

#: After a serving switch failed, the next try waits this long (seconds of the event loop).
RETRY_S = 60.0


class ServingGuard:
    """Moves one modem off a SIM that cannot serve (see the module's doc)."""

    def __init__(self, sup: ModemSupervisor) -> None:
        self.sup = sup
        self._retry_at = 0.0
        #: Moves made (for tests and the log).
        self.moves: list[ServingMove] = []

    def due(self) -> ServingMove | None:
        """The move to make now, if any (a cheap no for a single-slot or a busy modem)."""
        sup = self.sup
        observer = sup.observer
        if (
            observer is None
            or sup.usable_slots <= 1
            or not sup.ready
            or not sup.sim.known
            or sup.lock.locked()
            or sup.in_call  # never under a ringing or live call, whoever dialled it
            or asyncio.get_running_loop().time() < self._retry_at
        ):
            return None
        return serving_move(observer.modem_view(sup.cfg.id, sup.clock.now()))

    async def check(self) -> None:
        """Make the move that is due, if any (from the modem's follow loop). An AT timeout or
        a lost port goes up to the follow loop, like any other poll's."""
        move = self.due()
        if move is None:
            return
        sup = self.sup
        assert sup.observer is not None
        rotation = sup.observer.config.rotation
        previous = sup.iccid
        log.warning(
            "sim_cannot_serve", iccid=previous, state=move.reason, to_slot=move.slot, to=move.iccid
        )
        async with sup.lock:  # free (checked just now, nothing awaited since): taken at once
            try:
                result = await sup.switch_to(
                    move.slot,
                    sim_ready_timeout_s=rotation.sim_ready_timeout_s,
                    registration_timeout_s=rotation.registration_timeout_s,
                )
            except (CommandError, ProtocolGarbage, Refused) as exc:  # Refused: a call began
                self._retry_at = asyncio.get_running_loop().time() + RETRY_S
                log.warning("serving_switch_failed", slot=move.slot, error=str(exc))
                return
        self.moves.append(move)
        sup.board.event(
            "sim_rotated",
            modem=sup.cfg.id,
            slot=move.slot,
            iccid=result.iccid,
            previous=previous,
            registered=result.registered,
            actor="rotation",
            reason=move.reason,
        )
