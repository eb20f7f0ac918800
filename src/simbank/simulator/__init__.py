"""Simulated modem bank on pseudo-terminals: dialects, SIM/carrier behaviour, faults.

The modem side of the wire. It shares no protocol code with the client (``simbank.at``, the
drivers), so a framing or parsing bug on one side cannot hide the same bug on the other; it
reads only the 3GPP cause table (``simbank.drivers.parse.causes``), which is data.
"""

from simbank.simulator.bank import SimulatedBank
from simbank.simulator.carrier import Block, BlockAction, Carrier, CarrierLimits, CarrierStats
from simbank.simulator.modem import SimulatedModem
from simbank.simulator.scenario import Scenario, demo_scenario, load_scenario
from simbank.simulator.sim import Behaviour, SimCard

__all__ = [
    "Behaviour",
    "Block",
    "BlockAction",
    "Carrier",
    "CarrierLimits",
    "CarrierStats",
    "Scenario",
    "SimCard",
    "SimulatedBank",
    "SimulatedModem",
    "demo_scenario",
    "load_scenario",
]
