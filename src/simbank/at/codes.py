"""+CME ERROR / +CMS ERROR code tables and the named sets that drive policy.

Codes follow 3GPP TS 27.007 §9.2 (mobile equipment errors) and TS 27.005 §3.2.5 (message
service failures, plus the TS 24.011 RP causes 1..127 that many modems pass through). The
texts are the ones modems print with ``AT+CMEE=2``; they map back to the same codes.

CME and CMS numbers overlap (CME 10 = SIM not inserted, CMS 10 = call barred), so every
helper takes ``sms=True`` for a ``+CMS ERROR`` code.
"""

from __future__ import annotations

import re
from enum import IntEnum, StrEnum


class CmeError(IntEnum):
    """Mobile equipment errors, 27.007 §9.2.1 / §9.2.2 and common vendor additions."""

    PHONE_FAILURE = 0
    NO_CONNECTION_TO_PHONE = 1
    PHONE_ADAPTOR_LINK_RESERVED = 2
    OPERATION_NOT_ALLOWED = 3
    OPERATION_NOT_SUPPORTED = 4
    PH_SIM_PIN_REQUIRED = 5
    PH_FSIM_PIN_REQUIRED = 6
    PH_FSIM_PUK_REQUIRED = 7
    SIM_NOT_INSERTED = 10
    SIM_PIN_REQUIRED = 11
    SIM_PUK_REQUIRED = 12
    SIM_FAILURE = 13
    SIM_BUSY = 14
    SIM_WRONG = 15
    INCORRECT_PASSWORD = 16
    SIM_PIN2_REQUIRED = 17
    SIM_PUK2_REQUIRED = 18
    MEMORY_FULL = 20
    INVALID_INDEX = 21
    NOT_FOUND = 22
    MEMORY_FAILURE = 23
    TEXT_STRING_TOO_LONG = 24
    INVALID_CHARACTERS_IN_TEXT_STRING = 25
    DIAL_STRING_TOO_LONG = 26
    INVALID_CHARACTERS_IN_DIAL_STRING = 27
    NO_NETWORK_SERVICE = 30
    NETWORK_TIMEOUT = 31
    NETWORK_NOT_ALLOWED_EMERGENCY_ONLY = 32
    NETWORK_PERSONALIZATION_PIN_REQUIRED = 40
    NETWORK_PERSONALIZATION_PUK_REQUIRED = 41
    NETWORK_SUBSET_PERSONALIZATION_PIN_REQUIRED = 42
    NETWORK_SUBSET_PERSONALIZATION_PUK_REQUIRED = 43
    SERVICE_PROVIDER_PERSONALIZATION_PIN_REQUIRED = 44
    SERVICE_PROVIDER_PERSONALIZATION_PUK_REQUIRED = 45
    CORPORATE_PERSONALIZATION_PIN_REQUIRED = 46
    CORPORATE_PERSONALIZATION_PUK_REQUIRED = 47
    HIDDEN_KEY_REQUIRED = 48
    EAP_METHOD_NOT_SUPPORTED = 49
    INCORRECT_PARAMETERS = 50
    COMMAND_DISABLED = 51
    COMMAND_ABORTED = 52
    NOT_ATTACHED_RESTRICTED = 53
    NOT_ALLOWED_EMERGENCY_ONLY = 54
    NOT_ALLOWED_RESTRICTED = 55
    FIXED_DIAL_NUMBER_ONLY = 56
    TEMPORARILY_OUT_OF_SERVICE = 57
    LANGUAGE_OR_ALPHABET_NOT_SUPPORTED = 58
    UNEXPECTED_DATA_VALUE = 59
    SYSTEM_FAILURE = 60
    DATA_MISSING = 61
    CALL_BARRED = 62
    MESSAGE_WAITING_INDICATION_SUBSCRIPTION_FAILURE = 63
    UNKNOWN = 100
    # §9.2.2: GPRS / EPS related (100 + the 24.008 GMM/ESM cause)
    ILLEGAL_MS = 103
    ILLEGAL_ME = 106
    GPRS_SERVICES_NOT_ALLOWED = 107
    GPRS_AND_NON_GPRS_SERVICES_NOT_ALLOWED = 108
    PLMN_NOT_ALLOWED = 111
    LOCATION_AREA_NOT_ALLOWED = 112
    ROAMING_NOT_ALLOWED_IN_LOCATION_AREA = 113
    SERVICE_OPTION_NOT_SUPPORTED = 132
    SERVICE_OPTION_NOT_SUBSCRIBED = 133
    SERVICE_OPTION_TEMPORARILY_OUT_OF_ORDER = 134
    UNSPECIFIED_GPRS_ERROR = 148
    PDP_AUTHENTICATION_FAILURE = 149
    INVALID_MOBILE_CLASS = 150
    # vendor (SIMCom, Telit, Siemens lineage): PUK exhausted, the card is dead
    SIM_BLOCKED = 262


class CmsError(IntEnum):
    """Message service failures, 27.005 §3.2.5, plus the 24.011 RP causes worth naming."""

    UNASSIGNED_NUMBER = 1
    OPERATOR_DETERMINED_BARRING = 8
    CALL_BARRED = 10
    SHORT_MESSAGE_TRANSFER_REJECTED = 21
    DESTINATION_OUT_OF_SERVICE = 27
    UNIDENTIFIED_SUBSCRIBER = 28
    FACILITY_REJECTED = 29
    UNKNOWN_SUBSCRIBER = 30
    NETWORK_OUT_OF_ORDER = 38
    TEMPORARY_FAILURE = 41
    CONGESTION = 42
    RESOURCES_UNAVAILABLE = 47
    REQUESTED_FACILITY_NOT_SUBSCRIBED = 50
    REQUESTED_FACILITY_NOT_IMPLEMENTED = 69
    INVALID_SHORT_MESSAGE_TRANSFER_REFERENCE = 81
    INVALID_MESSAGE = 95
    INVALID_MANDATORY_INFORMATION = 96
    MESSAGE_TYPE_NOT_IMPLEMENTED = 97
    MESSAGE_NOT_COMPATIBLE_WITH_PROTOCOL_STATE = 98
    INFORMATION_ELEMENT_NOT_IMPLEMENTED = 99
    PROTOCOL_ERROR = 111
    INTERWORKING_UNSPECIFIED = 127
    ME_FAILURE = 300
    SMS_SERVICE_OF_ME_RESERVED = 301
    OPERATION_NOT_ALLOWED = 302
    OPERATION_NOT_SUPPORTED = 303
    INVALID_PDU_MODE_PARAMETER = 304
    INVALID_TEXT_MODE_PARAMETER = 305
    SIM_NOT_INSERTED = 310
    SIM_PIN_REQUIRED = 311
    PH_SIM_PIN_REQUIRED = 312
    SIM_FAILURE = 313
    SIM_BUSY = 314
    SIM_WRONG = 315
    SIM_PUK_REQUIRED = 316
    SIM_PIN2_REQUIRED = 317
    SIM_PUK2_REQUIRED = 318
    MEMORY_FAILURE = 320
    INVALID_MEMORY_INDEX = 321
    MEMORY_FULL = 322
    SMSC_ADDRESS_UNKNOWN = 330
    NO_NETWORK_SERVICE = 331
    NETWORK_TIMEOUT = 332
    NO_CNMA_ACKNOWLEDGEMENT_EXPECTED = 340
    UNKNOWN_ERROR = 500


class SimProblem(StrEnum):
    """What an error code says about the SIM, for the bank's state machine."""

    LOCKED = "locked"
    ABSENT = "absent"
    BLOCKED = "blocked"
    FAULT = "fault"


# -- named sets (policy) --------------------------------------------------------------------
# The one table of SIM error codes: drivers (``sim_status_from_cme``), the block detector and
# the retry policy all decide from these sets. 27.007 §9.2.1: 10 SIM not inserted, 11 SIM PIN
# required, 12 SIM PUK required, 13 SIM failure, 14 SIM busy, 15 SIM wrong, 16 incorrect
# password, 17 SIM PIN2 required, 18 SIM PUK2 required; 5-7 and 40-47 are phone and
# personalisation locks that +CPIN reports as "PH-… PIN/PUK".

SIM_ABSENT_CODES: frozenset[CmeError] = frozenset({CmeError.SIM_NOT_INSERTED})
"""No card in the slot."""

SIM_FAULT_CODES: frozenset[CmeError] = frozenset({CmeError.SIM_FAILURE, CmeError.SIM_WRONG})
"""A card is there but unusable. u-blox reports both for 100-300 ms after insertion
(modem-realism B10); ModemManager treats them as "SIM missing"."""

SIM_BUSY_CODES: frozenset[CmeError] = frozenset({CmeError.SIM_BUSY})
"""The card is still initialising (seconds after a slot switch or hot plug): retry."""

SIM_PIN_CODES: frozenset[CmeError] = frozenset(
    {
        CmeError.PH_SIM_PIN_REQUIRED,
        CmeError.PH_FSIM_PIN_REQUIRED,
        CmeError.SIM_PIN_REQUIRED,
        CmeError.NETWORK_PERSONALIZATION_PIN_REQUIRED,
        CmeError.NETWORK_SUBSET_PERSONALIZATION_PIN_REQUIRED,
        CmeError.SERVICE_PROVIDER_PERSONALIZATION_PIN_REQUIRED,
        CmeError.CORPORATE_PERSONALIZATION_PIN_REQUIRED,
    }
)
"""A PIN must be entered before the SIM can be used (``+CPIN: SIM PIN`` / ``PH-… PIN``)."""

SIM_PUK_CODES: frozenset[CmeError] = frozenset(
    {
        CmeError.PH_FSIM_PUK_REQUIRED,
        CmeError.SIM_PUK_REQUIRED,
        CmeError.NETWORK_PERSONALIZATION_PUK_REQUIRED,
        CmeError.NETWORK_SUBSET_PERSONALIZATION_PUK_REQUIRED,
        CmeError.SERVICE_PROVIDER_PERSONALIZATION_PUK_REQUIRED,
        CmeError.CORPORATE_PERSONALIZATION_PUK_REQUIRED,
    }
)
"""PIN attempts exhausted: a PUK is needed (``+CPIN: SIM PUK`` / ``PH-… PUK``)."""

SIM_PIN2_CODES: frozenset[CmeError] = frozenset(
    {CmeError.SIM_PIN2_REQUIRED, CmeError.SIM_PUK2_REQUIRED}
)
"""Only PIN2-protected features (fixed dialling) are refused; the SIM still serves calls and
SMS (27.007 §8.3), so these are *not* a lock."""

SIM_LOCKED_CODES: frozenset[CmeError] = SIM_PIN_CODES | SIM_PUK_CODES
"""PIN/PUK/personalisation: the SIM is there but locked (the bank's `locked` state)."""

SIM_BLOCKED_CODES: frozenset[CmeError] = frozenset({CmeError.SIM_BLOCKED})
"""The card itself is blocked (PUK exhausted)."""

RETRYABLE_CODES: frozenset[CmeError] = frozenset(
    {
        *SIM_BUSY_CODES,
        CmeError.NO_NETWORK_SERVICE,
        CmeError.NETWORK_TIMEOUT,
        CmeError.TEMPORARILY_OUT_OF_SERVICE,
        CmeError.SERVICE_OPTION_TEMPORARILY_OUT_OF_ORDER,
        CmeError.UNKNOWN,
    }
)
"""Worth retrying the same command after a pause."""

CMS_SIM_LOCKED_CODES: frozenset[CmsError] = frozenset(
    {CmsError.SIM_PIN_REQUIRED, CmsError.PH_SIM_PIN_REQUIRED, CmsError.SIM_PUK_REQUIRED}
)
CMS_SIM_PIN2_CODES: frozenset[CmsError] = frozenset(
    {CmsError.SIM_PIN2_REQUIRED, CmsError.SIM_PUK2_REQUIRED}
)
CMS_SIM_ABSENT_CODES: frozenset[CmsError] = frozenset({CmsError.SIM_NOT_INSERTED})
CMS_SIM_FAULT_CODES: frozenset[CmsError] = frozenset({CmsError.SIM_FAILURE, CmsError.SIM_WRONG})
CMS_RETRYABLE_CODES: frozenset[CmsError] = frozenset(
    {
        CmsError.SIM_BUSY,
        CmsError.NO_NETWORK_SERVICE,
        CmsError.NETWORK_TIMEOUT,
        CmsError.NETWORK_OUT_OF_ORDER,
        CmsError.TEMPORARY_FAILURE,
        CmsError.CONGESTION,
        CmsError.RESOURCES_UNAVAILABLE,
        CmsError.UNKNOWN_ERROR,
    }
)
CMS_BARRED_CODES: frozenset[CmsError] = frozenset(
    {
        CmsError.OPERATOR_DETERMINED_BARRING,
        CmsError.CALL_BARRED,
        CmsError.SHORT_MESSAGE_TRANSFER_REJECTED,
        CmsError.REQUESTED_FACILITY_NOT_SUBSCRIBED,
    }
)
"""SMS refused by the network in a way that is block evidence (24.011 RP causes)."""

# -- text forms (AT+CMEE=2) -----------------------------------------------------------------

# Texts that modems print which differ from the enum names. Keys are normalised (see _norm).
_CME_TEXT_ALIASES: dict[str, CmeError] = {
    "phone-adaptor link reserved": CmeError.PHONE_ADAPTOR_LINK_RESERVED,
    "ph-sim pin required": CmeError.PH_SIM_PIN_REQUIRED,
    "ph-fsim pin required": CmeError.PH_FSIM_PIN_REQUIRED,
    "ph-fsim puk required": CmeError.PH_FSIM_PUK_REQUIRED,
    "sim not present": CmeError.SIM_NOT_INSERTED,
    "no sim": CmeError.SIM_NOT_INSERTED,
    "network not allowed - emergency calls only": CmeError.NETWORK_NOT_ALLOWED_EMERGENCY_ONLY,
    "network not allowed emergency calls only": CmeError.NETWORK_NOT_ALLOWED_EMERGENCY_ONLY,
    "unknown error": CmeError.UNKNOWN,
    "illegal ms": CmeError.ILLEGAL_MS,
    "roaming not allowed in this location area": CmeError.ROAMING_NOT_ALLOWED_IN_LOCATION_AREA,
    "requested service option not subscribed": CmeError.SERVICE_OPTION_NOT_SUBSCRIBED,
    "unspecified gprs error": CmeError.UNSPECIFIED_GPRS_ERROR,
    "command implemented but currently disabled": CmeError.COMMAND_DISABLED,
    "command aborted by user": CmeError.COMMAND_ABORTED,
}
_CMS_TEXT_ALIASES: dict[str, CmsError] = {
    "unknown": CmsError.UNKNOWN_ERROR,
    "(u)sim not inserted": CmsError.SIM_NOT_INSERTED,
    "(u)sim pin required": CmsError.SIM_PIN_REQUIRED,
    "(u)sim puk required": CmsError.SIM_PUK_REQUIRED,
    "(u)sim failure": CmsError.SIM_FAILURE,
    "(u)sim busy": CmsError.SIM_BUSY,
    "ph-sim pin required": CmsError.PH_SIM_PIN_REQUIRED,
    "smsc address unknown": CmsError.SMSC_ADDRESS_UNKNOWN,
    "sms service of me reserved": CmsError.SMS_SERVICE_OF_ME_RESERVED,
    "no +cnma acknowledgement expected": CmsError.NO_CNMA_ACKNOWLEDGEMENT_EXPECTED,
    "invalid pdu mode parameter": CmsError.INVALID_PDU_MODE_PARAMETER,
    "invalid text mode parameter": CmsError.INVALID_TEXT_MODE_PARAMETER,
}


def _norm(text: str) -> str:
    return " ".join(text.strip().strip('"').lower().replace("_", " ").split())


_CME_BY_TEXT: dict[str, CmeError] = {_norm(m.name): m for m in CmeError} | _CME_TEXT_ALIASES
_CMS_BY_TEXT: dict[str, CmsError] = {_norm(m.name): m for m in CmsError} | _CMS_TEXT_ALIASES
_ACRONYMS = frozenset(
    {"sim", "pin", "puk", "pin2", "puk2", "ph", "fsim", "me", "ms", "gprs", "pdp", "pdu"}
    | {"smsc", "cnma", "plmn", "eap", "sms"}
)
_NUMBER = re.compile(r"\s*(\d{1,6})\s*")


def cme_code_from_text(text: str) -> int | None:
    """``"SIM PUK required"`` → 12; unknown text → None."""
    return _CME_BY_TEXT.get(_norm(text))


def cms_code_from_text(text: str) -> int | None:
    """``"SMSC address unknown"`` → 330; unknown text → None."""
    return _CMS_BY_TEXT.get(_norm(text))


def error_code(value: str, *, sms: bool = False) -> int | None:
    """The code of what follows ``+CME ERROR:`` (``sms=False``) or ``+CMS ERROR:``.

    Accepts the numeric form (``"12"``) and the verbose text form (``"SIM PUK required"``).
    """
    match = _NUMBER.fullmatch(value)
    if match:
        return int(match.group(1))
    return cms_code_from_text(value) if sms else cme_code_from_text(value)


def describe(code: int | None, *, sms: bool = False) -> str:
    """A human sentence for a code, e.g. ``"SIM PUK required"``; ``"unknown code N"``."""
    if code is None:
        return "no code"
    enum: type[IntEnum] = CmsError if sms else CmeError
    try:
        name = enum(code).name
    except ValueError:
        return f"unknown code {code}"
    words = name.lower().split("_")
    text = " ".join(w.upper() if w in _ACRONYMS else w for w in words)
    return text[0].upper() + text[1:]


def sim_problem(code: int | None, *, sms: bool = False) -> SimProblem | None:
    """What the code says about the SIM, or None if it says nothing lasting about it.

    Busy (14 / CMS 314) is None: it is transient (see :func:`is_retryable`); so are PIN2/PUK2.
    """
    if code is None:
        return None
    if sms:
        if code in CMS_SIM_LOCKED_CODES:
            return SimProblem.LOCKED
        if code in CMS_SIM_ABSENT_CODES:
            return SimProblem.ABSENT
        if code in CMS_SIM_FAULT_CODES:
            return SimProblem.FAULT
        return None
    if code in SIM_BLOCKED_CODES:
        return SimProblem.BLOCKED
    if code in SIM_LOCKED_CODES:
        return SimProblem.LOCKED
    if code in SIM_ABSENT_CODES:
        return SimProblem.ABSENT
    if code in SIM_FAULT_CODES:
        return SimProblem.FAULT
    return None


def is_retryable(code: int | None, *, sms: bool = False) -> bool:
    """True if the same command may succeed after a pause (busy SIM, network timeout...)."""
    if code is None:
        return False
    return code in (CMS_RETRYABLE_CODES if sms else RETRYABLE_CODES)
