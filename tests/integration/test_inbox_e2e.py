"""The inbox end to end over PTYs and a real mosquitto.

- A 3-part UCS-2 message whose third part arrives while the daemon is down (the first two were
  stored, as parts, before it stopped) is reassembled once after the restart, and announced
  once.
- ``sms/list`` returns what arrived while no subscriber was connected, the retained
  ``sms_unread`` count says it is there, ``sms/ack`` clears it.
- A delivery report is matched to the send it answers (``sms_delivered`` with the request's
  transaction), and a failing destination gives ``sms_failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bankrig import make_config, running

from simbank.clock import ScaledClock
from simbank.config.models import Config, PolicyConfig, SmsConfig
from simbank.contract import Topics
from simbank.daemon.app import Daemon
from simbank.mosquitto import PrivateMosquitto
from simbank.mqtt import RequestClient, StateWatcher
from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid
from simbank.sms.segments import segment

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=1.0, sim_init_s=0.5, ring_s=0.2, talk_s=30.0, ussd_s=0.2, rssi_period_s=5)
SENDER = "+447700900456"  # fictional (Ofcom drama range)
DESTINATION = "+447700900123"
#: Three UCS-2 parts (67 characters each at most).
LONG_TEXT = ("Привет! Ваш тариф изменён с 1 января. " * 5)[:190]


def one_modem(serial: int, dialect: str = "quectel-ec21") -> Scenario:
    """One single-slot modem (no empty second slot to tour and wait out)."""
    sim = SimSpec.model_validate({"iccid": make_iccid(serial), "registration_delay_s": 0.3})
    return Scenario(
        time_scale=1.0, timing=FAST, modems=[ModemSpec(id="m1", dialect=dialect, slots=[sim])]
    )


@contextlib.asynccontextmanager
async def daemon_up(cfg: Config) -> AsyncIterator[Daemon]:
    daemon = Daemon(cfg, clock=ScaledClock(1.0))
    stop = asyncio.Event()
    task = asyncio.create_task(daemon.run(stop), name="test-daemon")
    try:
        await asyncio.wait_for(daemon.bridge.wait_connected(), 20)
        yield daemon
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def until(predicate: object, timeout: float = 20.0) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def test_the_text_is_three_parts() -> None:
    assert segment(LONG_TEXT).count == 3


async def test_a_three_part_message_across_a_restart_is_kept_once_and_listed(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with SimulatedBank(one_modem(610), directory=tmp_path / "ports") as bank:
        cfg = make_config(tmp_path, mosquitto, base_topic, bank)
        modem = bank.modems["m1"]
        assert modem.sim is not None
        iccid = modem.sim.iccid
        card = bank.sim(iccid)
        async with daemon_up(cfg) as first:
            await until(lambda: first.runtime.supervisors["m1"].iccid == iccid)
            bank.deliver_sms_parts(iccid, SENDER, LONG_TEXT, sequences=[1, 2], reference=77)
            await until(lambda: first.ledger.waiting_parts() == 2 and not card.sms)
            assert first.ledger.inbound_sms(iccid) == []
        # Part 3 arrives while the daemon is down: it waits on the SIM.
        bank.deliver_sms_parts(iccid, SENDER, LONG_TEXT, sequences=[3], reference=77)
        assert len(card.sms) == 1
        async with daemon_up(cfg) as second:
            await until(lambda: len(second.ledger.inbound_sms(iccid)) == 1 and not card.sms)
            (sms,) = second.ledger.inbound_sms(iccid)
            assert sms.text == LONG_TEXT and sms.parts == 3 and sms.missing == ()
            assert second.ledger.waiting_parts() == 0
            # Nobody listened to the event: a consumer connecting now catches up.
            topics = Topics(base_topic, "gw1")
            watcher = StateWatcher(cfg.mqtt, base_topic, f"late-{base_topic}", gateway="gw1")
            watch = asyncio.create_task(watcher.run())
            try:
                await until(lambda: watcher.state.get(topics.sim(iccid), {}).get("sms_unread") == 1)
                async with RequestClient(cfg.mqtt, topics, f"late-client-{base_topic}") as client:
                    listed = await client.request("sms/list", {"iccid": iccid, "unread": True})
                    assert listed["status"] == "ok", listed
                    (message,) = listed["data"]["messages"]
                    assert message["text"] == LONG_TEXT and message["parts"] == 3
                    assert message["sender"] != SENDER and message["sender"].endswith("56")
                    assert listed["data"]["next"] is None and listed["data"]["unread"] == 1
                    acked = await client.request("sms/ack", {"ids": [message["id"]]})
                    assert acked["status"] == "ok" and acked["data"]["acked"] == 1, acked
                    await until(
                        lambda: watcher.state.get(topics.sim(iccid), {}).get("sms_unread") == 0
                    )
                    again = await client.request("sms/list", {"iccid": iccid, "unread": True})
                    assert again["data"]["messages"] == []
                    everything = await client.request("sms/list", {"modem": "m1"})
                    assert [m["acked"] for m in everything["data"]["messages"]] == [True]
            finally:
                watch.cancel()
                await asyncio.gather(watch, return_exceptions=True)
        # One message, announced once in all: the parts were never a message of their own.
        assert len(bank.sim(iccid).sms) == 0


async def test_received_messages_are_listed_paged_forwarded_and_read_for_notices(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """One gateway, several messages:

    - ``sms/list`` pages them in arrival order, ``sms/ack`` by ``up_to`` clears the unread
      count, bad requests are refused ``validation_error``;
    - ``[sms] forward_command`` gets each message (a 3-part one once) as JSON on stdin, with
      the sender masked as the event shows it;
    - China Unicom's notices are in Chinese: read in PDU mode (UCS-2), the default keyword
      停机 ('service stopped') matches and the SIM is suspected with the notice as evidence.
    """
    out = tmp_path / "forwarded.jsonl"
    script = tmp_path / "forward.py"
    script.write_text(
        "import os, sys\n"
        "line = sys.stdin.read()\n"
        f"with open({str(out)!r}, 'a', encoding='utf-8') as f:\n"
        "    f.write(os.environ['SIMBANK_SMS_ID'] + ' ' + line)\n"
    )
    sms = SmsConfig(forward_command=[sys.executable, str(script)], forward_timeout_s=20)
    async with running(tmp_path, mosquitto, base_topic, one_modem(611), sms=sms) as rig:
        await rig.until(rig.modems_ready)
        iccid = rig.bank.modems["m1"].sim.iccid  # type: ignore[union-attr]
        for n in range(4):
            rig.bank.send_sms(iccid, SENDER, f"message {n}")
        rig.bank.send_sms(iccid, SENDER, LONG_TEXT)
        await rig.until(lambda: len(rig.events("sms_received")) == 5)
        assert rig.events("sms_received")[0]["sender"] != SENDER
        first = await rig.request("sms/list", {"iccid": iccid, "limit": 2})
        texts = [m["text"] for m in first["data"]["messages"]]
        second = await rig.request("sms/list", {"after": first["data"]["next"], "limit": 2})
        third = await rig.request("sms/list", {"after": second["data"]["next"], "limit": 2})
        texts += [m["text"] for m in second["data"]["messages"] + third["data"]["messages"]]
        assert texts == [*(f"message {n}" for n in range(4)), LONG_TEXT]
        assert third["data"]["next"] is None
        await rig.until(lambda: rig.sim(iccid).get("sms_unread") == 5)
        acked = await rig.request("sms/ack", {"iccid": iccid, "up_to": first["data"]["next"]})
        assert acked["data"] == {"acked": 2, "unread": {iccid: 3}}
        for bad in ({}, {"ids": []}, {"ids": ["x"]}, {"iccid": iccid}):
            refused = await rig.request("sms/ack", bad)
            assert refused["code"] == "validation_error", (bad, refused)
        refused = await rig.request("sms/list", {"limit": 1000})
        assert refused["code"] == "validation_error"

        await rig.until(lambda: out.exists() and len(out.read_text().splitlines()) == 5)
        lines = out.read_text(encoding="utf-8").splitlines()
        documents = [json.loads(line.split(" ", 1)[1]) for line in lines]
        assert sorted(d["text"] for d in documents) == sorted(texts)
        assert all(
            line.split(" ", 1)[0] == str(d["id"]) for line, d in zip(lines, documents, strict=True)
        )
        assert all(d["iccid"] == iccid and d["sender"] != SENDER for d in documents)
        assert SENDER not in out.read_text(encoding="utf-8")

        rig.bank.send_sms(iccid, "10010", "尊敬的客户，您的号码因违规已停机，请联系客服。")
        await rig.until(lambda: rig.sim(iccid).get("state") == "suspected")
        (event,) = rig.events("sim_suspected", iccid=iccid)
        assert event["reason"] == "operator_message"
        notice = rig.events("sms_received")[-1]
        assert notice["sender"] == "10010" and "停机" in notice["text"]
        # This policy sets no balance code: a balance check is refused, not sent.
        no_code = await rig.request("balance/check", {"modem": "m1"})
        assert no_code["code"] == "validation_error", no_code


async def test_delivery_reports_are_matched_to_their_send(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    policy = PolicyConfig(quiet_hours=[], sms_status_report=True)
    async with running(tmp_path, mosquitto, base_topic, one_modem(612), policy=policy) as rig:
        await rig.until(rig.modems_ready)
        sent = await rig.request(
            "sms/send", {"number": DESTINATION, "text": "hello", "transaction": "t-ok"}
        )
        assert sent["status"] == "ok", sent
        assert sent["data"]["status_report"] is True
        await rig.until(lambda: rig.events("sms_delivered", transaction="t-ok"))
        (delivered,) = rig.events("sms_delivered")
        assert delivered["message"] == sent["data"]["message"]
        assert (delivered["segments"], delivered["delivered"]) == (1, 1)
        # A destination the network cannot reach: the report says failed.
        rig.bank.carrier.fail_delivery(DESTINATION, 0x41)
        iccid = sent["data"]["iccid"]
        # Inbound messages arrive while the 2-part send runs: the pickup's PDU-mode reads
        # never interleave with the send's (each switches AT+CMGF).
        for n in range(3):
            rig.bank.send_sms(iccid, SENDER, f"meanwhile {n}")
        failed = await rig.request(
            "sms/send", {"number": DESTINATION, "text": "x" * 200, "transaction": "t-bad"}
        )
        assert failed["status"] == "ok" and failed["data"]["segments"] == 2
        await rig.until(lambda: rig.events("sms_failed", transaction="t-bad"))
        (event,) = rig.events("sms_failed")
        assert event["status_code"] == 0x41 and event["message"] == failed["data"]["message"]
        await rig.until(lambda: len(rig.events("sms_received")) == 3)
        segments = rig.bank.carrier.stats.sms_segments_by_iccid[iccid]
        assert {s.destination for s in segments} == {DESTINATION}
        report = await rig.request("sim/report", {"iccid": iccid})
        assert report["data"]["sms"]["sent"] == {
            "delivered": 1,
            "failed": 1,
            "pending": 0,
            "unreported": 0,
        }
        # Not asked for: no report, no event.
        quiet = await rig.request(
            "sms/send", {"number": DESTINATION, "text": "hi", "status_report": False}
        )
        assert quiet["data"]["status_report"] is False
        report = await rig.request("sim/report", {"iccid": iccid})
        assert report["data"]["sms"]["sent"]["unreported"] == 1


async def test_reports_that_come_while_the_message_is_still_being_sent_are_matched(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """A network that reports at once: segment 1's report arrives while segments 2..6 are
    still being sent, before the send is recorded; it is kept and matched afterwards (found
    in review: it used to be dropped, and sms_delivered never came)."""
    timing = FAST.model_copy(update={"status_report_s": 0.0})
    sim = SimSpec.model_validate({"iccid": make_iccid(615), "registration_delay_s": 0.3})
    scenario = Scenario(
        time_scale=1.0,
        timing=timing,
        modems=[ModemSpec(id="m1", dialect="quectel-ec21", slots=[sim])],
    )
    policy = PolicyConfig(quiet_hours=[], sms_status_report=True)
    async with running(tmp_path, mosquitto, base_topic, scenario, policy=policy) as rig:
        await rig.until(rig.modems_ready)
        sent = await rig.request(
            "sms/send", {"number": DESTINATION, "text": "y" * 900, "transaction": "t-fast"}
        )
        assert sent["status"] == "ok" and sent["data"]["segments"] == 6, sent
        await rig.until(lambda: rig.events("sms_delivered", transaction="t-fast"))
        (event,) = rig.events("sms_delivered")
        assert (event["segments"], event["delivered"]) == (6, 6)
