"""Book before act survives SIGKILL; a time-scaled day of demand never trips the carrier."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bankrig import daemon_process, one_modem, running

from simbank.config.models import DetectionConfig, PolicyConfig
from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, OperatorLimits, SimSpec, Timing, make_iccid
from simbank.store.ledger import Ledger

pytestmark = pytest.mark.integration


async def test_sigkill_mid_call_keeps_the_booking_and_the_quota(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with daemon_process(tmp_path, mosquitto, base_topic, one_modem("quectel", 900)) as rig:
        slot1, slot2 = rig.slots
        await rig.ready()
        first = await rig.client.request(
            "call", {"number": "+15550100011", "max_duration_s": 1}, timeout=30
        )
        assert first["status"] == "ok", first
        assert first["data"]["iccid"] == slot1
        # The second call is killed mid-way: the booking was committed before ATD.
        pending = asyncio.create_task(
            rig.client.request("call", {"number": "+15550100012", "max_duration_s": 40}, timeout=60)
        )
        await rig.call_in_progress()
        assert rig.process is not None
        os.kill(rig.process.pid, signal.SIGKILL)
        rig.process.wait(timeout=10)
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)

        with Ledger.open(tmp_path / "state") as ledger:
            records = ledger.usage_records(slot1, 0)
        assert len(records) == 2
        assert records[0].completed and records[0].outcome == "completed"
        assert not records[1].completed  # no outcome: counts as used...
        assert records[1].charged_s == 40  # ...with its whole reservation
        # Stored as a keyed hash (hex: a bare "555" can occur in one by chance).
        assert records[1].destination and "5550100" not in records[1].destination

        # The killed daemon's retained "ready" must not pass for the new one's: requests sent
        # before the new daemon has subscribed would be lost (its start-up takes over a second
        # on a loaded machine).
        rig.watcher.state.pop(rig.topics.modem("m1"), None)
        rig.start()
        await rig.ready()
        answers = [
            await rig.client.request(
                "call", {"number": f"+1555010{20 + n:04d}", "max_duration_s": 1}, timeout=60
            )
            for n in range(5)
        ]
        codes = [a.get("code") or a["data"]["iccid"] for a in answers]
        # The killed call has no outcome, so it is taken to run its whole 40 s
        # reservation: slot 1 may not call again before that (min gap after a call's
        # end), slot 2 takes its 3 calls per hour, then nothing is left.
        assert codes == [slot2, slot2, slot2, "quota_exhausted", "quota_exhausted"], codes
        assert {"calls_per_hour", "min_call_gap_s"} <= set(answers[3]["detail"]["limits"])
        calls = rig.bank.carrier.stats.calls_by_iccid
        assert calls[slot1] == 2
        assert calls[slot2] == 3


def _midnight_plus(hours: float) -> float:
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp() + hours * 3600


@pytest.mark.timeout(180)  # 22 simulated hours at ×1800 take 44 s of real timers
async def test_a_day_of_demand_ends_with_no_carrier_block(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """4 modems × 2 SIMs, demand far above quota for a (time-scaled) day: every SIM is used,
    none exceeds our policy, and the carrier's stricter hidden limits never trip."""
    scale = 1800.0
    modems = [
        ModemSpec(
            id=f"m{i + 1}",
            dialect=dialect,
            slots=[
                SimSpec(iccid=make_iccid(500 + 2 * i + n), registration_delay_s=5) for n in (0, 1)
            ],
        )
        for i, dialect in enumerate(["quectel", "simcom", "huawei", "fibocom"])
    ]
    scenario = Scenario(
        time_scale=scale,
        timing=Timing(boot_s=5, sim_init_s=2, ring_s=4, talk_s=600, rssi_period_s=600),
        carrier={
            "test": OperatorLimits(
                calls_per_hour=8, calls_per_day=40, min_call_gap_s=60, action="bar"
            )
        },
        modems=modems,
    )
    policy = PolicyConfig(
        calls_per_hour=6,
        calls_per_day=30,
        call_seconds_per_day=7200,
        min_call_gap_s=90,
        calls_per_destination_per_day=3,
        quiet_hours=[],
    )
    start = _midnight_plus(0.5)
    async with running(
        tmp_path,
        mosquitto,
        base_topic,
        scenario,
        time_scale=scale,
        start=start,
        policy=policy,
        detection=DetectionConfig(),
    ) as rig:
        await rig.inventory_done(timeout=60)
        results: dict[str, int] = {}
        day_end = start + 22 * 3600
        n = 0
        sem = asyncio.Semaphore(4)

        async def one(number: str) -> None:
            async with sem:
                answer = await rig.request(
                    "call", {"number": number, "max_duration_s": 120}, timeout=60
                )
            key = answer["data"]["outcome"] if answer["status"] == "ok" else answer["code"]
            results[key] = results.get(key, 0) + 1

        tasks = []
        while rig.daemon.runtime.clock.now() < day_end:
            n += 1
            tasks.append(asyncio.create_task(one(f"+1555{n % 1000:07d}")))
            await asyncio.sleep(60 / scale * 5)  # a request every 5 simulated minutes... ×4
            if len(tasks) > 400:
                break
        await asyncio.gather(*tasks)
        stats = rig.bank.carrier.stats
        assert stats.blocks == [], stats.blocks
        served = results.get("completed", 0)
        assert served > 0, results
        for iccid in rig.bank.sims:
            assert stats.calls_by_iccid.get(iccid, 0) <= policy.calls_per_day
        # Every SIM carried traffic: rotation spread the load.
        assert len([i for i in rig.bank.sims if stats.calls_by_iccid.get(i, 0) > 0]) == 8
        print(f"\nday of demand: {n} requests, results {results}, carrier calls {stats.calls}")
