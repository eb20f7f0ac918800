"""Block evidence has one shape everywhere (the ``sim_blocked`` event, the retained
``sim/<iccid>`` block and the ``sim/report`` answer), and a block after a release carries only
its own episode's evidence: over a real daemon, mosquitto and a simulated single-slot modem."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bankrig import BankRig, running

from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=0.5, sim_init_s=0.3, ring_s=0.2, talk_s=30.0, ussd_s=0.2, rssi_period_s=5)
ICCID = make_iccid(700)


def one_stick() -> Scenario:
    sim = SimSpec(iccid=ICCID, registration_delay_s=0.2)
    return Scenario(timing=FAST, modems=[ModemSpec(id="m1", dialect="quectel-ec21", slots=[sim])])


def assert_documented_shape(entries: list[dict[str, Any]]) -> None:
    """Each entry is ``{"at": ISO-8601 UTC, "kind": str, "detail": {...}}``, nothing else."""
    assert entries
    for entry in entries:
        assert set(entry) == {"at", "kind", "detail"}, entry
        assert isinstance(entry["at"], str), entry
        assert datetime.fromisoformat(entry["at"]).utcoffset() == timedelta(0), entry
        assert isinstance(entry["kind"], str) and entry["kind"], entry
        assert isinstance(entry["detail"], dict), entry


def key(entry: dict[str, Any]) -> tuple[str, str, str]:
    return entry["at"], entry["kind"], repr(sorted(entry["detail"].items()))


async def block(rig: BankRig, cycle: int) -> dict[str, Any]:
    """Deny the SIM (cause 7) and wait for its ``cycle``-th block, retained."""
    rig.bank.sim(ICCID).deny(7)
    await rig.until(lambda: len(rig.events("sim_blocked", iccid=ICCID)) >= cycle)
    event = rig.events("sim_blocked", iccid=ICCID)[cycle - 1]
    await rig.until(lambda: key(event["evidence"][-1]) in evidence_keys(rig.sim(ICCID)))
    return event


def evidence_keys(sim: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {key(e) for e in ((sim.get("block") or {}).get("evidence") or [])}


async def release(rig: BankRig, cycle: int) -> None:
    answer = await rig.request("sim/release", {"iccid": ICCID, "note": f"ticket {cycle}"})
    assert answer["status"] == "ok", answer
    # The carrier lifts the bar: the SIM registers again before the next block.
    rig.bank.sim(ICCID).set_behaviour("home")
    await rig.until(lambda: rig.sim(ICCID).get("state") == "active")


async def test_event_state_and_report_carry_one_evidence_shape_and_one_episode(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with running(tmp_path, mosquitto, base_topic, one_stick()) as rig:
        await rig.until(rig.modems_ready)
        event = await block(rig, 1)
        retained = rig.sim(ICCID)["block"]["evidence"]
        report = await rig.request("sim/report", {"iccid": ICCID})
        assert report["status"] == "ok", report
        for entries in (event["evidence"], retained, report["data"]["evidence"]):
            assert_documented_shape(entries)
        # The same block: the event's observations are those retained and reported, equal.
        assert [key(e) for e in event["evidence"]] == [key(e) for e in retained]
        assert [key(e) for e in event["evidence"]] == [key(e) for e in report["data"]["evidence"]]
        assert event["evidence"][-1]["detail"]["reject_cause"] == 7
        episodes = [[key(e) for e in retained]]

        for cycle in range(2, 5):
            await release(rig, cycle - 1)
            event = await block(rig, cycle)
            retained = rig.sim(ICCID)["block"]["evidence"]
            assert_documented_shape(retained)
            # Only this episode's observations: none of an earlier block's.
            assert [key(e) for e in retained] == [key(e) for e in event["evidence"]]
            assert not {key(e) for e in retained} & {k for old in episodes for k in old}
            episodes.append([key(e) for e in retained])

        # The ledger keeps every episode: the report shows them all, oldest first.
        report = await rig.request("sim/report", {"iccid": ICCID})
        reported = report["data"]["evidence"]
        assert_documented_shape(reported)
        assert [key(e) for e in reported] == [k for old in episodes for k in old]
