"""A plan that found no SIM becomes one refusal: the shared code (else no_eligible_sim), every
reason once, the earliest time a refused SIM frees up, the limits concerned."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from simbank.bank.policy import Refusal
from simbank.bank.refusal import gateway_refusal, plan_refusal
from simbank.bank.rotation import GatewayPlan, Plan

NOW = 1_780_000_000.0
HOUR = Refusal("quota_exhausted", "quota calls_per_hour: 3 calls", "calls_per_hour", NOW + 600)
DAY = Refusal("quota_exhausted", "quota calls_per_day: 5 calls", "calls_per_day", NOW + 9000)
QUIET = Refusal("quiet_hours", "no outbound traffic in quiet hours", "quiet_hours", NOW + 60)
CAP = Refusal("destination_cap", "this destination had 2 call(s) today", None, None)


def none(refusals: dict[int, Refusal], unusable: dict[int, str] | None = None) -> Plan:
    return Plan("none", None, refusals=refusals, unusable=unusable or {})


def test_one_modem_one_code() -> None:
    refused = plan_refusal(none({1: HOUR, 2: DAY}))
    assert refused.reason == "quota_exhausted"
    assert str(refused) == f"calls_per_day: {DAY.message}; calls_per_hour: {HOUR.message}"
    assert refused.data == {"frees_at": NOW + 600, "limits": ["calls_per_day", "calls_per_hour"]}


def test_one_modem_mixed_codes_are_no_eligible_sim() -> None:
    refused = plan_refusal(none({1: HOUR, 2: CAP}))
    assert refused.reason == "no_eligible_sim"
    assert str(refused) == f"calls_per_hour: {HOUR.message}; destination_cap: {CAP.message}"
    assert refused.data == {"frees_at": NOW + 600, "limits": ["calls_per_hour"]}


def test_unusable_slots_alone_are_listed() -> None:
    refused = plan_refusal(none({}, {1: "blocked", 2: "empty"}))
    assert refused.reason == "no_eligible_sim"
    assert str(refused) == "no eligible SIM (slot 1: blocked, slot 2: empty)"
    assert refused.data == {"frees_at": None, "limits": []}


def test_a_refusal_beside_an_unusable_slot_is_the_candidates_code() -> None:
    # The blocked card is no candidate: the request waits for the quota, not for a SIM.
    refused = plan_refusal(none({1: HOUR}, {2: "blocked"}))
    assert refused.reason == "quota_exhausted"
    assert str(refused) == f"calls_per_hour: {HOUR.message}"  # the reasons win the message


def test_nothing_at_all() -> None:
    refused = plan_refusal(none({}))
    assert (refused.reason, str(refused)) == ("no_eligible_sim", "no eligible SIM")


def test_gateway_shared_code_across_modems() -> None:
    choice = GatewayPlan(None, Plan("none", None), {"m1": none({1: HOUR}), "m2": none({1: DAY})})
    refused = gateway_refusal(choice)
    assert refused.reason == "quota_exhausted"
    assert refused.data == {"frees_at": NOW + 600, "limits": ["calls_per_day", "calls_per_hour"]}


def test_gateway_codes_differ() -> None:
    choice = GatewayPlan(None, Plan("none", None), {"m1": none({1: QUIET}), "m2": none({1: DAY})})
    refused = gateway_refusal(choice)
    assert refused.reason == "no_eligible_sim"
    assert refused.data["frees_at"] == NOW + 60
    assert str(refused) == f"calls_per_day: {DAY.message}; quiet_hours: {QUIET.message}"


def test_gateway_the_same_reason_on_two_modems_is_said_once() -> None:
    choice = GatewayPlan(None, Plan("none", None), {"m1": none({1: QUIET}), "m2": none({2: QUIET})})
    refused = gateway_refusal(choice)
    assert (refused.reason, str(refused)) == ("quiet_hours", f"quiet_hours: {QUIET.message}")


def test_gateway_a_modem_without_candidates_has_no_say() -> None:
    plans = {"m1": none({}, {1: "blocked"}), "m2": none({1: HOUR})}
    refused = gateway_refusal(GatewayPlan(None, Plan("none", None), plans))
    assert refused.reason == "quota_exhausted"


def test_gateway_only_unusable_modems() -> None:
    choice = GatewayPlan(None, Plan("none", None), {"m1": none({}, {1: "blocked"})})
    refused = gateway_refusal(choice)
    assert (refused.reason, str(refused)) == ("no_eligible_sim", "no eligible SIM")


refusals = st.dictionaries(st.integers(1, 4), st.sampled_from([HOUR, DAY, QUIET, CAP]), max_size=4)


@given(st.lists(refusals, min_size=1, max_size=3))
def test_the_refusal_holds_every_modem_s_facts(per_modem: list[dict[int, Refusal]]) -> None:
    plans = {f"m{i}": none(r) for i, r in enumerate(per_modem)}
    refused = gateway_refusal(GatewayPlan(None, Plan("none", None), plans))
    every = [r for refusals in per_modem for r in refusals.values()]
    # Each modem's own code (one shared code, else no_eligible_sim), then the code shared by
    # the modems that have candidates at all.
    codes = {_shared({r.code for r in refusals.values()}) for refusals in per_modem if refusals}
    assert refused.reason == _shared(codes)
    frees = [r.frees_at for r in every if r.frees_at is not None]
    assert refused.data["frees_at"] == min(frees, default=None)
    assert refused.data["limits"] == sorted({r.limit for r in every if r.limit})
    for r in every:
        assert r.message in str(refused)


def _shared(codes: set[str]) -> str:
    return codes.pop() if len(codes) == 1 else "no_eligible_sim"
