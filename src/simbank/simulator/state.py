"""A modem's volatile state records: its settings and its call."""

from __future__ import annotations

from dataclasses import dataclass, field

from simbank.simulator.registration import REG_COMMANDS


@dataclass
class Call:
    """The one voice call a modem carries."""

    number: str
    stat: int = 2  # 0 active, 2 dialing, 3 alerting
    started: float = 0.0
    answered: float | None = None
    # The ATD has not had its final result yet (models that answer it late: B2).
    dial_open: bool = False
    # Someone called us (simulator.incoming); ``number`` "" when withheld; stat 4 ringing.
    incoming: bool = False
    # The AT port (1 or 2) that dialled or answered it: its final results and call-end lines
    # (``NO CARRIER``, ``BUSY``…) go there. None: nobody on a port owns it yet (ringing, or
    # answered by the ``SimulatedModem.answer`` hook): they go to the URC port.
    port: int | None = None


@dataclass
class Settings:
    """Volatile settings, reset by a reboot (CFUN=1,1, replug, ATZ)."""

    echo: bool = True
    cmee: int = 0
    reg_n: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REG_COMMANDS, 0))
    cmgf: int = 0
    cnmi_mt: int = 1
    cops_format: int = 0
    cops_mode: int = 0
    cusd_n: int = 0
    clip: int = 0  # AT+CLIP=1: +CLIP after each RING
    crc: int = 0  # AT+CRC=1: +CRING: VOICE instead of RING
    clcc: int = 0  # AT+CLCC=1 (SIMCom): a +CLCC URC on every call state change
