"""The named error sets drive policy end to end: a command the modem refuses because of the
SIM (a +CMS/+CME code in ``SIM_LOCKED_CODES`` and friends) makes the supervisor read the card
again at once, so the lock is found and quarantined against the SIM really in the slot, and the
client is told what the refusal means (``detail``: the code, ``sim_problem``, ``retryable``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bankrig import running

from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid
from simbank.simulator.sim import LockState

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=1.0, sim_init_s=0.5, ring_s=0.2, talk_s=30.0, ussd_s=0.2, rssi_period_s=5)


def bank() -> Scenario:
    slots = [
        SimSpec.model_validate({"iccid": make_iccid(700 + n), "registration_delay_s": 0.3})
        for n in range(2)
    ]
    return Scenario(
        time_scale=1.0, timing=FAST, modems=[ModemSpec(id="m1", dialect="quectel", slots=slots)]
    )


@pytest.mark.parametrize(
    ("command", "payload", "code_key", "code"),
    [
        ("sms/send", {"number": "+15550100001", "text": "hello", "modem": "m1"}, "cms_error", 316),
        ("call", {"number": "+15550100002", "max_duration_s": 1, "modem": "m1"}, "cme_error", 12),
    ],
)
async def test_a_sim_that_locked_silently_is_read_again_and_quarantined(
    tmp_path: Path,
    mosquitto: PrivateMosquitto,
    base_topic: str,
    command: str,
    payload: dict[str, object],
    code_key: str,
    code: int,
) -> None:
    async with running(tmp_path, mosquitto, base_topic, bank()) as rig:
        await rig.inventory_done()
        await rig.until(rig.modems_ready)
        locked = rig.modem("m1")["iccid"]
        other = next(s.iccid for s in rig.bank.modems["m1"].slots if s and s.iccid != locked)
        # The card asks for its PUK without a word on the line (no +CPIN URC).
        rig.bank.sim(locked).lock = LockState.SIM_PUK
        refused = await rig.request(command, payload)
        assert refused["status"] == "error", refused
        assert refused["code"] == "modem_error"
        assert refused["detail"] == {code_key: code, "retryable": False, "sim_problem": "locked"}
        # Read again at once: the lock is the evidence, against the SIM really in the slot.
        await rig.until(lambda: rig.sim(locked).get("state") == "locked")
        assert rig.events("sim_locked", iccid=locked)
        assert rig.sim(other).get("state") not in {"locked", "blocked", "suspected"}
        # The next request goes to the healthy SIM.
        again = await rig.request(command, {**payload, "number": "+15550100003"})
        assert again["status"] == "ok", again
        assert again["data"]["iccid"] == other
