"""Scenario files (TOML): the modems, their SIMs, the carrier's hidden limits, the timings."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simbank.simulator.carrier import BlockAction, CarrierLimits
from simbank.simulator.dialects import DIALECTS
from simbank.simulator.sim import Behaviour
from simbank.simulator.ussd import DEFAULT_BALANCE_NOTICE, UssdService, balance_notice

DialectName = Literal[
    "generic",
    "quectel",
    "simcom",
    "huawei",
    "fibocom",
    "huawei-e3372",
    "quectel-ec21",
    "quectel-eg25g",
    "huawei-e173",
    "simcom-sim7600",
    "fibocom-l610",
    "generic-wavecom",
    "generic-zte",
    "generic-textonly",
]

#: One modem of each model with the habits of real hardware (docs/simulator.md, "Models").
MIX_MODELS: tuple[DialectName, ...] = (
    "quectel-eg25g",
    "huawei-e173",
    "simcom-sim7600",
    "fibocom-l610",
    "huawei-e3372",
    "quectel-ec21",
    "generic-wavecom",
    "generic-zte",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimSpec(_Model):
    """One slot's content: a SIM card, or ``behaviour = "absent"`` for an empty slot."""

    iccid: str | None = Field(
        default=None,
        pattern=r"^8999\d{15,16}$",
        description="ICCID, 19-20 digits, fictional issuer prefix 8999 (omit for absent)",
    )
    imsi: str | None = Field(
        default=None,
        pattern=r"^001\d{11,12}$",
        description="IMSI on a test network (MCC 001; derived from the ICCID if omitted)",
    )
    mnc_length: int = Field(
        default=2,
        ge=2,
        le=3,
        description="MNC length in the SIM's EF_AD (AT+CRSM=176,28589): 2 or 3 digits",
    )
    behaviour: Behaviour = Field(default=Behaviour.HOME, description="network behaviour")
    operator: str = Field(default="test", description="carrier profile name for the limits")
    pin: str = Field(default="1234", description="PIN for behaviour=pin")
    puk: str = Field(default="12345678", description="PUK for behaviour=puk")
    reject_cause: int = Field(default=7, ge=0, le=255, description="reject cause when denied")
    registration_delay_s: float = Field(
        default=3.0, ge=0, description="simulated seconds from radio on to registration"
    )
    ussd_reply: str = Field(
        default="Your balance is 10.00 TEST",
        description="USSD answer to codes other than the balance and menu codes",
    )
    balance: float | None = Field(
        default=10.0, description="prepaid balance (none: the balance code answers ussd_reply)"
    )
    currency: str = Field(default="TEST", min_length=1, max_length=8, description="currency")
    balance_text: str = Field(
        default=DEFAULT_BALANCE_NOTICE,
        description="balance notice: {balance} (2 decimals), {currency}, {valid_till}; "
        "a non-Latin notice goes out as UCS-2",
    )
    valid_till: str = Field(default="2027-01-31", description="{valid_till} in the notice")

    @model_validator(mode="after")
    def _iccid_unless_absent(self) -> Self:
        if self.behaviour is not Behaviour.ABSENT and self.iccid is None:
            raise ValueError("a SIM needs an iccid (or behaviour = 'absent')")
        return self

    @model_validator(mode="after")
    def _notice_fills(self) -> Self:
        try:
            balance_notice(self.balance_text, 0.0, self.currency, self.valid_till)
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"balance_text: bad placeholder {error}") from None
        return self

    def resolved_imsi(self) -> str:
        """The IMSI, derived from the ICCID's tail when not given."""
        if self.imsi is not None:
            return self.imsi
        assert self.iccid is not None
        return "00101" + self.iccid[-11:-1].rjust(10, "0")


class ModemSpec(_Model):
    """One simulated modem."""

    id: str = Field(pattern=r"^[a-z0-9_-]+$", description="modem id; also the symlink name")
    dialect: DialectName = Field(default="generic", description="AT dialect profile")
    signal: int = Field(default=20, ge=0, le=31, description="CSQ rssi 0..31")
    imei: str | None = Field(default=None, pattern=r"^\d{15}$", description="IMEI (derived)")
    active_slot: int = Field(default=1, ge=1, description="slot selected at power-on (1-based)")
    slots: list[SimSpec] = Field(min_length=1, description="slot 1, slot 2, ...")
    ports: int = Field(
        default=1,
        ge=1,
        le=2,
        description="AT ports sharing the one radio: 2 adds <directory>/<id>.at2 (a PBX's port)",
    )
    urc_port: int = Field(
        default=1, ge=1, le=2, description="the AT port unsolicited lines go to (1 or 2)"
    )

    @model_validator(mode="after")
    def _slots_fit(self) -> Self:
        limit = DIALECTS[self.dialect].max_slots
        if len(self.slots) > limit:
            raise ValueError(f"dialect {self.dialect} has {limit} slot(s)")
        if self.active_slot > len(self.slots):
            raise ValueError("active_slot beyond the slots given")
        if self.urc_port > self.ports:
            raise ValueError(f"urc_port {self.urc_port} but the modem has {self.ports} port(s)")
        return self


class OperatorLimits(_Model):
    """The carrier's hidden limits for one operator profile."""

    calls_per_hour: int | None = Field(default=None, ge=0, description="calls per rolling hour")
    calls_per_day: int | None = Field(default=None, ge=0, description="calls per rolling day")
    min_call_gap_s: float | None = Field(default=None, ge=0, description="min s between calls")
    sms_per_day: int | None = Field(default=None, ge=0, description="SMS per rolling day")
    action: BlockAction = Field(default=BlockAction.DENY, description="deny | bar")
    deny_cause: int = Field(default=7, ge=0, le=255, description="reject cause on deny")

    def to_limits(self) -> CarrierLimits:
        """The carrier model's limits."""
        return CarrierLimits(**self.model_dump())


class Timing(_Model):
    """Simulated durations (seconds of simulated time)."""

    boot_s: float = Field(default=5.0, ge=0, description="CFUN=1,1 / replug until banner")
    sim_init_s: float = Field(default=2.0, ge=0, description="slot switch until SIM ready")
    ring_s: float = Field(default=4.0, ge=0, description="alerting before answer/busy")
    talk_s: float = Field(default=20.0, ge=0, description="answered call until remote hangup")
    no_answer_s: float = Field(default=30.0, ge=0, description="alerting until NO ANSWER")
    ussd_s: float = Field(default=2.0, ge=0, description="USSD request until +CUSD")
    status_report_s: float = Field(
        default=1.0, ge=0, description="accepted SMS until its status report"
    )
    rssi_period_s: float = Field(default=30.0, gt=0, description="Huawei ^RSSI period")
    incoming_ring_s: float = Field(
        default=3.0, gt=0, description="between two RINGs of an inbound call"
    )


_USSD_CODE = r"^[*#][0-9*#]*#$"


class UssdCodes(_Model):
    """The carrier's USSD service codes (the network side: ``simulator.ussd``)."""

    balance_code: str = Field(
        default="*100#", pattern=_USSD_CODE, description="answered with the balance notice"
    )
    menu_code: str = Field(
        default="*111#", pattern=_USSD_CODE, description="opens a menu (+CUSD: 1) a reply continues"
    )
    unsupported_codes: tuple[str, ...] = Field(
        default=("*999#",), description="answered +CUSD: 4 (operation not supported)"
    )

    def to_service(self) -> UssdService:
        """The network's USSD service."""
        return UssdService(self.balance_code, self.menu_code, self.unsupported_codes)


class Scenario(_Model):
    """A whole simulated bank."""

    time_scale: float = Field(default=1.0, gt=0, description="simulated s per real s")
    seed: int = Field(default=0, description="seeds the random habits (chunk sizes) per modem")
    directory: Path | None = Field(default=None, description="where the symlinks go")
    timing: Timing = Field(default_factory=Timing, description="simulated durations")
    carrier: dict[str, OperatorLimits] = Field(
        default_factory=dict, description="hidden limits per operator profile"
    )
    ussd: UssdCodes = Field(default_factory=UssdCodes, description="USSD service codes")
    call_cost: float = Field(
        default=0.0, ge=0, description="taken from a SIM's prepaid balance per answered call"
    )
    modems: list[ModemSpec] = Field(min_length=1, description="the modems")

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [m.id for m in self.modems]
        if len(ids) != len(set(ids)):
            raise ValueError("modem ids must be unique")
        iccids = [s.iccid for m in self.modems for s in m.slots if s.iccid is not None]
        if len(iccids) != len(set(iccids)):
            raise ValueError("ICCIDs must be unique")
        return self


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario TOML file."""
    with path.open("rb") as handle:
        return Scenario.model_validate(tomllib.load(handle))


def luhn_digit(digits: str) -> str:
    """The Luhn check digit for ``digits``."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def make_iccid(serial: int) -> str:
    """A fictional 20-digit ICCID (issuer 8999, Luhn checked)."""
    body = f"89990100{serial:011d}"
    return body + luhn_digit(body)


def make_imei(serial: int) -> str:
    """A fictional IMEI with TAC 35000000."""
    body = f"35000000{serial:06d}"
    return body + luhn_digit(body)


#: The demo's modems: the plain family profiles mixed with models that have real habits.
DEMO_MODELS: tuple[DialectName, ...] = (
    "quectel",
    "simcom-sim7600",
    "huawei",
    "fibocom-l610",
    "quectel-eg25g",
    "huawei-e173",
    "simcom",
    "huawei-e3372",
)


def demo_scenario() -> Scenario:
    """8 modems of mixed vendors and models (two single-slot sticks), a few troubled SIMs
    (see config/scenarios/demo.toml); m1 holds two healthy SIMs, so its traffic rotates."""
    trouble: dict[tuple[int, int], dict[str, object]] = {
        (2, 2): {"behaviour": "denied", "reject_cause": 7},
        (3, 1): {"behaviour": "puk"},
        (4, 2): {"behaviour": "searching"},
        (5, 2): {"behaviour": "barred"},
        (6, 1): {"behaviour": "roaming"},
        (7, 2): {"behaviour": "absent"},
    }
    modems: list[ModemSpec] = []
    serial = 0
    for number, name in enumerate(DEMO_MODELS, start=1):
        slots: list[SimSpec] = []
        for slot in range(1, DIALECTS[name].max_slots + 1):
            extra = trouble.get((number, slot), {})
            if extra.get("behaviour") == "absent":
                slots.append(SimSpec(behaviour=Behaviour.ABSENT))
                continue
            serial += 1
            slots.append(SimSpec.model_validate({"iccid": make_iccid(serial), **extra}))
        modems.append(
            ModemSpec(
                id=f"m{number}",
                dialect=name,
                signal=12 + number,
                imei=make_imei(number),
                slots=slots,
            )
        )
    return Scenario(
        time_scale=1.0,
        carrier={
            "test": OperatorLimits(
                calls_per_hour=20, calls_per_day=60, min_call_gap_s=20, sms_per_day=40
            )
        },
        modems=modems,
    )


def realistic_mix(
    first_serial: int = 500,
    *,
    models: tuple[DialectName, ...] = MIX_MODELS,
    timing: Timing | None = None,
    time_scale: float = 1.0,
    seed: int = 0,
    registration_delay_s: float = 0.3,
) -> Scenario:
    """A bank of one modem per model (``m1``, ``m2``, … in ``models`` order), every slot
    filled with a healthy home SIM; ICCIDs from ``make_iccid(first_serial)`` on."""
    modems: list[ModemSpec] = []
    serial = first_serial
    for number, name in enumerate(models, start=1):
        slots: list[SimSpec] = []
        for _slot in range(DIALECTS[name].max_slots):
            slots.append(
                SimSpec(iccid=make_iccid(serial), registration_delay_s=registration_delay_s)
            )
            serial += 1
        modems.append(
            ModemSpec(
                id=f"m{number}", dialect=name, imei=make_imei(first_serial + number), slots=slots
            )
        )
    return Scenario(time_scale=time_scale, seed=seed, timing=timing or Timing(), modems=modems)
