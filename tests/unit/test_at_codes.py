"""+CME / +CMS code tables and the named sets that drive policy.

Sources: 3GPP TS 27.007 §9.2 and TS 27.005 §3.2.5 (codes and texts); ModemManager
src/mm-error-helpers.c me_error_messages[] (the verbose texts modems print with AT+CMEE=2);
forums.quectel.com/t/ec25-cme-error-13-interpretation/4797 (EC25 "+CME ERROR: 13" = SIM failure);
a GSM-modem report of "+CME ERROR: 262" = SIM blocked (SIMCom/Telit vendor code).
"""

from __future__ import annotations

import pytest

from simbank.at.codec import AtCodec
from simbank.at.codes import (
    CMS_RETRYABLE_CODES,
    CMS_SIM_LOCKED_CODES,
    RETRYABLE_CODES,
    SIM_ABSENT_CODES,
    SIM_BLOCKED_CODES,
    SIM_BUSY_CODES,
    SIM_FAULT_CODES,
    SIM_LOCKED_CODES,
    SIM_PIN2_CODES,
    SIM_PIN_CODES,
    SIM_PUK_CODES,
    CmeError,
    CmsError,
    SimProblem,
    cme_code_from_text,
    cms_code_from_text,
    describe,
    error_code,
    is_retryable,
    sim_problem,
)
from simbank.at.results import Command, Response
from simbank.errors import CommandError

CME_TEXTS = [
    # (text as printed with AT+CMEE=2, code) — 27.007 §9.2.1 / MM mm-error-helpers.c
    ("phone failure", 0),
    ("Operation not allowed", 3),
    ("operation not supported", 4),
    ("PH-SIM PIN required", 5),
    ("SIM not inserted", 10),
    ("SIM PIN required", 11),
    ("SIM PUK required", 12),
    ("SIM failure", 13),
    ("SIM busy", 14),
    ("SIM wrong", 15),
    ("incorrect password", 16),
    ("SIM PIN2 required", 17),
    ("SIM PUK2 required", 18),
    ("memory full", 20),
    ("not found", 22),
    ("no network service", 30),
    ("Network timeout", 31),
    ("Network not allowed - emergency calls only", 32),
    ("network personalization PIN required", 40),
    ("Incorrect parameters", 50),
    ("unknown", 100),
    ("Unknown error", 100),
    ("Illegal MS", 103),
    ("PLMN not allowed", 111),
    ("Requested service option not subscribed", 133),
    ("unspecified GPRS error", 148),
    ("SIM blocked", 262),
    ('"SIM PUK required"', 12),
]


@pytest.mark.parametrize(("text", "code"), CME_TEXTS)
def test_cme_text_forms_map_to_codes(text: str, code: int) -> None:
    assert cme_code_from_text(text) == code
    assert error_code(text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("ME failure", 300),
        ("operation not allowed", 302),
        ("invalid PDU mode parameter", 304),
        ("(U)SIM not inserted", 310),
        ("SIM PUK required", 316),
        ("SMSC address unknown", 330),
        ("network timeout", 332),
        ("unknown error", 500),
        ("Unknown", 500),
    ],
)
def test_cms_text_forms_map_to_codes(text: str, code: int) -> None:
    assert cms_code_from_text(text) == code
    assert error_code(text, sms=True) == code


def test_numeric_forms_and_unknown_text() -> None:
    assert error_code(" 10") == 10
    assert error_code("3518") == 3518  # vendor code outside the table still carries its number
    assert error_code("flux capacitor overheated") is None
    assert error_code("") is None


def test_enum_values_follow_the_specs() -> None:
    assert CmeError.OPERATION_NOT_ALLOWED.value == 3
    assert CmeError.OPERATION_NOT_SUPPORTED.value == 4
    assert CmeError.SIM_NOT_INSERTED.value == 10
    assert CmeError.SIM_PUK_REQUIRED.value == 12
    assert CmeError.NO_NETWORK_SERVICE.value == 30
    assert CmeError.UNKNOWN.value == 100
    assert CmeError.SIM_BLOCKED.value == 262
    assert CmsError.ME_FAILURE.value == 300
    assert CmsError.SIM_NOT_INSERTED.value == 310
    assert CmsError.SMSC_ADDRESS_UNKNOWN.value == 330
    assert CmsError.UNKNOWN_ERROR.value == 500
    assert CmsError.OPERATOR_DETERMINED_BARRING.value == 8


def test_named_sets_are_disjoint_where_policy_needs_it() -> None:
    assert not SIM_LOCKED_CODES & SIM_ABSENT_CODES
    assert not SIM_LOCKED_CODES & SIM_BLOCKED_CODES
    assert not RETRYABLE_CODES & (SIM_LOCKED_CODES | SIM_ABSENT_CODES | SIM_BLOCKED_CODES)
    assert not SIM_PIN2_CODES & SIM_LOCKED_CODES
    assert not SIM_FAULT_CODES & (SIM_ABSENT_CODES | SIM_LOCKED_CODES | RETRYABLE_CODES)
    assert CmsError.SIM_BUSY in CMS_RETRYABLE_CODES
    assert CmsError.SIM_PUK_REQUIRED in CMS_SIM_LOCKED_CODES


@pytest.mark.parametrize(
    ("code", "sms", "problem"),
    [
        (11, False, SimProblem.LOCKED),
        (12, False, SimProblem.LOCKED),
        (18, False, None),  # SIM PUK2 required: only PIN2 features refused, not a lock
        (17, False, None),  # SIM PIN2 required: likewise
        (10, False, SimProblem.ABSENT),
        (13, False, SimProblem.FAULT),  # EC25 "+CME ERROR: 13" after a brown-out
        (15, False, SimProblem.FAULT),  # SIM wrong (u-blox, Particle PR #2263)
        (41, False, SimProblem.LOCKED),  # network personalisation PUK
        (262, False, SimProblem.BLOCKED),
        (14, False, None),  # busy is transient, not a SIM state
        (3, False, None),
        (None, False, None),
        (316, True, SimProblem.LOCKED),
        (310, True, SimProblem.ABSENT),
        (313, True, SimProblem.FAULT),
        (318, True, None),  # CMS SIM PUK2 required: not a lock
        # CMS 10 is "call barred", not "SIM not inserted": the namespaces do not mix
        (10, True, None),
    ],
)
def test_sim_problem(code: int | None, sms: bool, problem: SimProblem | None) -> None:
    assert sim_problem(code, sms=sms) is problem


@pytest.mark.parametrize(
    ("code", "sms", "retry"),
    [
        (14, False, True),
        (31, False, True),
        (12, False, False),
        (3, False, False),
        (None, False, False),
        (41, True, True),  # CMS: temporary failure
        (41, False, False),  # CME: network personalization PUK required
        (332, True, True),
        (8, True, False),  # operator determined barring: block evidence, never retry
    ],
)
def test_is_retryable(code: int | None, sms: bool, retry: bool) -> None:
    assert is_retryable(code, sms=sms) is retry


def test_describe() -> None:
    assert describe(12) == "SIM PUK required"
    assert describe(330, sms=True) == "SMSC address unknown"
    assert describe(9999) == "unknown code 9999"
    assert describe(None) == "no code"


@pytest.mark.parametrize(
    ("data", "code", "kind_sms"),
    [
        (b"\r\n+CME ERROR: 13\r\n", 13, False),  # EC25, real
        (b"\r\n+CME ERROR: SIM PUK required\r\n", 12, False),  # CMEE=2 text form
        (b"\r\n+CMS ERROR: 330\r\n", 330, True),
    ],
)
def test_command_error_carries_code_and_raw(data: bytes, code: int, kind_sms: bool) -> None:
    codec = AtCodec()
    codec.send(Command("AT+CPIN?"))
    (response,) = codec.feed(data)
    assert isinstance(response, Response)
    with pytest.raises(CommandError) as info:
        response.raise_for_error()
    assert info.value.code == code
    assert info.value.raw == data.decode().strip()
    assert sim_problem(info.value.code, sms=kind_sms) == sim_problem(code, sms=kind_sms)
    assert describe(code, sms=kind_sms) in str(info.value)


# 27.007 §9.2.1, codes 10-18: each lands in exactly the set the brief of issue 11 names.
SIM_CODE_SETS = {
    10: "absent",
    11: "pin",
    12: "puk",
    13: "fault",
    14: "busy",
    15: "fault",
    16: None,  # incorrect password: the command failed, the SIM is fine
    17: "pin2",
    18: "pin2",
}


@pytest.mark.parametrize(("code", "kind"), sorted(SIM_CODE_SETS.items()))
def test_sim_codes_10_to_18_sit_in_one_named_set(code: int, kind: str | None) -> None:
    sets = {
        "absent": SIM_ABSENT_CODES,
        "pin": SIM_PIN_CODES,
        "puk": SIM_PUK_CODES,
        "fault": SIM_FAULT_CODES,
        "busy": SIM_BUSY_CODES,
        "pin2": SIM_PIN2_CODES,
    }
    holding = [name for name, codes in sets.items() if code in codes]
    assert holding == ([] if kind is None else [kind])
    assert (code in SIM_LOCKED_CODES) is (kind in ("pin", "puk"))
    assert (code in RETRYABLE_CODES) is (kind == "busy")


@pytest.mark.parametrize(
    ("data", "code", "problem", "retry"),
    [
        # modem-realism D3: verbose forms map to the same codes and the same policy.
        (b"\r\n+CME ERROR: SIM failure\r\n", 13, SimProblem.FAULT, False),  # chan_dongle #79
        (b"\r\n+CME ERROR: SIM wrong\r\n", 15, SimProblem.FAULT, False),  # Particle PR #2263
        (b"\r\n+CME ERROR: SIM busy\r\n", 14, None, True),
        (b"\r\n+CME ERROR: 14\r\n", 14, None, True),  # MM commit 004450f9
        (b"\r\n+CME ERROR: SIM PUK2 required\r\n", 18, None, False),
        (b"\r\n+CME ERROR: 10\r\n", 10, SimProblem.ABSENT, False),  # MM commit 66dce6da
    ],
)
def test_verbose_and_numeric_sim_errors_share_policy(
    data: bytes, code: int, problem: SimProblem | None, retry: bool
) -> None:
    codec = AtCodec()
    codec.send(Command("AT+CPIN?"))
    (response,) = codec.feed(data)
    assert isinstance(response, Response)
    assert response.final.code == code
    assert sim_problem(response.final.code) is problem
    assert is_retryable(response.final.code) is retry
