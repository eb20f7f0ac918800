"""Dialect profiles: what each simulated modem model answers (per docs/modems.md)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SlotStyle(enum.Enum):
    """Which vendor command selects the SIM slot."""

    NONE = "none"
    QUECTEL = "quectel"  # AT+QUIMSLOT=<1|2> (and legacy AT+QDSIM=<0|1>)
    SIMCOM = "simcom"  # AT+SMSIMCFG=1,<1|2>
    HUAWEI = "huawei"  # AT^SCICHG=<0|1>,<1|0>
    FIBOCOM = "fibocom"  # AT+GTDUALSIM=<0|1>


@dataclass(frozen=True)
class Dialect:
    """Everything that differs between modem models."""

    name: str
    manufacturer: str
    model: str
    revision: str
    max_slots: int
    slot_style: SlotStyle
    # ICCID command name -> (kind "exec"/"read", response prefix)
    iccid_commands: tuple[tuple[str, str, str], ...]
    boot_lines: tuple[str, ...]
    sim_ready_lines: tuple[str, ...]
    reg_n3: bool = True
    has_5g: bool = False
    ci_digits: int = 8
    act: int = 7
    cgreg_rac: bool = False
    ceer_cc_info: bool = False
    cend: bool = False
    rssi_urc_period_s: float | None = None
    qind_csq: bool = False


GENERIC = Dialect(
    name="generic",
    manufacturer="Generic",
    model="GSM-LTE Modem",
    revision="GEN_1.0.0",
    max_slots=1,
    slot_style=SlotStyle.NONE,
    iccid_commands=(("+CCID", "exec", "+CCID"),),
    boot_lines=(),
    sim_ready_lines=("+CPIN: READY",),
    has_5g=True,
    ci_digits=4,
    act=0,
    cgreg_rac=True,
)

QUECTEL = Dialect(
    name="quectel",
    manufacturer="Quectel",
    model="EC25",
    revision="EC25EFAR06A06M4G",
    max_slots=2,
    slot_style=SlotStyle.QUECTEL,
    iccid_commands=(("+QCCID", "exec", "+QCCID"),),
    boot_lines=("RDY", "+CFUN: 1"),
    sim_ready_lines=("+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE", "+QIND: PB DONE"),
    ceer_cc_info=True,
    qind_csq=True,
)

SIMCOM = Dialect(
    name="simcom",
    manufacturer="SIMCOM INCORPORATED",
    model="SIMCOM_SIM7600E-H",
    revision="LE20B04SIM7600M22",
    max_slots=2,
    slot_style=SlotStyle.SIMCOM,
    iccid_commands=(("+CICCID", "exec", "+ICCID"),),
    boot_lines=("RDY",),
    sim_ready_lines=("+CPIN: READY", "SMS DONE", "PB DONE"),
)

HUAWEI = Dialect(
    name="huawei",
    manufacturer="Huawei Technologies Co., Ltd.",
    model="ME909s-120",
    revision="11.617.01.00.00",
    max_slots=2,
    slot_style=SlotStyle.HUAWEI,
    iccid_commands=(("^ICCID", "read", "^ICCID"),),
    boot_lines=("^BOOT:24681357,0,0,0,75",),
    sim_ready_lines=("^SIMST: 1",),
    cend=True,
    rssi_urc_period_s=30.0,
)

FIBOCOM = Dialect(
    name="fibocom",
    manufacturer="Fibocom",
    model="L610",
    revision="16000.1000.00.01.05.07",
    max_slots=2,
    slot_style=SlotStyle.FIBOCOM,
    iccid_commands=(("+CCID", "exec", "+CCID"),),
    boot_lines=(),
    sim_ready_lines=("+SIM READY", "+PBREADY"),
    reg_n3=False,
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (GENERIC, QUECTEL, SIMCOM, HUAWEI, FIBOCOM)}


def dialect(name: str) -> Dialect:
    """Look a dialect up by name (``KeyError`` if unknown)."""
    return DIALECTS[name]
