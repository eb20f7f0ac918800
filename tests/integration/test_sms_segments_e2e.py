"""A long SMS end to end over PTYs and a real mosquitto: the daemon books every segment of a
400-character UCS-2 text against the SIM's quota before it sends (``usage.sms_day`` == 6),
answers every segment's reference, and a SIM without room for all six segments is refused
``quota_exhausted`` naming the segments needed and left, with nothing sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from bankrig import running

from simbank.config.models import PolicyConfig
from simbank.mosquitto import PrivateMosquitto
from simbank.simulator import Scenario
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid
from simbank.sms.segments import segment

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=1.0, sim_init_s=0.5, ring_s=0.2, talk_s=30.0, ussd_s=0.2, rssi_period_s=5)
NUMBER = "+447700900123"  # fictional (Ofcom drama range)
#: 400 characters outside GSM-7: UCS-2, 67 per part → 6 segments.
LONG_TEXT = ("你好世界，这是一条很长的短信。" * 27)[:400]


def one_modem(slots: int = 1) -> Scenario:
    """One modem; with two SIMs, no slot is empty (an empty slot makes a refusal
    ``no_eligible_sim``)."""
    sims = [
        SimSpec.model_validate({"iccid": make_iccid(500 + n), "registration_delay_s": 0.3})
        for n in range(slots)
    ]
    return Scenario(
        time_scale=1.0,
        timing=FAST,
        # One SIM: a single-slot model (no empty slot 2 to tour and wait out).
        modems=[ModemSpec(id="m1", dialect="quectel" if slots > 1 else "quectel-ec21", slots=sims)],
    )


def test_the_text_is_six_segments() -> None:
    assert len(LONG_TEXT) == 400
    assert segment(LONG_TEXT).count == 6


async def test_a_long_text_books_and_sends_every_segment(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with running(tmp_path, mosquitto, base_topic, one_modem()) as rig:
        await rig.inventory_done()
        await rig.until(rig.modems_ready)
        sent = await rig.request("sms/send", {"number": NUMBER, "text": LONG_TEXT})
        assert sent["status"] == "ok", sent
        data = sent["data"]
        iccid = data["iccid"]
        assert data["segments"] == 6
        assert len(data["references"]) == 6
        assert data["reference"] == data["references"][0]
        await rig.until(lambda: rig.sim(iccid).get("usage", {}).get("sms_day") == 6)
        records = rig.daemon.ledger.usage_records(iccid, 0)
        assert [r.outcome for r in records] == ["sent"] * 6
        # What reached the network: six segments of one concatenated message, in order.
        reached = rig.bank.carrier.stats.sms_segments_by_iccid[iccid]
        assert [s.concat[1:] if s.concat else None for s in reached] == [
            (6, n) for n in range(1, 7)
        ]
        assert "".join(s.text for s in reached) == LONG_TEXT


async def test_a_text_over_the_sims_quota_is_refused_and_not_sent(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    policy = PolicyConfig(sms_per_day=5)
    async with running(tmp_path, mosquitto, base_topic, one_modem(2), policy=policy) as rig:
        await rig.inventory_done()
        await rig.until(rig.modems_ready)
        refused = await rig.request("sms/send", {"number": NUMBER, "text": LONG_TEXT})
        assert refused["status"] == "error", refused
        assert refused["code"] == "quota_exhausted"
        detail = refused["detail"]
        assert "sms_per_day" in detail["limits"]
        assert (detail["segments_needed"], detail["segments_remaining"]) == (6, 5)
        assert "frees_at" not in detail  # six never fit a day of five
        assert not rig.bank.modems["m1"].sent_sms
        assert rig.bank.carrier.stats.sms == 0
        for card in rig.bank.modems["m1"].slots:
            assert card is not None
            assert rig.daemon.ledger.usage_records(card.iccid, 0) == []
        # A text that fits still goes.
        ok = await rig.request("sms/send", {"number": NUMBER, "text": "hello"})
        assert ok["status"] == "ok", ok
        assert (ok["data"]["segments"], len(ok["data"]["references"])) == (1, 1)


async def test_a_text_only_modem_is_not_charged_for_a_text_it_cannot_send(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """A modem without PDU mode (probed) sends GSM-7 in text mode; a text outside GSM-7 is
    refused ``validation_error`` before anything is booked (found in review: it used to book
    every segment, then fail)."""
    sim = SimSpec.model_validate({"iccid": make_iccid(540), "registration_delay_s": 0.3})
    scenario = Scenario(
        time_scale=1.0,
        timing=FAST,
        modems=[ModemSpec(id="m1", dialect="generic-textonly", slots=[sim])],
    )
    async with running(tmp_path, mosquitto, base_topic, scenario) as rig:
        await rig.until(rig.modems_ready)
        assert rig.modem("m1")["capabilities"]["pdu_mode"] is False
        refused = await rig.request("sms/send", {"number": NUMBER, "text": LONG_TEXT})
        assert refused["code"] == "validation_error", refused
        refused = await rig.request("sms/send", {"number": NUMBER, "text": "你好", "modem": "m1"})
        assert refused["code"] == "validation_error", refused
        assert rig.daemon.ledger.usage_records(sim.iccid, 0) == []
        ok = await rig.request("sms/send", {"number": NUMBER, "text": "plain text"})
        assert ok["status"] == "ok", ok
        (sent,) = rig.bank.carrier.stats.sms_segments_by_iccid[sim.iccid]
        assert (sent.text, sent.coding) == ("plain text", "text")
