"""The daemon end to end: simulated modems on real PTYs, a real mosquitto, MQTT state read back."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bankrig import BankRig as Rig
from bankrig import running

from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

#: dialect → what AT+CGMI answers (the auto-detection key)
DIALECTS = {
    "m1": ("quectel", "Quectel"),
    "m2": ("simcom", "SIMCOM INCORPORATED"),
    "m3": ("huawei", "Huawei"),
    "m4": ("fibocom", "Fibocom"),
    "m5": ("generic", None),
}


def scenario() -> Scenario:
    modems = []
    serial = 100
    for modem_id, (dialect, _) in DIALECTS.items():
        slots = []
        for _slot in range(2 if dialect != "generic" else 1):
            serial += 1
            slots.append(SimSpec(iccid=make_iccid(serial), registration_delay_s=1.0))
        modems.append(ModemSpec(id=modem_id, dialect=dialect, slots=slots))
    return Scenario(
        time_scale=4.0,
        timing=Timing(boot_s=2.0, sim_init_s=1.0, rssi_period_s=5.0),
        modems=modems,
    )


@pytest.fixture
async def rig(tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str) -> AsyncIterator[Rig]:
    async with running(tmp_path, mosquitto, base_topic, scenario()) as bank_rig:
        yield bank_rig


def _all_ready(rig: Rig) -> bool:
    return all(
        rig.modem(mid).get("state") == "ready"
        and rig.modem(mid).get("iccid")
        and (rig.modem(mid).get("registration") or {}).get("state") == "registered_home"
        for mid in DIALECTS
    )


async def test_every_dialect_probed_identified_and_registered(rig: Rig) -> None:
    await rig.until(lambda: _all_ready(rig), timeout=25)
    for modem_id, (dialect, manufacturer) in DIALECTS.items():
        state = rig.modem(modem_id)
        sim_modem = rig.bank.modems[modem_id]
        expected_iccid = sim_modem.slots[sim_modem.active_slot - 1].iccid  # type: ignore[union-attr]
        assert state["iccid"] == expected_iccid
        assert state["active_slot"] == sim_modem.active_slot
        if manufacturer:
            assert manufacturer.lower() in state["manufacturer"].lower()
        # The signal poll and the online event may land a moment after the ready state.
        await rig.until(lambda m=modem_id: rig.modem(m)["signal"]["rssi_dbm"] is not None)
        await rig.until(lambda m=modem_id: rig.events("modem_online", modem=m))
        assert rig.events("modem_online", modem=modem_id)[0]["dialect"] == dialect
        await rig.until(lambda iccid=expected_iccid: rig.sim(iccid).get("state") == "active")
        assert rig.sim(expected_iccid)["modem"] == modem_id
    assert rig.watcher.state[rig.topics.bridge_state] == {"state": "online"}
    info = rig.watcher.state[rig.topics.bridge_info]
    assert info["gateway"] == "gw1"
    assert [m["id"] for m in info["config"]["modems"]] == list(DIALECTS)


async def test_registration_denial_followed_from_urcs(rig: Rig) -> None:
    await rig.until(lambda: _all_ready(rig), timeout=25)
    iccid = rig.modem("m1")["iccid"]
    rig.bank.sim(iccid).deny(7)
    await rig.until(lambda: rig.events("registration_changed", modem="m1", stat=3))
    event = rig.events("registration_changed", modem="m1", stat=3)[-1]
    assert event["iccid"] == iccid
    assert event["state"] == "denied"
    assert event["reject_cause"] == 7

    # The retained state shows the denial, unless the modem has already left the denied SIM
    # (blocked: reject cause 7 is permanent) for its healthy one in slot 2 (the serving
    # guard), which it must then say.
    def shown_or_left() -> bool:
        modem = rig.modem("m1")
        shown = modem["iccid"] == iccid and modem["registration"]["state"] == "denied"
        return shown or bool(rig.events("sim_rotated", modem="m1", previous=iccid))

    await rig.until(shown_or_left)
    moved = rig.events("sim_rotated", modem="m1", previous=iccid)
    if moved:
        assert moved[-1]["reason"] == "blocked", moved
    else:
        assert rig.modem("m1")["registration"]["reject_cause"] == 7


async def test_unplug_fails_fast_and_replug_recovers_while_others_run(rig: Rig) -> None:
    await rig.until(lambda: _all_ready(rig), timeout=25)
    rig.bank.modems["m2"].unplug()
    await rig.until(lambda: rig.events("modem_offline", modem="m2"), timeout=5)
    # Events go out ahead of retained state (docs/mqtt-api.md), so the state may follow later.
    await rig.until(lambda: rig.modem("m2")["state"] in {"absent", "offline"}, timeout=5)
    # The other modems keep being followed: a signal change on m1 still shows up.
    rig.bank.modems["m1"].set_signal(5)
    await rig.until(lambda: rig.modem("m1")["signal"]["rssi_dbm"] == -113 + 2 * 5, timeout=10)
    assert rig.modem("m1")["state"] == "ready"
    rig.bank.modems["m2"].replug()
    await rig.until(lambda: len(rig.events("modem_online", modem="m2")) == 2, timeout=20)
    await rig.until(lambda: rig.modem("m2")["state"] == "ready" and rig.modem("m2")["iccid"])


@pytest.mark.timeout(240)
async def test_hang_escalates_and_recovers(rig: Rig) -> None:
    await rig.until(lambda: _all_ready(rig), timeout=25)
    await rig.inventory_done()  # a hang mid-switch first waits out the switch's own timeouts
    rig.bank.modems["m3"].hang(True)
    # Hang guards, not speed figures: the command in flight when the modem hangs may be a
    # 40 s one (the SMS listing after the inventory), and only its miss starts the checks.
    await rig.until(lambda: rig.modem("m3")["state"] == "unresponsive", timeout=90)
    assert rig.modem("m4")["state"] == "ready"
    rig.bank.modems["m3"].hang(False)
    await rig.until(lambda: rig.modem("m3")["state"] == "ready", timeout=90)


async def test_simbankctl_status_shows_the_table(rig: Rig, mosquitto: PrivateMosquitto) -> None:
    await rig.until(lambda: _all_ready(rig), timeout=25)
    base = rig.topics.root.split("/")[0]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simbank.ctl.main",
        "--port",
        str(mosquitto.port),
        "--base",
        base,
        "status",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "bridge: online" in text
    assert "modems ready: 5/5" in text
    for modem_id in DIALECTS:
        assert f"\n{modem_id} " in text
        assert rig.modem(modem_id)["iccid"] in text


@pytest.mark.timeout(120)  # real timers: 2 polls, 3 re-sync ATs and a reboot time out (~20 s)
@pytest.mark.timeout(180)
async def test_a_modem_that_stays_hung_is_reopened(rig: Rig) -> None:
    """Re-sync and reboot both fail → the port is given up and opened again. The hang may
    start under a command that waits 40 s (a list of stored SMS): noticed only then, so up to
    ~65 s to the re-open."""
    await rig.until(lambda: _all_ready(rig), timeout=25)
    # Hung in service, not in the middle of the start-up slot inventory (a hang mid-switch is
    # covered by test_drivers_sim and the fault soak).
    await rig.inventory_done()
    supervisor = rig.daemon.supervisors["m4"]
    sessions = supervisor.sessions
    rig.bank.modems["m4"].hang(True)
    await rig.until(lambda: supervisor.sessions > sessions, timeout=100)
    assert rig.events("modem_offline", modem="m4")
    rig.bank.modems["m4"].hang(False)
    # The second modem_online, not the retained state: the watcher may still hold the old
    # "ready" until the "offline" published when the port was given up reaches it.
    await rig.until(lambda: len(rig.events("modem_online", modem="m4")) == 2, timeout=30)
    await rig.until(lambda: rig.modem("m4")["state"] == "ready", timeout=30)
