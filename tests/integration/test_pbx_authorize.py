"""``call/authorize`` / ``call/complete`` end to end over PTYs and a real mosquitto: a PBX is
told which device to dial on, the ledger books before the answer, the real duration settles
it, an unfinished authorization expires as used, the modem keeps its SIM meanwhile, and an
open authorization survives a daemon restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bankrig import BankRig, running
from bankrig import simbankctl as run_ctl

from simbank.config.models import ComplianceConfig, PolicyConfig
from simbank.daemon.commands.pbx import PbxCommands
from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=0.3, sim_init_s=0.2, ring_s=0.1, talk_s=30.0, rssi_period_s=5)
DNC_NUMBER = "+15550100199"
POLICY = PolicyConfig(quiet_hours=[], min_call_gap_s=0, calls_per_destination_per_day=1)


def bank(dialect: str, slots: int) -> Scenario:
    sims = [SimSpec(iccid=make_iccid(840 + n), registration_delay_s=0.1) for n in range(slots)]
    return Scenario(timing=FAST, modems=[ModemSpec(id="m1", dialect=dialect, slots=sims)])  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def pbx_rig(
    tmp_path: Path, broker: PrivateMosquitto, base: str, scenario: Scenario, **config: Any
) -> AsyncIterator[tuple[BankRig, PbxCommands]]:
    """``bankrig.running`` with m1 given a PBX device name; yields the rig and the handler."""
    async with running(
        tmp_path, broker, base, scenario, devices={"m1": "quectel0"}, policy=POLICY, **config
    ) as rig:
        # The daemon runs the expiry task itself.
        assert any(t.get_name() == "pbx" for t in asyncio.all_tasks())
        await rig.until(rig.modems_ready)
        yield rig, rig.daemon.pbx


async def simbankctl(*args: str) -> tuple[int, str]:
    """``simbankctl`` as a dialplan runs it: exit status and stdout (stderr appended)."""
    code, out, err = await run_ctl(*args)
    return code, out + err


def seconds_today(rig: BankRig, iccid: str) -> Any:
    return rig.sim(iccid).get("usage", {}).get("call_seconds_day")


async def test_authorize_complete_refuse_hold_and_expire(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    dnc = tmp_path / "do-not-call.txt"
    dnc.write_text(f"{DNC_NUMBER}\n", encoding="utf-8")
    compliance = ComplianceConfig(do_not_call_file=dnc)
    async with pbx_rig(
        tmp_path, mosquitto, base_topic, bank("quectel", 2), compliance=compliance
    ) as (rig, pbx):
        slot1 = rig.bank.modems["m1"].slots[0]
        assert slot1 is not None
        sup = rig.daemon.supervisors["m1"]
        auth = await rig.request("call/authorize", {"number": "+15550100123", "max_duration_s": 90})
        assert auth["status"] == "ok", auth
        data = auth["data"]
        assert (data["modem"], data["device"], data["iccid"]) == ("m1", "quectel0", slot1.iccid)
        assert data["expires_at"] and len(data["booking"]) >= 8
        # Booked before the answer: the reservation is on the SIM's usage already.
        await rig.until(lambda: seconds_today(rig, slot1.iccid) == 90)
        assert rig.bank.modems["m1"].call is None  # the modem itself dialled nothing

        # While it is open nothing switches m1's SIM, and nothing else gets m1.
        selected = await rig.request("sim/select", {"modem": "m1", "slot": 2})
        assert selected["status"] == "error" and selected["code"] == "busy", selected
        other = await rig.request("call/authorize", {"number": "+15550100124", "max_duration_s": 9})
        assert other["code"] == "busy", other
        assert sup.serving.due() is None and sup.lock.locked()
        assert rig.bank.modems["m1"].active_slot == 1

        done = await rig.request(
            "call/complete", {"booking": data["booking"], "duration_s": 42, "outcome": "completed"}
        )
        assert done["status"] == "ok", done
        assert done["data"]["duration_s"] == 42 and done["data"]["iccid"] == slot1.iccid
        await rig.until(lambda: seconds_today(rig, slot1.iccid) == 42)
        assert not sup.lock.locked()
        again = await rig.request(
            "call/complete", {"booking": data["booking"], "duration_s": 7, "outcome": "busy"}
        )
        assert again["data"] == done["data"], again  # the first result, not a second one
        unknown = await rig.request(
            "call/complete", {"booking": "nosuchbooking", "duration_s": 1, "outcome": "completed"}
        )
        assert unknown["code"] == "unknown_booking", unknown

        # The refusals of ``call``, with the same codes.
        for number, code in (("+15550100123", "destination_cap"), (DNC_NUMBER, "do_not_call")):
            for command in ("call/authorize", "call"):
                refused = await rig.request(command, {"number": number, "max_duration_s": 5})
                assert refused.get("code") == code, (command, refused)

        # Never completed: settled as used at its expiry, then refused as expired.
        pbx.grace_s = 0.5
        short = await rig.request("call/authorize", {"number": "+15550100125", "max_duration_s": 1})
        assert short["status"] == "ok", short
        await rig.until(lambda: short["data"]["booking"] not in pbx.open)
        await rig.until(lambda: seconds_today(rig, slot1.iccid) == 43)
        assert not sup.lock.locked()
        late = await rig.request(
            "call/complete",
            {"booking": short["data"]["booking"], "duration_s": 0, "outcome": "no_answer"},
        )
        assert late["code"] == "unknown_booking" and late["detail"]["expired"] is True, late
        report = await rig.request("sim/report", {"iccid": slot1.iccid})
        outcomes = [u["outcome"] for u in report["data"]["usage"] if u["kind"] == "call"]
        assert outcomes == ["completed", "unknown"], report["data"]["usage"]


async def test_an_open_authorization_survives_a_restart(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    scenario = bank("quectel-ec21", 1)
    broker = ["--port", str(mosquitto.port), "--base", base_topic, "--gateway", "gw1"]
    async with pbx_rig(tmp_path, mosquitto, base_topic, scenario) as (rig, _):
        iccid = rig.daemon.supervisors["m1"].iccid
        assert iccid is not None
        # As a dialplan runs it: one line of key=value pairs, exit 0.
        code, out = await simbankctl(*broker, "authorize", "+15550100131", "--max-duration", "300")
        assert code == 0, out
        fields = dict(pair.split("=", 1) for pair in out.split())
        assert (fields["device"], fields["modem"], fields["iccid"]) == ("quectel0", "m1", iccid)
        assert "5550100131" not in out
        first = {"data": fields}
    # The daemon stopped with the authorization open: charged in full meanwhile.
    async with pbx_rig(tmp_path, mosquitto, base_topic, scenario) as (rig, pbx):
        sup = rig.daemon.supervisors["m1"]
        await rig.until(lambda: seconds_today(rig, iccid) == 300)
        assert first["data"]["booking"] in pbx.open and sup.lock.locked()
        refused = await rig.request(
            "call/authorize", {"number": "+15550100132", "max_duration_s": 5}
        )
        # Its one SIM is still in that call (reserved until booked + 300 s): not free yet.
        assert refused["code"] == "quota_exhausted" and refused["detail"]["frees_at"], refused
        booking = first["data"]["booking"]
        code, out = await simbankctl(
            *broker,
            "complete",
            booking,
            "--duration",
            "12",
            "--outcome",
            "failed",
            "--cause",
            "21",
            "--json",
        )
        assert code == 0, out
        done = json.loads(out)
        assert done["data"]["outcome"] == "failed" and done["data"]["cause"] == 21, done
        await rig.until(lambda: seconds_today(rig, iccid) == 12)
        assert not sup.lock.locked()
