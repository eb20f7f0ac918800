"""Label values: bounded, and never a phone number.

Modem ids (:func:`modem_label`) are chosen by the operator and validated by the config
(``[a-z0-9_-]``, up to 64), like the topics they already appear in; ICCIDs
(:func:`iccid_label`) are in the MQTT contract: both pass through as they are, whatever
digits they hold, so two modems never share a series. Anything else, or free text
(:func:`safe_label`), is masked when it looks like a phone number. A masked value is
``masked-<keyed hash>``: distinct values stay distinct series, and the hash (keyed per process)
cannot be matched against a list of numbers. Label values that come from the outside world
(request commands, statuses, block reasons, registration states) are bounded to known names
so a stranger cannot grow the series count.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Final, get_args

import structlog

from simbank.bank.evidence import Reason
from simbank.contract import RegistrationInfo

log = structlog.get_logger(__name__)

MASKED: Final = "masked"
"""What a masked label value starts with (``masked-<hash>``)."""
OTHER: Final = "other"

REGISTRATION_STATES: Final = (
    "home",
    "roaming",
    "searching",
    "denied",
    "not_registered",
    "unknown",
)
"""``simbank_modem_registration{state}``: 3GPP 27.007 ``+CREG`` stats folded into six."""
_REG_BY_STAT: Final = {
    0: "not_registered",
    1: "home",
    2: "searching",
    3: "denied",
    4: "unknown",
    5: "roaming",
    6: "home",  # SMS only
    7: "roaming",  # SMS only
    8: "unknown",  # emergency only: serves nothing of ours
    9: "home",  # CSFB not preferred
    10: "roaming",  # CSFB not preferred
}

CALL_OUTCOMES: Final = ("completed", "busy", "no_answer", "failed", "unknown")
"""The ``call`` response's outcomes (docs/mqtt-api.md); ``unknown``: the call ended with an
error (the modem vanished, a timeout) and the booking stays charged."""

BLOCK_REASONS: tuple[str, ...] = get_args(Reason)
"""The block detector's reasons: each has a ``simbank_blocks_total`` series from the start."""


@dataclass(frozen=True, slots=True)
class Quota:
    """One usage window of one unit: the ``Usage`` field that counts it and the policy limit
    that bounds it."""

    metric: str  # "calls", "call_time", "sms"
    window: str  # "hour", "day", "month"
    usage: str
    limit: str


QUOTAS: Final = (
    Quota("calls", "hour", "calls_hour", "calls_per_hour"),
    Quota("calls", "day", "calls_day", "calls_per_day"),
    Quota("calls", "month", "calls_month", "calls_per_month"),
    Quota("call_time", "day", "call_seconds_day", "call_seconds_per_day"),
    Quota("call_time", "month", "call_seconds_month", "call_seconds_per_month"),
    Quota("sms", "day", "sms_day", "sms_per_day"),
    Quota("sms", "month", "sms_month", "sms_per_month"),
)
"""Every SIM quota; the month is counted (and shown) only where the SIM's policy limits it."""

_ICCID = re.compile(r"89\d{16,20}[0-9Ff]?")
_PHONE_LIKE = re.compile(r"(?<!\d)\+?\d{7,15}(?!\d)")
_NAME = re.compile(r"[a-z0-9_]{1,64}")
_MODEM_ID = re.compile(r"[a-z0-9_-]{1,64}")  # the config's ID_PATTERN and length
_KEY: Final = secrets.token_bytes(16)
"""Keys the hash of masked values: stable within a run, useless for guessing a number."""


def masked(value: str) -> str:
    """``masked-<8 hex digits>``: a keyed hash of ``value`` (logged once per value, without
    the value)."""
    log.warning("metrics_label_masked", length=len(value))
    digest = hashlib.blake2b(value.encode(), key=_KEY, digest_size=4).hexdigest()
    return f"{MASKED}-{digest}"


@functools.lru_cache(maxsize=4096)
def safe_label(value: str) -> str:
    """Free text as a label: ``value`` unless it holds something that looks like a phone
    number (a run of 7-15 digits, optionally after ``+``) and is not an ICCID (18-22 digits
    starting ``89``); then :func:`masked`."""
    if _ICCID.fullmatch(value):
        return value
    if _PHONE_LIKE.search(value):
        return masked(value)
    return value


@functools.lru_cache(maxsize=4096)
def modem_label(value: str) -> str:
    """A modem id as it is when it is one the config accepts (``m350000000000014`` too: the
    operator chose it, and it is in the modem's topics already); anything else is free
    text (:func:`safe_label`)."""
    return value if _MODEM_ID.fullmatch(value) else safe_label(value)


@functools.lru_cache(maxsize=4096)
def iccid_label(value: str) -> str:
    """An ICCID as it is (it is not a phone number, and the contract publishes it); a value
    that is not shaped like one is free text (:func:`safe_label`)."""
    return value if _ICCID.fullmatch(value) else safe_label(value)


def name_label(value: str) -> str:
    """A snake_case name from an event (a block reason); anything else is :data:`OTHER`."""
    return value if _NAME.fullmatch(value) else OTHER


def registration_label(info: RegistrationInfo) -> str:
    """The modem's registration as one of :data:`REGISTRATION_STATES` (``unknown`` when the
    modem has not said)."""
    if info.stat is None:
        return "unknown"
    return _REG_BY_STAT.get(info.stat, "unknown")
