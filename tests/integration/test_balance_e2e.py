"""The prepaid balance end to end over PTYs and a real mosquitto: a SIM whose balance check
reads less than its policy's floor rests (``reason: balance_low``), calls and SMS are refused
for it, and a later check above the floor brings it back. Checks run on demand
(``balance/check``) and on the policy's schedule, with the answer in the coding each modem
family uses (UCS-2 hex labelled 72 on a Huawei E3372, asked in packed GSM-7 hex first;
packed GSM-7 hex on a ZTE stick)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bankrig import running

from simbank.config.models import PolicyConfig
from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=1.0, sim_init_s=0.5, ring_s=0.2, talk_s=1.0, ussd_s=0.2, rssi_period_s=5)
NUMBER = "+447700900123"  # fictional (Ofcom drama range)


def one_modem(serial: int, dialect: str) -> Scenario:
    sim = SimSpec.model_validate({"iccid": make_iccid(serial), "registration_delay_s": 0.3})
    return Scenario(
        time_scale=1.0, timing=FAST, modems=[ModemSpec(id="m1", dialect=dialect, slots=[sim])]
    )


async def test_a_balance_under_the_floor_rests_the_sim_until_topped_up(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    policy = PolicyConfig(quiet_hours=[], balance_ussd="*100#", balance_floor=5.0)
    # A single-slot stick: no empty second slot to tour (and wait out its SIM timeout).
    scenario = one_modem(620, "huawei-e3372")
    async with running(tmp_path, mosquitto, base_topic, scenario, policy=policy) as rig:
        await rig.until(rig.modems_ready)
        iccid = rig.bank.modems["m1"].sim.iccid  # type: ignore[union-attr]
        rig.bank.set_balance(iccid, 1.25)
        checked = await rig.request("balance/check", {"modem": "m1"})
        assert checked["status"] == "ok", checked
        assert checked["data"]["amount"] == "1.25" and checked["data"]["low"] is True
        await rig.until(lambda: rig.sim(iccid).get("reason") == "balance_low")
        assert rig.sim(iccid)["state"] == "resting"
        assert rig.sim(iccid)["balance"]["amount"] == "1.25"
        assert rig.events("balance_low", iccid=iccid)
        refused = await rig.request("call", {"number": NUMBER, "max_duration_s": 5})
        assert refused["status"] == "error", refused
        assert refused["code"] in ("quota_exhausted", "no_eligible_sim")
        assert "balance_low" in refused["detail"]["limits"]
        sms = await rig.request("sms/send", {"number": NUMBER, "text": "hi"})
        assert sms["status"] == "error" and "balance_low" in sms["detail"]["limits"], sms
        assert rig.bank.carrier.stats.sms == 0
        # Topped up: the next check brings it back.
        rig.bank.set_balance(iccid, 20.0)
        again = await rig.request("balance/check", {"modem": "m1"})
        assert again["data"]["low"] is False and again["data"]["amount"] == "20.00", again
        await rig.until(lambda: rig.sim(iccid).get("reason") is None)
        assert rig.sim(iccid)["state"] != "resting"
        assert rig.events("balance_restored", iccid=iccid)
        ok = await rig.request("sms/send", {"number": NUMBER, "text": "hi"})
        assert ok["status"] == "ok", ok
        # Each check was a USSD request booked before it was sent.
        kinds = [str(r.kind) for r in rig.daemon.ledger.usage_records(iccid, 0)]
        assert kinds.count("ussd") == 2
        unknown = await rig.request("balance/check", {"modem": "nope"})
        assert unknown["code"] == "unknown_modem", unknown


async def test_the_schedule_checks_by_itself(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    policy = PolicyConfig(
        quiet_hours=[],
        balance_ussd="*100#",
        balance_floor=5.0,
        balance_check_interval_s=3600,
    )
    scenario = one_modem(621, "generic-zte")
    async with running(tmp_path, mosquitto, base_topic, scenario, policy=policy) as rig:
        iccid = scenario.modems[0].slots[0].iccid
        rig.bank.set_balance(iccid, 0.5)
        await rig.until(lambda: rig.events("balance_low", iccid=iccid), timeout=40)
        await rig.until(lambda: rig.sim(iccid).get("reason") == "balance_low")
        record = rig.daemon.ledger.balances()[iccid]
        assert str(record.amount) == "0.50" and record.low


async def test_a_topped_up_sim_in_another_slot_comes_back_by_itself(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """SIM 1 runs low and rotation moves the modem to SIM 2; once SIM 1 is topped up, its
    scheduled check switches the idle modem back to it, reads the balance and ends the rest."""
    policy = PolicyConfig(
        quiet_hours=[],
        balance_ussd="*100#",
        balance_floor=5.0,
        balance_check_interval_s=60,
        min_call_gap_s=0,
    )
    sims = [
        SimSpec.model_validate({"iccid": make_iccid(630 + n), "registration_delay_s": 0.3})
        for n in range(2)
    ]
    scenario = Scenario(
        time_scale=10.0,
        timing=FAST,
        modems=[ModemSpec(id="m1", dialect="quectel-eg25g", slots=sims)],
    )
    low, healthy = sims[0].iccid, sims[1].iccid
    async with running(
        tmp_path, mosquitto, base_topic, scenario, policy=policy, time_scale=10.0
    ) as rig:
        rig.bank.set_balance(low, 1.0)
        rig.bank.set_balance(healthy, 50.0)
        await rig.inventory_done()
        await rig.until(lambda: rig.sim(low).get("reason") == "balance_low", timeout=40)
        # A call goes out on the healthy SIM: rotation passes the low one by.
        sent = await rig.request("sms/send", {"number": NUMBER, "text": "hi"})
        assert sent["status"] == "ok" and sent["data"]["iccid"] == healthy, sent
        rig.bank.set_balance(low, 30.0)
        await rig.until(lambda: rig.events("balance_restored", iccid=low), timeout=60)
        await rig.until(lambda: rig.sim(low).get("reason") is None)
        switches = [
            a for a in rig.daemon.ledger.audit_trail() if a.action == "balance_check_switch"
        ]
        assert switches and switches[-1].detail["iccid"] == low
