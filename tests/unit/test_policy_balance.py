"""A prepaid balance under the policy's floor: the SIM rests (``balance_low``) for calls and
SMS alike, rotation passes it by, and the config refuses balance settings without a code."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from simbank.bank.policy import Limits, check_call, check_sms, sms_remaining
from simbank.bank.rotation import Action, SlotView, plan
from simbank.bank.sim_state import is_resting, rest_reason
from simbank.bank.usage import Usage, UsageKind
from simbank.config.models import PolicyConfig

TZ = ZoneInfo("UTC")
NOW = 1_780_000_000.0
FRESH = Usage(now=NOW, day_start=NOW - 3600, day_end=NOW + 3600)
LOW = replace(FRESH, balance_low=True)
LIMITS = Limits(quiet_hours=(), balance_floor=Decimal("5"))


def _call(usage: Usage) -> str | None:
    refusal = check_call(
        LIMITS,
        usage,
        NOW,
        TZ,
        max_duration_s=60,
        destination_calls_today=0,
        on_dnc=False,
        circuit_open=False,
    )
    return None if refusal is None else refusal.limit


def test_a_low_balance_refuses_calls_and_sms_and_rests_the_sim() -> None:
    assert _call(FRESH) is None
    assert _call(LOW) == "balance_low"
    sms = check_sms(LIMITS, LOW, NOW, TZ, on_dnc=False, circuit_open=False)
    assert sms is not None and sms.code == "quota_exhausted" and sms.limit == "balance_low"
    assert sms.frees_at is None  # only a later check says when
    assert sms_remaining(LIMITS, LOW) == 0 and sms_remaining(LIMITS, FRESH) == 50
    assert is_resting(LIMITS, LOW, NOW, TZ) and rest_reason(LIMITS, LOW, NOW, TZ) == "balance_low"
    assert rest_reason(LIMITS, FRESH, NOW, TZ) is None


def test_gateway_stops_come_before_the_balance() -> None:
    refusal = check_sms(LIMITS, LOW, NOW, TZ, on_dnc=True, circuit_open=False)
    assert refusal is not None and refusal.code == "do_not_call"


def test_rotation_passes_a_low_sim_by() -> None:
    slots = [
        SlotView(1, "8900000000000000001", "available", LOW, LIMITS),
        SlotView(2, "8900000000000000002", "available", FRESH, LIMITS),
    ]
    decision = plan(
        slots,
        1,
        NOW - 3600,
        NOW,
        tz=TZ,
        action=Action(UsageKind.CALL, max_duration_s=60),
        min_dwell_s=0,
    )
    assert decision.decision == "switch" and decision.slot == 2


@pytest.mark.parametrize(
    "settings",
    [
        {"balance_floor": 1.0},
        {"balance_check_interval_s": 3600},
        {"balance_check_every_calls": 5},
        {"balance_ussd": "100"},
        {"balance_ussd": "*100#", "balance_pattern": "(unclosed"},
        {"balance_ussd": "*100#", "balance_check_interval_s": 10},
        {"balance_ussd": "*100#", "balance_floor": float("nan")},
        {"balance_ussd": "*100#", "balance_floor": float("inf")},
    ],
)
def test_balance_settings_the_config_refuses(settings: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PolicyConfig.model_validate(settings)


def test_limits_carry_the_floor_exactly() -> None:
    policy = PolicyConfig(balance_ussd="*100#", balance_floor=0.1)
    assert Limits.from_config(policy).balance_floor == Decimal("0.1")
    assert Limits.from_config(PolicyConfig()).balance_floor is None
