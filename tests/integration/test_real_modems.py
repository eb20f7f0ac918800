"""Modems that behave like real hardware (issue 11), through the whole daemon: single-slot sticks
that lack their vendor's slot command, a SIM that never registers after the slot inventory, a
hang, and a modem that fails the same way for good. Order and outcome only, no wall clock."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
from atlog import AtLog
from bankrig import running

from simbank.config.models import DetectionConfig
from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import Scenario
from simbank.simulator.modem import Reply
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=1.0, sim_init_s=0.5, ring_s=0.2, talk_s=30.0, ussd_s=0.2, rssi_period_s=5)
SLOT_COMMANDS = ("AT^SCICHG", "AT+QUIMSLOT", "AT+QDSIM", "AT+SMSIMCFG", "AT+GTDUALSIM")


def _sims(first: int, count: int, **extra: object) -> list[SimSpec]:
    return [
        SimSpec.model_validate(
            {"iccid": make_iccid(first + n), "registration_delay_s": 0.3, **extra}
        )
        for n in range(count)
    ]


def _bank(*modems: tuple[str, list[SimSpec]]) -> Scenario:
    specs = [
        ModemSpec(id=f"m{n}", dialect=dialect, slots=slots)  # type: ignore[arg-type]
        for n, (dialect, slots) in enumerate(modems, start=1)
    ]
    return Scenario(time_scale=1.0, timing=FAST, modems=specs)


@pytest.mark.parametrize("dialect", ["huawei-e3372", "quectel-ec21"])
async def test_a_single_slot_stick_comes_online_and_is_never_sent_a_slot_command(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str, at_log: AtLog, dialect: str
) -> None:
    scenario = _bank((dialect, _sims(300, 1)))
    async with running(tmp_path, mosquitto, base_topic, scenario) as rig:
        await rig.until(lambda: rig.modem("m1").get("state") == "ready")
        iccid = rig.bank.modems["m1"].slots[0].iccid  # type: ignore[union-attr]
        await rig.until(lambda: rig.modem("m1").get("iccid") == iccid)
        assert rig.modem("m1")["capabilities"]["slot_switch"] is False
        call = await rig.request("call", {"number": "+15550100001", "max_duration_s": 1})
        assert call["status"] == "ok", call
        assert call["data"]["iccid"] == iccid
    sent = at_log.of("m1")
    assert not [c for c in sent if c.upper().startswith(SLOT_COMMANDS)], sent
    assert len(rig.events("modem_online", modem="m1")) == 1
    assert not rig.events("modem_offline", modem="m1")


async def test_a_stick_configured_with_two_slots_works_on_its_one(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str, at_log: AtLog
) -> None:
    """The operator wrote ``slots = 2`` for a single-SIM stick: the probe finds no slot
    switching (AT^SCICHG? → ERROR), which is a capability, not a modem fault."""
    scenario = _bank(("huawei-e3372", _sims(310, 1)))
    async with running(tmp_path, mosquitto, base_topic, scenario, slots={"m1": 2}) as rig:
        await rig.until(lambda: rig.modem("m1").get("state") == "ready")
        await rig.until(lambda: rig.modem("m1").get("iccid"))
        assert rig.modem("m1")["capabilities"]["slot_switch"] is False
        # Several poll rounds: the modem stays up, no inventory is tried.
        polls = len([c for c in at_log.of("m1") if c == "AT+CSQ"])
        await rig.until(lambda: len([c for c in at_log.of("m1") if c == "AT+CSQ"]) >= polls + 3)
        select = await rig.request("sim/select", {"modem": "m1", "slot": 2})
        assert select["code"] == "validation_error", select
    assert len(rig.events("modem_online", modem="m1")) == 1
    assert not rig.events("modem_offline", modem="m1")
    slot_commands = [c for c in at_log.of("m1") if c.upper().startswith(SLOT_COMMANDS)]
    assert slot_commands == ["AT^SCICHG?"]  # the one probe, answered ERROR


async def test_the_sim_that_never_registers_is_the_one_blamed(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """After the slot inventory puts m1 back on a SIM that stays searching, every registration
    event and the stuck-searching verdicts name that SIM, never the healthy one read last; once
    it is blocked, m1 leaves it for the healthy SIM (a modem never rests on a SIM that cannot
    serve) and says why."""
    stuck, healthy = _sims(320, 2)
    stuck = SimSpec.model_validate({**stuck.model_dump(), "behaviour": "searching"})
    scenario = _bank(("quectel", [stuck, healthy]), ("quectel", _sims(330, 1)))
    detection = DetectionConfig(searching_timeout_s=2.0, denied_confirm_s=1.0)
    async with running(tmp_path, mosquitto, base_topic, scenario, detection=detection) as rig:
        await rig.until(lambda: rig.events("sim_suspected", iccid=stuck.iccid), timeout=60)
        await rig.until(lambda: rig.events("sim_blocked", iccid=stuck.iccid), timeout=60)

        def moved() -> list[dict[str, Any]]:
            return [
                e for e in rig.events("sim_rotated", modem="m1") if e.get("previous") == stuck.iccid
            ]

        await rig.until(moved, timeout=60)
        assert moved()[-1]["iccid"] == healthy.iccid, moved()
        assert moved()[-1].get("reason") == "blocked", moved()
        await rig.until(lambda: rig.modem("m1").get("iccid") == healthy.iccid)
        # The stuck SIM was reported searching under its own ICCID (a freshly selected SIM
        # may search for a moment too: that is not evidence, and no verdict names it).
        searching = [
            e for e in rig.events("registration_changed", modem="m1") if e["state"] == "searching"
        ]
        assert any(e["iccid"] == stuck.iccid for e in searching), searching
        assert not rig.events("sim_suspected", iccid=healthy.iccid)
        assert not rig.events("sim_blocked", iccid=healthy.iccid)
        assert rig.sim(healthy.iccid).get("state") in {"available", "active", "resting"}


@pytest.mark.timeout(180)  # a 40 s command (the SMS listing) may be the one that hangs
async def test_a_hang_is_noticed_after_one_missed_poll(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str, at_log: AtLog
) -> None:
    """After the first missed answer only bare ATs go out until the modem is declared
    unresponsive (before: a second full poll round had to time out too)."""
    scenario = _bank(("quectel", _sims(340, 1)))
    async with running(tmp_path, mosquitto, base_topic, scenario) as rig:
        await rig.until(lambda: rig.modem("m1").get("state") == "ready")
        await rig.until(lambda: rig.modem("m1").get("iccid"))
        hung_at = len(at_log.lines)
        at_log.mute.add("m1")  # it reads, and answers nothing
        await rig.until(lambda: rig.modem("m1").get("state") == "unresponsive", timeout=120)
        after = [text for _, mid, text in at_log.lines[hung_at:] if mid == "m1"]
        # (Recovery from the hang is test_daemon's: re-sync, reboot, re-open.)
    # The command that went unanswered, then nothing but the bare ATs that check the modem:
    # no second poll round had to time out first.
    assert after, "nothing was sent to the hung modem"
    assert after[0] != "AT", after
    assert after[1:] and all(c == "AT" for c in after[1:]), after


async def test_a_modem_failing_the_same_way_backs_off_and_is_published_failed_once(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str, at_log: AtLog
) -> None:
    """Its firmware refuses SMS text mode (AT+CMGF=1 → ERROR) every time it is set up: the
    modem never comes online, is published ``failed`` with the reason after the second try,
    with one event, and the retries back off exponentially — no online/offline flap per
    retry. The healthy modem beside it is not disturbed."""
    at_log.fail["m1"] = ("AT+CMGF",)
    scenario = _bank(("quectel", _sims(350, 1)), ("quectel", _sims(360, 1)))
    async with running(tmp_path, mosquitto, base_topic, scenario) as rig:
        sup = rig.daemon.runtime.supervisors["m1"]
        await rig.until(lambda: rig.modem("m1").get("state") == "failed", timeout=60)
        assert "CMGF" in (rig.modem("m1").get("reason") or "")
        await rig.until(lambda: len(sup.retry_delays) >= 4, timeout=60)
        await rig.until(lambda: rig.modem("m2").get("state") == "ready")
    delays = list(sup.retry_delays)[:4]
    # Each delay about doubles the last (±20 % jitter each: a ratio of 1.33 at the least).
    assert all(b > a * 1.3 for a, b in itertools.pairwise(delays)), delays
    assert len(rig.events("modem_failed", modem="m1")) == 1
    assert not rig.events("modem_online", modem="m1")
    assert not rig.events("modem_offline", modem="m1")


async def test_a_denial_without_a_cause_asks_ceer_and_the_cause_blocks_the_right_sim(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str, at_log: AtLog
) -> None:
    """The Fibocom model refuses +CREG=3, so a denial comes without its reject cause: the
    daemon asks AT+CEER once and the permanent cause (7) blocks the SIM at once, long before
    the denial alone would (denied_confirm_s)."""
    denied = SimSpec.model_validate(
        {**_sims(370, 1)[0].model_dump(), "behaviour": "denied", "reject_cause": 7}
    )
    scenario = _bank(("fibocom", [denied]), ("quectel", _sims(380, 1)))
    detection = DetectionConfig(denied_confirm_s=3600.0)
    async with running(tmp_path, mosquitto, base_topic, scenario, detection=detection) as rig:
        await rig.until(lambda: rig.events("sim_blocked", iccid=denied.iccid), timeout=60)
        blocked = rig.events("sim_blocked", iccid=denied.iccid)[0]
        assert blocked["reason"] == "reject_cause", blocked
        await rig.until(lambda: rig.sim(denied.iccid).get("state") == "blocked")
        evidence = rig.sim(denied.iccid)["block"]["evidence"]
        assert any(
            e["detail"].get("source") == "ceer" and e["detail"].get("cause") == 7 for e in evidence
        ), evidence
        assert rig.modem("m1")["capabilities"]["reject_causes"] is False
    assert at_log.of("m1").count("AT+CEER") == 1  # asked once for the denial


async def test_a_sim_blocked_cme_code_locks_the_sim(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str, at_log: AtLog
) -> None:
    """AT+CPIN? answered +CME ERROR: 262 (SIM blocked): the code reaches the detector and the
    SIM is locked with reason sim_blocked (before, the code was dropped on the way)."""
    at_log.answer[("m1", "AT+CPIN?")] = Reply(final="+CME ERROR: 262")
    card = _sims(390, 1)[0]
    scenario = _bank(("quectel", [card]))
    async with running(tmp_path, mosquitto, base_topic, scenario) as rig:
        await rig.until(lambda: rig.events("sim_locked", iccid=card.iccid), timeout=60)
        await rig.until(lambda: rig.sim(card.iccid).get("state") == "locked")
        assert rig.sim(card.iccid)["block"]["reason"] == "sim_blocked"


async def test_peers_count_only_on_the_sims_own_network_with_a_three_digit_mnc(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """The home network is MCC + MNC of the length the SIM's EF_AD gives: a SIM of 001-010
    searching while a SIM of 001-011 registers has no registered peer (before, both were
    "00101", imsi[:5], and a SIM could be suspected for another carrier's coverage); a SIM of
    001-020 with a registered peer of 001-020 is suspected as before. (Test network MCC 001,
    3-digit MNCs declared in EF_AD.)"""

    def card(serial: int, imsi: str, **extra: object) -> SimSpec:
        spec = {"iccid": make_iccid(serial), "imsi": imsi, "mnc_length": 3, **extra}
        return SimSpec.model_validate({"registration_delay_s": 0.3, **spec})

    lonely = card(400, "001010000000401", behaviour="searching")
    other_carrier = card(401, "001011000000402")
    stuck = card(402, "001020000000403", behaviour="searching")
    peer = card(403, "001020000000404")
    scenario = _bank(
        ("quectel-ec21", [lonely]),
        ("quectel-ec21", [other_carrier]),
        ("quectel-ec21", [stuck]),
        ("quectel-ec21", [peer]),
    )
    detection = DetectionConfig(searching_timeout_s=2.0)
    async with running(tmp_path, mosquitto, base_topic, scenario, detection=detection) as rig:
        await rig.until(lambda: rig.events("sim_suspected", iccid=stuck.iccid), timeout=60)
        await asyncio.sleep(3)  # as long again: the lonely SIM had the same time
        assert not rig.events("sim_suspected", iccid=lonely.iccid)
        assert rig.sim(other_carrier.iccid).get("state") in {"available", "active"}


async def test_an_iccid_failing_its_check_digit_is_a_warning_never_a_lockout(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """A card whose ICCID fails the Luhn check (read identically twice) is used like any other,
    with a warning on the SIM; before, the modem failed its session and flapped for good."""
    good = make_iccid(410)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)  # the same card, a wrong check digit
    card = SimSpec.model_validate({"iccid": bad, "registration_delay_s": 0.3})
    async with running(tmp_path, mosquitto, base_topic, _bank(("quectel-ec21", [card]))) as rig:
        await rig.until(lambda: rig.modem("m1").get("iccid") == bad, timeout=60)
        await rig.until(lambda: rig.sim(bad).get("warnings") == ["iccid_check_digit"])
        call = await rig.request("call", {"number": "+15550100001", "max_duration_s": 1})
        assert call["status"] == "ok", call
        assert call["data"]["iccid"] == bad
    assert len(rig.events("modem_online", modem="m1")) == 1
    assert not rig.events("modem_offline", modem="m1")


async def test_a_card_whose_iccid_cannot_be_read_leaves_the_modem_in_service(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str, at_log: AtLog
) -> None:
    """The card in slot 1 refuses every ICCID command (a failed card): the modem still comes
    online (no SIM attributed) and its other slot is reached by the inventory and used."""
    at_log.fail["m1"] = ("AT+QCCID", "AT+CCID", "AT+CRSM=176,12258")
    at_log.fail_slot["m1"] = 1
    broken, good = _sims(420, 2)
    scenario = _bank(("quectel", [broken, good]))
    async with running(tmp_path, mosquitto, base_topic, scenario) as rig:
        await rig.until(lambda: rig.modem("m1").get("state") == "ready", timeout=60)
        await rig.until(lambda: rig.sim(good.iccid).get("slot") == 2, timeout=60)
        call = await rig.request("call", {"number": "+15550100001", "max_duration_s": 1})
        assert call["status"] == "ok", call
        assert call["data"]["iccid"] == good.iccid
    assert not rig.events("modem_failed", modem="m1")
