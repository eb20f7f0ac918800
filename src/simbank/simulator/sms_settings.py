"""The 27.005 settings of a simulated modem beyond :class:`~simbank.simulator.state.Settings`:
volatile like them, reset by a reboot (``CFUN=1,1``, a replug, ``ATZ``)."""

from __future__ import annotations

from dataclasses import dataclass

#: Storages ``AT+CPMS`` selects: every name but "SR" reads the SIM's message store.
MEMORIES = ("SM", "ME", "MT", "SR")


@dataclass
class SmsSettings:
    """Delivery-report routing, the text-mode SUBMIT parameters and the read storage."""

    ds: int = 0  # AT+CNMI <ds>: 0 no reports, 1 +CDS, 2 stored in "SR" and +CDSI
    first_octet: int = 17  # AT+CSMP <fo>: 17 = SMS-SUBMIT, relative VP; +0x20 asks a report
    validity: int = 167  # AT+CSMP <vp>
    memory: str = "SM"  # AT+CPMS <mem1>: what AT+CMGR / AT+CMGL / AT+CMGD act on
