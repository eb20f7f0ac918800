"""Phone numbers, IMSIs and SMS text never reach logs or retained state in clear; secrets
never reach bridge/info; the ledger and secret files are private."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
import structlog
from bankrig import running

from simbank.daemon.logs import configure_logging
from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

CALLED = "+15550100123"
TEXTED = "+15550100124"
SENDER = "+15550100456"
SECRET_TEXT = "PIN 987654 for your account"


def _digits(number: str) -> str:
    return number.lstrip("+")


async def test_nothing_personal_in_logs_state_or_reports(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    scenario = Scenario(
        timing=Timing(boot_s=0.5, sim_init_s=0.3, ring_s=0.1, talk_s=30, ussd_s=0.1),
        modems=[
            ModemSpec(
                id="m1",
                dialect="quectel",
                slots=[
                    SimSpec(iccid=make_iccid(700), registration_delay_s=0.2),
                    SimSpec(iccid=make_iccid(701), registration_delay_s=0.2),
                ],
            )
        ],
    )
    try:
        async with running(tmp_path, mosquitto, base_topic, scenario) as rig:
            await rig.inventory_done()
            await rig.until(rig.modems_ready)
            call = await rig.request("call", {"number": CALLED, "max_duration_s": 1})
            assert call["status"] == "ok", call
            sms = await rig.request("sms/send", {"number": TEXTED, "text": SECRET_TEXT})
            assert sms["status"] == "ok", sms
            iccid = sms["data"]["iccid"]
            rig.bank.send_sms(iccid, SENDER, SECRET_TEXT)
            await rig.until(lambda: rig.events("sms_received"))
            report = await rig.request("sim/report", {"iccid": iccid})
            status = await rig.request("status")
            imsis = [rig.bank.sim(i).imsi for i in rig.bank.sims]
            retained = json.dumps(rig.watcher.state)
            events = json.dumps(list(rig.watcher.events))
    finally:
        structlog.reset_defaults()
    logs = stream.getvalue()
    assert "at_tx" in logs  # debug logging really was on: the AT traffic itself was logged
    for number in (CALLED, TEXTED, SENDER):
        for where, text in (
            ("logs", logs),
            ("retained", retained),
            ("events", events),
            ("report", json.dumps(report)),
            ("status", json.dumps(status)),
        ):
            assert _digits(number) not in text, f"{number} in {where}"
    for imsi in imsis:
        assert imsi not in logs
        assert imsi not in retained
    assert SECRET_TEXT not in logs
    assert SECRET_TEXT not in retained
    info = rig.watcher.state[rig.topics.bridge_info]
    assert "password" not in json.dumps(info).lower()
    state_dir = tmp_path / "state"
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    for path in state_dir.iterdir():
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    # The ledger file itself holds no number in clear (the SMS sender is a keyed hash there).
    ledger_bytes = b"".join(p.read_bytes() for p in state_dir.iterdir() if p.is_file())
    for number in (CALLED, TEXTED, SENDER):
        assert _digits(number).encode() not in ledger_bytes
