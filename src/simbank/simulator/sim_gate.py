"""Which error a command gets when the SIM is missing, busy or locked (+CME or +CMS form)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simbank.simulator.results import cme, cms
from simbank.simulator.sim import LockState, SimCard

if TYPE_CHECKING:
    from simbank.simulator.modem import SimulatedModem


def sim_present(modem: SimulatedModem, sms: bool = False) -> SimCard:
    """The active SIM (locked is fine); CME 10/14 or CMS 310/500 otherwise."""
    sim = modem.sim
    if modem.sim_busy:
        raise cms(500) if sms else cme(14)
    if sim is None:
        raise cms(310) if sms else cme(10)
    return sim


def sim_ready(modem: SimulatedModem, sms: bool = False) -> SimCard:
    """The active SIM, unlocked; CME 11/12 or CMS 311/316 when PIN/PUK is required."""
    sim = sim_present(modem, sms)
    if sim.lock is LockState.SIM_PIN:
        raise cms(311) if sms else cme(11)
    if sim.lock is LockState.SIM_PUK:
        raise cms(316) if sms else cme(12)
    return sim


def sim_settled(modem: SimulatedModem, *, unlocked: bool = False) -> SimCard:
    """The active SIM for a SIM file command (ICCID, IMSI, ``+CRSM``, ``+CNUM``): CME 14 while
    the model keeps the SIM busy after its (re)initialisation although ``+CPIN?`` already says
    READY (``Habits.sim_busy_after_switch_s``; modem-realism.md B10)."""
    sim = sim_ready(modem) if unlocked else sim_present(modem)
    if modem.clock.now() < modem.sim_settle_until:
        raise cme(14)
    return sim
