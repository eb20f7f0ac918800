"""The bank end to end over PTYs and a real mosquitto: quotas, rotation, blocks, the circuit
breaker, operator commands and every malformed request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bankrig import running

from simbank.config.models import DetectionConfig, PolicyConfig
from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=1.0, sim_init_s=0.5, ring_s=0.2, talk_s=30.0, ussd_s=0.2, rssi_period_s=5)


def sims(first: int, count: int, **extra: object) -> list[SimSpec]:
    return [
        SimSpec.model_validate(
            {"iccid": make_iccid(first + n), "registration_delay_s": 0.3, **extra}
        )
        for n in range(count)
    ]


def two_slot_bank(*behaviours: dict[str, object]) -> Scenario:
    modems = []
    for index, extra in enumerate(behaviours or ({},)):
        slots = sims(100 + 10 * index, 2)
        if extra:
            slots[0] = SimSpec.model_validate({**slots[0].model_dump(), **extra})
        modems.append(ModemSpec(id=f"m{index + 1}", dialect="quectel", slots=slots))
    return Scenario(time_scale=1.0, timing=FAST, modems=modems)


async def test_quota_exhaustion_rotates_to_the_other_sim(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    policy = PolicyConfig(calls_per_hour=2, min_call_gap_s=0, calls_per_destination_per_day=10)
    async with running(tmp_path, mosquitto, base_topic, two_slot_bank(), policy=policy) as rig:
        await rig.inventory_done()
        slot1, slot2 = (s.iccid for s in rig.bank.modems["m1"].slots if s is not None)
        answers = []
        for n in range(3):
            answers.append(
                await rig.request("call", {"number": f"+1555010{n:04d}", "max_duration_s": 1})
            )
        assert [a["status"] for a in answers] == ["ok"] * 3, answers
        assert [a["data"]["iccid"] for a in answers] == [slot1, slot1, slot2]
        assert all(a["data"]["outcome"] == "completed" for a in answers)
        rotated = rig.events("sim_rotated", modem="m1", iccid=slot2)
        assert rotated and rotated[-1]["previous"] == slot1
        await rig.until(lambda: rig.events("quota_exhausted", iccid=slot1))
        await rig.until(lambda: rig.sim(slot1).get("state") == "resting")
        assert rig.sim(slot1)["usage"]["calls_hour"] == 2
        assert rig.sim(slot1)["limits"]["calls_per_hour"] == 2
        # The simulator agrees: the ICCID that made the third call is the one in slot 2.
        assert rig.bank.carrier.stats.calls_by_iccid[slot2] == 1
        assert rig.bank.modems["m1"].active_slot == 2


async def test_both_sims_exhausted_names_the_limit(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    policy = PolicyConfig(calls_per_hour=1, min_call_gap_s=0, calls_per_destination_per_day=10)
    async with running(tmp_path, mosquitto, base_topic, two_slot_bank(), policy=policy) as rig:
        await rig.inventory_done()
        for n in range(2):
            ok = await rig.request("call", {"number": f"+1555010{n:04d}", "max_duration_s": 1})
            assert ok["status"] == "ok", ok
        refused = await rig.request("call", {"number": "+15550100099", "max_duration_s": 1})
        assert refused["status"] == "error"
        assert refused["code"] == "quota_exhausted"
        assert "calls_per_hour" in refused["detail"]["limits"]
        assert refused["detail"]["frees_at"]


async def test_denial_blocks_with_evidence_and_release(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with running(tmp_path, mosquitto, base_topic, two_slot_bank({}, {})) as rig:
        await rig.inventory_done()
        await rig.until(rig.modems_ready)
        iccid = rig.modem("m1")["iccid"]
        rig.bank.sim(iccid).deny(7)
        await rig.until(lambda: rig.events("sim_blocked", iccid=iccid))
        event = rig.events("sim_blocked", iccid=iccid)[0]
        assert event["reason"] == "reject_cause"
        assert event["evidence"] and event["evidence"][-1]["detail"]["reject_cause"] == 7
        await rig.until(lambda: rig.sim(iccid).get("state") == "blocked")
        assert rig.sim(iccid)["block"]["reason"] == "reject_cause"
        assert rig.sim(iccid)["block"]["evidence"]
        report = await rig.request("sim/report", {"iccid": iccid})
        assert report["status"] == "ok"
        assert report["data"]["state"] == "blocked"
        assert report["data"]["evidence"]
        # A call to m1 now goes to the other SIM: the blocked one is quarantined.
        call = await rig.request(
            "call", {"number": "+15550100001", "max_duration_s": 1, "modem": "m1"}
        )
        assert call["status"] == "ok", call
        assert call["data"]["iccid"] != iccid
        released = await rig.request("sim/release", {"iccid": iccid, "note": "carrier ticket 42"})
        assert released["status"] == "ok"
        assert released["data"]["was"] == "blocked"
        await rig.until(lambda: rig.events("sim_released", iccid=iccid))
        again = await rig.request("sim/release", {"iccid": iccid, "note": "twice"})
        assert again["code"] == "not_permitted"


async def test_puk_locks_and_barred_calls_block(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    scenario = two_slot_bank({"behaviour": "puk"}, {})
    async with running(tmp_path, mosquitto, base_topic, scenario) as rig:
        puk_iccid = rig.bank.modems["m1"].slots[0].iccid  # type: ignore[union-attr]
        await rig.until(lambda: rig.events("sim_locked", iccid=puk_iccid))
        await rig.until(lambda: rig.sim(puk_iccid).get("state") == "locked")
        await rig.inventory_done()
        await rig.until(lambda: rig.modem("m2").get("iccid"))
        # Every SIM of m2 is barred: whichever one the planner uses (it may rotate to the
        # other slot), the call fails with cause 8 and that SIM is blocked.
        for card in rig.bank.modems["m2"].slots:
            if card is not None:
                rig.bank.sim(card.iccid).bar()
        answer = await rig.request(
            "call", {"number": "+15550100002", "max_duration_s": 1, "modem": "m2"}
        )
        assert answer["status"] == "ok"
        barred = answer["data"]["iccid"]
        assert answer["data"]["outcome"] == "failed"
        assert answer["data"]["cause"] == 8
        await rig.until(lambda: rig.events("sim_blocked", iccid=barred))
        assert rig.events("sim_blocked", iccid=barred)[0]["reason"] == "calls_barred"


async def test_a_sim_that_locks_in_service_is_seen_at_once(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """A card that re-initialises on its own asking for its PUK (+CPIN: SIM PUK, no switch
    by us) is read again at once: quarantined as locked, and the modem moves on."""
    async with running(tmp_path, mosquitto, base_topic, two_slot_bank({})) as rig:
        await rig.inventory_done()
        await rig.until(rig.modems_ready)
        iccid = rig.modem("m1")["iccid"]
        rig.bank.sim(iccid).set_behaviour("puk")
        await rig.until(lambda: rig.events("sim_locked", iccid=iccid), timeout=10)
        await rig.until(lambda: rig.sim(iccid).get("state") == "locked")
        answer = await rig.request("call", {"number": "+15550100002", "max_duration_s": 1})
        assert answer["status"] == "ok", answer
        assert answer["data"]["iccid"] != iccid


async def test_two_blocks_open_the_circuit_until_resumed(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with running(tmp_path, mosquitto, base_topic, two_slot_bank({}, {})) as rig:
        await rig.inventory_done()
        await rig.until(rig.modems_ready)
        for modem in ("m1", "m2"):
            rig.bank.sim(rig.modem(modem)["iccid"]).deny(8)
        await rig.until(lambda: rig.events("circuit_opened"))
        refused = await rig.request("call", {"number": "+15550100003", "max_duration_s": 1})
        assert refused["code"] == "circuit_open"
        status = await rig.request("status")
        assert status["data"]["traffic"]["circuit_open"] is True
        resumed = await rig.request("traffic/resume", {"reason": "carrier confirmed"})
        assert resumed["status"] == "ok"
        await rig.until(lambda: rig.events("circuit_closed"))
        ok = await rig.request("call", {"number": "+15550100004", "max_duration_s": 1})
        assert ok["status"] == "ok", ok
        paused = await rig.request("traffic/pause", {"reason": "maintenance"})
        assert paused["status"] == "ok"
        refused = await rig.request("sms/send", {"number": "+15550100005", "text": "hi"})
        assert refused["code"] == "circuit_open"


async def test_stuck_searching_is_suspected_then_blocked(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    detection = DetectionConfig(searching_timeout_s=2.0, denied_confirm_s=1.0)
    async with running(
        tmp_path, mosquitto, base_topic, two_slot_bank({}, {}), detection=detection
    ) as rig:
        await rig.inventory_done()
        await rig.until(rig.modems_ready)
        iccid = rig.modem("m1")["iccid"]
        rig.bank.sim(iccid).searching()
        await rig.until(lambda: rig.events("sim_suspected", iccid=iccid), timeout=20)
        await rig.until(lambda: rig.events("sim_blocked", iccid=iccid), timeout=30)
        assert rig.events("sim_blocked", iccid=iccid)[0]["reason"] == "stuck_searching"


async def test_malformed_requests_get_error_responses(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with running(tmp_path, mosquitto, base_topic, two_slot_bank()) as rig:
        await rig.until(rig.modems_ready)
        cases = [
            ("call", b"not json", "invalid_json"),
            ("call", b"[1, 2]", "validation_error"),
            ("call", b'{"number": 5, "max_duration_s": "long"}', "validation_error"),
            ("call", b'{"number": "+15550100001"}', "validation_error"),
            (
                "call",
                b'{"number": "+15550100001", "max_duration_s": 5, "extra": 1}',
                "validation_error",
            ),
            ("launch/rockets", b"{}", "unknown_command"),
            ("sim/rotate", b'{"modem": "m9"}', "unknown_modem"),
            ("sim/report", b'{"iccid": "8999000000000000000"}', "unknown_sim"),
            ("call", b'{"pad": "' + b"x" * 20000 + b'"}', "validation_error"),
            ("sim/select", b'{"modem": "m1", "slot": 7}', "validation_error"),
        ]
        for command, body, code in cases:
            answer = await rig.request(command, body)
            assert answer["status"] == "error", (command, body[:40], answer)
            assert answer["code"] == code, (command, body[:40], answer)
            assert answer["error"]
        # The daemon carried on: a good request still works.
        status = await rig.request("status")
        assert status["status"] == "ok"
        assert set(status["data"]["modems"]) == {"m1"}


async def test_repeated_transaction_acts_once(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    policy = PolicyConfig(calls_per_hour=10, min_call_gap_s=0, calls_per_destination_per_day=10)
    async with running(tmp_path, mosquitto, base_topic, two_slot_bank(), policy=policy) as rig:
        await rig.inventory_done()
        payload = {"number": "+15550100007", "max_duration_s": 1, "transaction": "t-1"}
        first = await rig.request("call", payload)
        second = await rig.request("call", payload)
        assert first["status"] == "ok"
        assert second == first
        assert rig.bank.carrier.stats.calls == 1
        usage = rig.daemon.ledger.usage_records(first["data"]["iccid"], 0)
        assert len(usage) == 1


async def test_sms_send_and_inbound_sms(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with running(tmp_path, mosquitto, base_topic, two_slot_bank()) as rig:
        await rig.inventory_done()
        await rig.until(rig.modems_ready)
        sent = await rig.request("sms/send", {"number": "+15550100008", "text": "hello"})
        assert sent["status"] == "ok", sent
        iccid = sent["data"]["iccid"]
        assert rig.bank.modems["m1"].sent_sms
        await rig.until(lambda: rig.sim(iccid).get("usage", {}).get("sms_day") == 1)
        rig.bank.send_sms(iccid, "+15550100009", "your code is 1234")
        await rig.until(lambda: rig.events("sms_received", iccid=iccid))
        event = rig.events("sms_received", iccid=iccid)[0]
        assert event["text"] == "your code is 1234"
        assert "15550100009" not in json.dumps(event)
        stored = rig.daemon.ledger.inbound_sms(iccid)
        assert [m.text for m in stored] == ["your code is 1234"]
        # Deleted from the modem only after it was stored.
        card = rig.bank.sim(iccid)
        await rig.until(lambda: not card.sms)
        # An operator message with a suspension keyword makes the SIM suspected.
        rig.bank.send_sms(iccid, "TESTNET", "Your line has been suspended, call support")
        await rig.until(lambda: rig.events("sim_suspected", iccid=iccid))
        assert rig.events("sim_suspected", iccid=iccid)[0]["reason"] == "operator_message"
        await rig.until(lambda: rig.sim(iccid).get("state") == "suspected")


async def test_operator_commands(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with running(tmp_path, mosquitto, base_topic, two_slot_bank()) as rig:
        await rig.inventory_done()
        await rig.until(rig.modems_ready)
        slot1, slot2 = (s.iccid for s in rig.bank.modems["m1"].slots if s is not None)
        selected = await rig.request("sim/select", {"modem": "m1", "slot": 2})
        assert selected["status"] == "ok", selected
        assert selected["data"]["iccid"] == slot2
        disabled = await rig.request("sim/disable", {"iccid": slot2})
        assert disabled["data"]["state"] == "disabled"
        await rig.until(lambda: rig.sim(slot2).get("state") == "disabled")
        # The disabled SIM is never used: a call rotates back to slot 1.
        call = await rig.request("call", {"number": "+15550100010", "max_duration_s": 1})
        assert call["data"]["iccid"] == slot1
        enabled = await rig.request("sim/enable", {"iccid": slot2})
        assert enabled["status"] == "ok"
        ussd = await rig.request("ussd", {"modem": "m1", "code": "*100#"})
        assert ussd["status"] == "ok", ussd
        assert "balance" in ussd["data"]["text"].lower()
        reset = await rig.request("modem/reset", {"modem": "m1"}, timeout=60)
        assert reset["status"] == "ok", reset
        report = await rig.request("sim/report", {"iccid": slot1})
        actions = [a["action"] for a in report["data"]["audit"]]
        assert "sim_switched" in actions or "sim_select" in actions
        assert all(
            u["destination"] is None or "5550100" not in u["destination"]
            for u in report["data"]["usage"]
        )
