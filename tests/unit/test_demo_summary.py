"""The demo's summary: the dialer's tally, the quota check against the policy and the
carrier's hidden limits, the time to find each block, and the text printed at the end."""

from __future__ import annotations

from collections import Counter

import pytest

from simbank.bank.usage import UsageKind, UsageRecord
from simbank.clock import ScriptedClock
from simbank.demo.dialer import Campaign, Dialer, retry_after
from simbank.demo.summary import (
    BlockFound,
    CarrierBlock,
    DayReport,
    Limits,
    QuotaCheck,
    Tally,
    check_quotas,
    duration_text,
    find_times,
    summary_text,
    violations,
)

T0 = 1_780_000_000.0 - 1_780_000_000.0 % 86400 + 8 * 3600  # 08:00 UTC
POLICY = Limits(
    calls_per_hour=4,
    calls_per_day=6,
    call_seconds_per_day=600,
    sms_per_day=2,
    min_call_gap_s=90,
    calls_per_destination_per_day=2,
)
CARRIER = Limits(calls_per_hour=5, calls_per_day=8, rolling_day=True, min_call_gap_s=20,
                 gap_from_end=False)  # fmt: skip


def call(n: int, at: float, duration: int = 60, destination: str = "d") -> UsageRecord:
    return UsageRecord(
        n, "A", UsageKind.CALL, at, 300, at + duration, "completed", duration, f"{destination}{n}"
    )


def sms(n: int, at: float) -> UsageRecord:
    return UsageRecord(n, "A", UsageKind.SMS, at, 0, at, "sent", 0, "x")


def spaced(count: int, every: float = 900.0) -> list[UsageRecord]:
    return [call(n, T0 + n * every) for n in range(count)]


def test_a_clean_day_has_no_violation() -> None:
    records = [*spaced(4), sms(10, T0), sms(11, T0 + 10)]
    assert violations(records, POLICY) == []
    assert violations(records, CARRIER) == []


@pytest.mark.parametrize(
    ("records", "limits", "expected"),
    [
        (spaced(5, 600), POLICY, "calls_per_hour: 5 > 4"),
        (spaced(7, 1200), POLICY, "calls_per_day: 7 > 6"),
        ([call(0, T0, 400), call(1, T0 + 1000, 400)], POLICY, "call_seconds_per_day: 800 > 600"),
        ([sms(0, T0), sms(1, T0 + 1), sms(2, T0 + 2)], POLICY, "sms_per_day: 3 > 2"),
        # The policy's gap runs from the end of a call: 60 s long, next one 100 s after start.
        ([call(0, T0), call(1, T0 + 100)], POLICY, "min_call_gap_s: 40 s < 90 s"),
        # The carrier's gap runs between attempts.
        ([call(0, T0), call(1, T0 + 10)], CARRIER, "min_call_gap_s: 10 s < 20 s"),
        # The carrier's day rolls: 9 calls within 24 h over two calendar days.
        ([call(n, T0 + 10 * 3600 + n * 3000) for n in range(9)], CARRIER, "calls_per_day: 9 > 8"),
        (
            [call(0, T0, destination="x"), call(0, T0 + 900, destination="x"),
             call(0, T0 + 1800, destination="x")],
            POLICY,
            "calls_per_destination_per_day: 3 > 2",
        ),
    ],
)  # fmt: skip
def test_each_limit_broken_is_named(
    records: list[UsageRecord], limits: Limits, expected: str
) -> None:
    assert expected in violations(records, limits)


def test_the_policy_day_is_the_calendar_day() -> None:
    # 7 calls within 24 h, but 3 before midnight and 4 after: the policy's days are calendar.
    late = T0 + 14 * 3600  # 22:00
    records = [call(n, late + n * 1800) for n in range(7)]
    assert violations(records, POLICY) == []
    assert "calls_per_day: 7 > 6" in violations(records, Limits(calls_per_day=6, rolling_day=True))


def test_check_quotas_counts_carrier_limit_blocks_only() -> None:
    blocks = [
        CarrierBlock("B", "fraud_review", T0),  # the demo's scripted block: not a violation
        CarrierBlock("C", "calls_per_hour", T0),
    ]
    check = check_quotas({"A": spaced(3), "B": []}, POLICY, CARRIER, blocks)
    assert check.sims == 2
    assert check.problems == ("C blocked by the carrier for calls_per_hour",)
    broken = check_quotas({"A": spaced(5, 600)}, POLICY, CARRIER)
    assert broken.count == 1
    assert broken.problems[0].startswith("A policy calls_per_hour")


def test_time_to_find_each_block() -> None:
    found = [
        BlockFound("X", "blocked", "reject_cause", "m1", T0 + 3645, 3),
        BlockFound("Y", "blocked", "calls_barred", "m5", T0 + 900, 1),
    ]
    times = {f.iccid: how for f, how in find_times(found, [CarrierBlock("X", "r", T0 + 3600)], T0)}
    assert times["X"] == "the carrier blocked it at 09:00; found 45 s later"
    assert (
        times["Y"]
        == "out of service before the day began; found at 08:15, 15 min 00 s after the start"
    )


def test_tally() -> None:
    tally = Tally()
    tally.record("call", {"status": "ok", "data": {"outcome": "failed"}}, at=T0)
    tally.record("call", {"status": "ok", "data": {"outcome": "completed"}}, at=T0 + 5)
    tally.record("call", {"status": "ok", "data": {"outcome": "busy"}}, at=T0 + 9)
    tally.record("call", {"status": "error", "code": "do_not_call"})
    tally.record("sms/send", {"status": "ok", "data": {}})
    tally.record("sms/send", {"status": "error", "code": "quota_exhausted"})
    assert tally.calls_served == 2
    assert tally.first_served_at == T0 + 5
    assert tally.calls_refused == Counter({"do_not_call": 1})
    assert (tally.sms_sent, tally.sms_refused) == (1, Counter({"quota_exhausted": 1}))


def report(problems: tuple[str, ...] = ()) -> DayReport:
    tally = Tally()
    tally.record("call", {"status": "ok", "data": {"outcome": "completed"}}, at=T0 + 60)
    tally.record("call", {"status": "error", "code": "quota_exhausted"})
    return DayReport(
        started=T0,
        ended=T0 + 7200,
        scale=120,
        tally=tally,
        switches=Counter({"rotated for traffic": 2, "left a locked SIM": 1}),
        found=(
            BlockFound("X", "blocked", "reject_cause", "m1", T0 + 3645, 3),
            BlockFound("L", "locked", "puk_locked", "m3", T0 + 10, 1),
        ),
        carrier_blocks=(CarrierBlock("X", "fraud_review", T0 + 3600), CarrierBlock("Z", "r", T0)),
        circuit=("opened at 09:01 (3 blocks)",),
        sms_received=4,
        quotas=QuotaCheck(13, problems),
        firsts=(("call served", T0 + 60), ("block found", None)),
    )


def test_summary_text() -> None:
    text = summary_text(report())
    assert "simulated day: 08:00 -> 10:00 (2 h 00 min at x120, 1 min 00 s of wall time)" in text
    assert "\ncalls served: 1 (1 completed)\n" in text
    assert "calls refused: 1 (quota_exhausted 1)" in text
    assert "sim switches: 3 (left a locked SIM 1, rotated for traffic 2)" in text
    assert (
        "\nblocks found: 1\n  X (m1) reject_cause, 3 evidence item(s): the carrier blocked it"
        in text
    )
    assert "locked SIMs quarantined: 1\n  L (m3) puk_locked" in text
    assert "carrier blocks not found (yet): Z" in text
    assert "circuit breaker: opened at 09:01 (3 blocks)" in text
    assert "first call served: 08:01 simulated, 0.5 s" in text
    assert "first block found: never" in text
    assert "\nquota violations: 0 (" in text
    broken = summary_text(report(("A policy calls_per_hour: 5 > 4",)))
    assert "quota violations: 1 (" in broken
    assert "\n  A policy calls_per_hour: 5 > 4" in broken


@pytest.mark.parametrize(
    ("seconds", "text"), [(42, "42 s"), (200, "3 min 20 s"), (7500, "2 h 05 min"), (-1, "0 s")]
)
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_a_refused_agent_comes_back_when_the_sim_frees() -> None:
    campaign = Campaign(retry_min_s=120, retry_max_s=1800)
    frees = {"detail": {"frees_at": "2026-05-28T20:30:00+00:00"}}
    now = 1_780_000_000.0  # 20:26:40 UTC
    assert retry_after(frees, now, campaign) == pytest.approx(200)
    assert retry_after({"detail": {"frees_at": "soon"}}, now, campaign) == 120
    assert retry_after({}, now, campaign) == 120
    late = {"detail": {"frees_at": "2026-05-29T20:30:00+00:00"}}
    assert retry_after(late, now, campaign) == 1800


def test_the_dialer_asks_for_calls_sms_and_now_and_then_a_do_not_call_number() -> None:
    numbers, dnc = ["+15550100001"], ["+15550100013"]

    def dialer(**campaign: float) -> Dialer:
        return Dialer(None, ScriptedClock(), Tally(), numbers, dnc, campaign=Campaign(**campaign))  # type: ignore[arg-type]

    assert dialer(sms_share=0, dnc_share=0).next_request() == (
        "call",
        {"number": "+15550100001", "max_duration_s": 300},
    )
    command, payload = dialer(sms_share=1, dnc_share=1).next_request()
    assert command == "sms/send"
    assert payload["number"] == "+15550100013"
