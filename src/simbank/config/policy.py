"""A quota policy: the carrier-safe limits of the SIMs it applies to, and their prepaid
balance check."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from simbank.config.section import Section

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class PolicyConfig(Section):
    """Carrier-safe quota for the SIMs it applies to (enforced by the bank)."""

    calls_per_hour: int = Field(default=20, ge=0, description="Outgoing calls per rolling hour.")
    calls_per_day: int = Field(default=100, ge=0, description="Outgoing calls per calendar day.")
    call_seconds_per_day: int = Field(
        default=7200, ge=0, description="Call seconds per calendar day."
    )
    sms_per_day: int = Field(default=50, ge=0, description="SMS sent per calendar day.")
    min_call_gap_s: int = Field(default=30, ge=0, description="Minimum gap between two calls.")
    quiet_hours: list[str] = Field(
        default_factory=list,
        description="Local-time windows 'HH:MM-HH:MM' (may wrap midnight) with no outbound traffic.",
    )
    calls_per_destination_per_day: int = Field(
        default=2, ge=0, description="Calls to one destination per day, gateway-wide."
    )
    rest_after_calls: int = Field(
        default=0, ge=0, description="After this many calls in a row the SIM rests (0: never)."
    )
    rest_s: int = Field(default=0, ge=0, description="How long a SIM rests after rest_after_calls.")
    billing_day: int = Field(
        default=1,
        ge=1,
        le=28,
        description="Day of the month (1-28) on which a billing cycle starts, at local midnight "
        "in the gateway's time zone (1: the calendar month); the `*_per_month` limits count these cycles.",
    )
    calls_per_month: int | None = Field(
        default=None, ge=0, description="Outgoing calls per billing cycle (unset: no limit)."
    )
    call_seconds_per_month: int | None = Field(
        default=None, ge=0, description="Call seconds per billing cycle (unset: no limit)."
    )
    sms_per_month: int | None = Field(
        default=None, ge=0, description="SMS sent per billing cycle (unset: no limit)."
    )
    sms_status_report: bool = Field(
        default=False,
        description="Ask the network for a delivery report of every SMS sent (sms/send may "
        "override it per message); the outcome arrives as an sms_delivered or sms_failed event.",
    )
    balance_ussd: str | None = Field(
        default=None,
        pattern=r"^[*#][*#0-9]{1,30}#$",
        description="USSD code that answers the prepaid balance (e.g. '*100#'); unset: no check.",
    )
    balance_pattern: str | None = Field(
        default=None,
        description="Regular expression finding the amount in the answer (a group named "
        "'amount', else group 1, else the match); unset: the first money-like number.",
    )
    balance_floor: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="A SIM whose balance is under this rests (reason balance_low) until a "
        "check shows it at or above; unset: the balance is only reported.",
    )
    balance_check_interval_s: int | None = Field(
        default=None, ge=60, description="Check the balance this often (unset: not on a schedule)."
    )
    balance_check_every_calls: int | None = Field(
        default=None, ge=1, description="Check the balance after every N calls (unset: never)."
    )
    inbound_action: Literal["ignore", "reject", "reject_unknown"] = Field(
        default="ignore",
        description="What an inbound call to these SIMs meets: 'ignore' (it rings; the PBX "
        "answers, or nobody), 'reject' (hung up, AT+CHUP else ATH, after "
        "inbound_reject_after_rings rings) or 'reject_unknown' (only callers on "
        "inbound_allow_file ring through; the others, withheld numbers too, are rejected). "
        "Every call is announced as an incoming_call event and counted in sim/report.",
    )
    inbound_reject_after_rings: int = Field(
        default=1, ge=1, le=20, description="Rings before a rejected inbound call is hung up."
    )
    inbound_allow_file: Path | None = Field(
        default=None,
        strict=False,
        description="File of the numbers that ring through under inbound_action = "
        "'reject_unknown', one per line ('#' comments; the do-not-call file's format), held "
        "as keyed hashes; read again when it changes.",
    )
    iccid_prefixes: list[str] = Field(
        default_factory=list,
        description="SIMs whose ICCID starts with one of these use this policy.",
    )
    imsi_prefixes: list[str] = Field(
        default_factory=list,
        description="SIMs whose IMSI starts with one of these use this policy.",
    )

    @field_validator("balance_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"balance_pattern is not a regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _balance_needs_a_code(self) -> Self:
        wants = (self.balance_floor, self.balance_check_interval_s, self.balance_check_every_calls)
        if self.balance_ussd is None and any(v is not None for v in wants):
            raise ValueError("balance_floor and the balance checks need balance_ussd")
        return self

    @model_validator(mode="after")
    def _allow_list_for_reject_unknown(self) -> Self:
        if self.inbound_action == "reject_unknown" and self.inbound_allow_file is None:
            raise ValueError("inbound_action = 'reject_unknown' needs inbound_allow_file")
        return self

    @field_validator("quiet_hours")
    @classmethod
    def _windows(cls, value: list[str]) -> list[str]:
        for window in value:
            if not _HHMM.match(window):
                raise ValueError(f"quiet hour window {window!r} is not 'HH:MM-HH:MM'")
        return value
