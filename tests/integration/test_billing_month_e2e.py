"""Billing-month quotas end to end over PTYs and a real mosquitto: a SIM over its monthly SMS
quota is left and the next request rotates to the other SIM; with both over it, the refusal
names ``sms_per_month`` and frees at the next billing cycle's start. A SIM over its monthly
call quota rests until the next cycle. At local midnight (and a billing cycle's start) the
retained counts start again by themselves, with no request to show them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from bankrig import running

from simbank.clock import SystemClock
from simbank.config.models import PolicyConfig
from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=1.0, sim_init_s=0.5, ring_s=0.2, talk_s=30.0, ussd_s=0.2, rssi_period_s=5)
#: The gateway's clock (UTC) starts mid-cycle: the cycle began 5 March, the next one 5 April.
START = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC).timestamp()
CYCLE_START = dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
NEXT_CYCLE = dt.datetime(2026, 4, 5, tzinfo=dt.UTC)


def one_modem_two_slots() -> Scenario:
    slots = [
        SimSpec.model_validate({"iccid": make_iccid(300 + n), "registration_delay_s": 0.3})
        for n in range(2)
    ]
    return Scenario(
        time_scale=1.0,
        timing=FAST,
        modems=[ModemSpec(id="m1", dialect="quectel", slots=slots)],
    )


async def test_monthly_sms_quota_rotates_then_refuses_until_the_next_cycle(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    policy = PolicyConfig(sms_per_day=50, sms_per_month=2, billing_day=5)
    async with running(
        tmp_path, mosquitto, base_topic, one_modem_two_slots(), policy=policy, start=START
    ) as rig:
        await rig.inventory_done()
        await rig.until(rig.modems_ready)
        slot1, slot2 = (s.iccid for s in rig.bank.modems["m1"].slots if s is not None)
        answers = []
        for n in range(3):
            answers.append(
                await rig.request("sms/send", {"number": f"+1555010{n:04d}", "text": f"hi {n}"})
            )
        assert [a["status"] for a in answers] == ["ok"] * 3, answers
        assert [a["data"]["iccid"] for a in answers] == [slot1, slot1, slot2]
        rotated = rig.events("sim_rotated", modem="m1", iccid=slot2)
        assert rotated and rotated[-1]["previous"] == slot1

        # (Like the day's SMS quota, the month's does not make the SIM rest: it may still call.)
        await rig.until(lambda: rig.sim(slot1).get("usage", {}).get("sms_month") == 2)
        first = rig.sim(slot1)
        assert first["usage"]["sms_month"] == 2
        assert first["usage"]["sms_day"] == 2
        assert first["usage"]["calls_month"] == 0
        assert dt.datetime.fromisoformat(first["usage"]["month_start"]) == CYCLE_START
        assert dt.datetime.fromisoformat(first["usage"]["month_end"]) == NEXT_CYCLE
        assert first["limits"]["sms_per_month"] == 2
        assert first["limits"]["billing_day"] == 5
        assert first["limits"]["calls_per_month"] is None
        await rig.until(lambda: rig.sim(slot2).get("usage", {}).get("sms_month") == 1)

        fourth = await rig.request("sms/send", {"number": "+15550100003", "text": "hi 3"})
        assert fourth["status"] == "ok", fourth
        assert fourth["data"]["iccid"] == slot2
        refused = await rig.request("sms/send", {"number": "+15550100004", "text": "hi 4"})
        assert refused["status"] == "error", refused
        assert refused["code"] == "quota_exhausted"
        assert "sms_per_month" in refused["detail"]["limits"]
        assert dt.datetime.fromisoformat(refused["detail"]["frees_at"]) == NEXT_CYCLE
        # Four texts went out, none after the quota was spent.
        assert len(rig.bank.modems["m1"].sent_sms) == 4


async def test_monthly_call_quota_rests_the_sim_until_the_next_cycle(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    policy = PolicyConfig(
        calls_per_month=2, billing_day=5, min_call_gap_s=0, calls_per_destination_per_day=10
    )
    async with running(
        tmp_path, mosquitto, base_topic, one_modem_two_slots(), policy=policy, start=START
    ) as rig:
        await rig.inventory_done()
        slot1, slot2 = (s.iccid for s in rig.bank.modems["m1"].slots if s is not None)
        answers = []
        for n in range(3):
            answers.append(
                await rig.request("call", {"number": f"+1555010{n:04d}", "max_duration_s": 1})
            )
        assert [a["status"] for a in answers] == ["ok"] * 3, answers
        assert [a["data"]["iccid"] for a in answers] == [slot1, slot1, slot2]
        await rig.until(lambda: rig.events("quota_exhausted", iccid=slot1))
        await rig.until(lambda: rig.sim(slot1).get("state") == "resting")
        assert rig.sim(slot1)["usage"]["calls_month"] == 2
        assert rig.sim(slot1)["limits"]["calls_per_month"] == 2
        assert rig.bank.carrier.stats.calls_by_iccid[slot2] == 1
        await rig.request("call", {"number": "+15550100003", "max_duration_s": 1})
        refused = await rig.request("call", {"number": "+15550100004", "max_duration_s": 1})
        assert refused["code"] == "quota_exhausted", refused
        assert "calls_per_month" in refused["detail"]["limits"]
        assert dt.datetime.fromisoformat(refused["detail"]["frees_at"]) == NEXT_CYCLE


class SteppedClock(SystemClock):
    """The wall clock, stepped as NTP steps it (the monotonic clock does not move)."""

    def __init__(self, start: float) -> None:
        self.offset = start - super().now()

    def now(self) -> float:
        return super().now() + self.offset


async def test_the_day_s_and_the_month_s_counts_start_again_at_midnight_by_themselves(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    # 23:50 UTC on 4 April: the day and the billing cycle (5 March to 5 April) end together.
    before = dt.datetime(2026, 4, 4, 23, 50, tzinfo=dt.UTC).timestamp()
    clock = SteppedClock(before)
    policy = PolicyConfig(sms_per_day=50, sms_per_month=20, billing_day=5, quiet_hours=[])
    async with running(
        tmp_path, mosquitto, base_topic, one_modem_two_slots(), policy=policy, clock=clock
    ) as rig:
        await rig.inventory_done()
        await rig.until(rig.modems_ready)
        sent = await rig.request("sms/send", {"number": "+15550100010", "text": "late"})
        assert sent["status"] == "ok", sent
        iccid = sent["data"]["iccid"]
        await rig.until(lambda: rig.sim(iccid).get("usage", {}).get("sms_day") == 1)
        usage = rig.sim(iccid)["usage"]
        assert usage["sms_month"] == 1
        assert dt.datetime.fromisoformat(usage["month_end"]) == NEXT_CYCLE
        (booked,) = rig.daemon.ledger.usage_records(iccid, 0)
        assert booked.booked_at < NEXT_CYCLE.timestamp()  # booked on the old day
        # Out of its modem's active slot, the modem's polls no longer touch this SIM.
        other = 2 if rig.sim(iccid)["slot"] == 1 else 1
        selected = await rig.request("sim/select", {"modem": "m1", "slot": other})
        assert selected["status"] == "ok", selected
        await rig.until(lambda: rig.sim(iccid)["state"] == "available")

        # The clock is stepped to just before midnight; nobody asks anything. (Stepped past
        # it, the refresh every 5 minutes would show the new day without the forecast.)
        clock.offset += NEXT_CYCLE.timestamp() - 2 - clock.now()
        await rig.until(lambda: rig.sim(iccid).get("usage", {}).get("sms_day") == 0)
        usage = rig.sim(iccid)["usage"]
        assert usage["sms_month"] == 0
        assert dt.datetime.fromisoformat(usage["month_start"]) == NEXT_CYCLE
        # The ledger still has the text: only the windows moved.
        assert rig.daemon.ledger.usage_records(iccid, 0) == [booked]
