"""Dialect profiles: what each simulated modem model answers (per docs/modems.md).

A dialect is a vendor family (its ``family``: the part of the name before ``-``); the models of
a family differ in slots, optional commands and the byte habits of
``../shared/research/modem-realism.md`` (:class:`~simbank.simulator.habits.Habits`). The
capability matrix of every model is in docs/simulator.md.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from simbank.simulator.habits import PLAIN, Habits


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
    #: ``AT+CLCC=1`` reports every call state change as a ``+CLCC`` URC (SIMCom: A5/B4).
    clcc_urc: bool = False
    habits: Habits = field(default=PLAIN)

    @property
    def family(self) -> str:
        """The vendor family (``huawei`` for ``huawei-e173``)."""
        return self.name.split("-", 1)[0]


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
    clcc_urc=True,
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
    habits=Habits(call_end_twice=True),  # E4: ^CEND then NO CARRIER
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

# Models inside a family differ (modem-realism.md §A): single-SIM sticks and modules answer
# the slot commands of their vendor with ERROR, like any command they lack.
HUAWEI_E3372 = replace(
    HUAWEI,
    name="huawei-e3372",
    manufacturer="huawei",
    model="E3372",
    revision="22.200.15.00.00",
    max_slots=1,
    slot_style=SlotStyle.NONE,
    # F4: UCS-2 hex labelled 72 (the E3276 dump); F5: text, or packed hex as MM sends it
    habits=replace(HUAWEI.habits, ussd_coding="ucs2_72", ussd_request="either"),
)

QUECTEL_EC21 = replace(
    QUECTEL, name="quectel-ec21", model="EC21", revision="EC21EFAR06A01M4G", max_slots=1,
    slot_style=SlotStyle.NONE,
    habits=Habits(ussd_coding="ucs2_15"),  # F4: UCS-2 labelled 15 (the Quectel M35 dump)
)  # fmt: skip

# -- models with the habits of real hardware (modem-realism.md; matrix in docs/simulator.md) --

QUECTEL_EG25G = replace(
    QUECTEL,
    name="quectel-eg25g",
    model="EG25",
    revision="EG25GGBR07A08M2G",
    # AT+QDSIM (0-based) on the EC2x/EG25 family (A2); boot and SIM-ready lines as the EC25's
    # (B9, LUP log; A3).
    ceer_cc_info=False,
    habits=Habits(
        glue_urcs=True,  # B8/B13; B1: NO CARRIER read with the next command's echo
        echo_after_reset=True,  # B9: AT\r\nOK after power-up
        sim_busy_after_switch_s=6.0,  # B10
        ceer_style="textual",  # E3; the Quectel "CC INFO" form is NOT FOUND byte-exact
        ussd_coding="ucs2_72",  # F4: Quectel with AT+CSCS="UCS2"
    ),
)

HUAWEI_E173 = replace(
    HUAWEI,
    name="huawei-e173",
    manufacturer="huawei",
    model="E173",
    revision="11.126.85.00.209",
    max_slots=1,
    slot_style=SlotStyle.NONE,
    # "older devices don't support ^ICCID" (C2): the ICCID comes from AT+CRSM only.
    iccid_commands=(),
    reg_n3=False,  # A8
    act=2,
    # A7: ^RSSI, no ^HCSQ
    habits=Habits(
        call_end_twice=True,  # E4
        ceer_style="empty",  # E3
        unknown_answer="COMMAND NOT SUPPORT",  # A1/D1 (E1752/E220/EM770W era)
        has_cesq=False,  # A7
        ussd_coding="gsm7_hex",  # F4: E160 dump; oFono's Huawei driver always hex-decodes
        ussd_request="packed_hex",  # A10/F5: E1752-era firmware in ^USSDMODE 1
    ),
)

SIMCOM_SIM7600 = replace(
    SIMCOM,
    name="simcom-sim7600",
    model="SIMCOM_SIM7600G-H",
    revision="LE20B04SIM7600G22",
    # C6: AT+CICCID answers +ICCID:; A3: SMS DONE / PB DONE
    habits=Habits(
        crcrlf=True,  # B7
        chunking=True,  # B14
        ceer_style="numbered",  # E3: +CEER: "0 Unknown"
        ussd_coding="ucs2_72",  # F4: SIMCom with AT+CSCS="UCS2"
        ussd_unsupported_cme=True,  # F6: +CUSD: 4, then +CME ERROR: unknown
    ),
)

FIBOCOM_L610 = replace(
    FIBOCOM,
    name="fibocom-l610",
    revision="16000.1000.00.01.06.01",
    # A3: +SIM READY / +PBREADY; A8: +CEREG=3 refused
    habits=Habits(
        ceer_style="ok_only",  # E3: "the only response to the AT+CEER query is an OK"
        has_cesq=False,
        sim_busy_after_switch_s=2.0,  # B10
    ),
)

GENERIC_WAVECOM = replace(
    GENERIC,
    name="generic-wavecom",
    manufacturer="WAVECOM MODEM",
    model="MULTIBAND  900E  1800",
    revision="641b09gg.Q2403A 1320676 061804 14:38",
    has_5g=False,
    reg_n3=False,
    cgreg_rac=False,
    # B2; B15: like the Ericsson MBM it holds the OK of AT+CUSD=1 until the +CUSD answer
    habits=Habits(dial_ok="on_answer", has_cesq=False, ussd_before_ok=True),
)

GENERIC_ZTE = replace(
    GENERIC_WAVECOM,
    name="generic-zte",
    manufacturer="ZTE INCORPORATED",
    model="K3565-Z",
    revision="BD_P673A2V1.0.0B09",
    act=2,
    # B2; F4: packed GSM-7 hex like several Qualcomm sticks; F6: the extra +CUSD: 2
    habits=Habits(dial_ok="never", has_cesq=False, ussd_coding="gsm7_hex", ussd_extra_release=True),
)

# A model of a class of modems, not a recording: the old text-only GSM terminals and the cheap
# modules cloned from them, which never implemented 27.005 PDU mode (``+CMGF: (1)``; the
# client must fall back to text mode, GSM-7 only, one AT+CMGS per part).
GENERIC_TEXT_ONLY = replace(
    GENERIC_WAVECOM,
    name="generic-textonly",
    manufacturer="GSM MODULE",
    model="GSM900/1800 TEXT",
    revision="TXT_0.9.2",
    habits=Habits(has_cesq=False, has_pdu_mode=False),
)

DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (
        GENERIC,
        QUECTEL,
        SIMCOM,
        HUAWEI,
        FIBOCOM,
        HUAWEI_E3372,
        QUECTEL_EC21,
        QUECTEL_EG25G,
        HUAWEI_E173,
        SIMCOM_SIM7600,
        FIBOCOM_L610,
        GENERIC_WAVECOM,
        GENERIC_ZTE,
        GENERIC_TEXT_ONLY,
    )
}


def dialect(name: str) -> Dialect:
    """Look a dialect up by name (``KeyError`` if unknown)."""
    return DIALECTS[name]
