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
