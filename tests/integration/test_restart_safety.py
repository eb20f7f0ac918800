"""Restart safety (issue 6 part 4): SIGKILL during calls, SMS and SIM switches.

After every restart the ledger is consistent, the modem's SIM is identified again by reading
its ICCID, no action is carried out twice (a transaction started before the kill is answered
``interrupted``, never re-run), and every inbound SMS is stored exactly once — including those
that arrived while the daemon was down or were stored but not yet deleted when it died.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from killloop import Figures, KillLoop
from killrig import KillRig, Policy, fast_modem, kill_rig

from simbank.mosquitto import PrivateMosquitto
from simbank.store.secret import DestinationHasher, load_or_create_secret

pytestmark = pytest.mark.integration


async def _restarted(rig: KillRig) -> None:
    rig.reap()
    rig.start()
    await rig.ready()


async def test_a_retry_after_sigkill_mid_call_is_answered_interrupted_not_dialled_again(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with kill_rig(tmp_path, mosquitto, base_topic, fast_modem(700)) as rig:
        rig.start()
        await rig.ready()
        payload = {"number": "+15550100021", "max_duration_s": 5, "transaction": "call-1"}
        rig.taps.kill_on = "dial"  # killed after ATD set the call up, before the answer
        with pytest.raises(TimeoutError):
            await rig.client.request("call", payload, timeout=3)
        assert rig.taps.fired == "dial"
        await _restarted(rig)
        assert rig.modem.call is None  # the new daemon hung the orphan call up

        answer = await rig.client.request("call", payload, timeout=30)
        assert answer["status"] == "error" and answer["code"] == "interrupted", answer
        assert answer["transaction"] == "call-1"
        (booking,) = answer["detail"]["bookings"]
        assert booking["kind"] == "call" and booking["outcome"] is None
        assert booking["charged"] == "in full" and booking["charged_s"] == 5
        assert rig.modem.sim is not None and booking["iccid"] == rig.modem.sim.iccid
        assert len(rig.taps.dials) == 1  # dialled once, not again on the retry
        # The interrupted answer is itself stored: the same, again, without the modem.
        assert await rig.client.request("call", payload, timeout=30) == answer
        assert len(rig.taps.dials) == 1
        # A new transaction is a new call.
        again = {**payload, "max_duration_s": 1, "transaction": "call-2"}
        fresh = await rig.client.request("call", again, timeout=30)
        assert fresh["status"] == "ok", fresh
        assert len(rig.taps.dials) == 2
        assert rig.check_ledger() == []


async def test_an_sms_sent_before_the_kill_is_not_sent_again(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with kill_rig(tmp_path, mosquitto, base_topic, fast_modem(710)) as rig:
        rig.start()
        await rig.ready()
        payload = {"number": "+15550100022", "text": "once only", "transaction": {"id": 7}}
        rig.taps.kill_on = "sms"  # the network took it; the daemon never heard +CMGS
        with pytest.raises(TimeoutError):
            await rig.client.request("sms/send", payload, timeout=3)
        await _restarted(rig)
        answer = await rig.client.request("sms/send", payload, timeout=30)
        assert answer["code"] == "interrupted", answer
        assert answer["transaction"] == {"id": 7}
        assert [b["kind"] for b in answer["detail"]["bookings"]] == ["sms"]
        assert [text for _, _, text in rig.taps.sms] == ["once only"]


async def test_sigkill_mid_switch_leaves_the_sim_identified_by_its_iccid(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with kill_rig(tmp_path, mosquitto, base_topic, fast_modem(720)) as rig:
        rig.start()
        await rig.ready()
        slot1, slot2 = (c.iccid for c in rig.modem.slots if c is not None)
        assert rig.modem_state()["iccid"] == slot1
        payload = {"modem": "m1", "slot": 2, "transaction": "select-1"}
        rig.taps.kill_on = "select"  # slot 2 selected, the radio still off (AT+CFUN=4)
        with pytest.raises(TimeoutError):
            await rig.client.request("sim/select", payload, timeout=3)
        assert rig.modem.active_slot == 2 and rig.modem.cfun == 4
        await _restarted(rig)
        # Read from the card, not assumed from the ledger: slot 2's SIM, radio back on.
        assert rig.modem.cfun == 1
        assert rig.modem_state()["iccid"] == slot2 and rig.modem_state()["active_slot"] == 2
        answer = await rig.client.request("sim/select", payload, timeout=30)
        assert answer["code"] == "interrupted", answer
        assert answer["detail"]["bookings"] == []


async def test_inbound_sms_while_down_and_stored_but_not_deleted_are_kept_once(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    async with kill_rig(tmp_path, mosquitto, base_topic, fast_modem(730)) as rig:
        rig.start()
        await rig.ready()
        assert rig.modem.sim is not None
        iccid = rig.modem.sim.iccid
        card = rig.bank.sim(iccid)
        # Stored in the ledger, then killed at the AT+CMGD: the message stays on the SIM.
        rig.taps.kill_on = "delete"
        rig.bank.send_sms(iccid, "+15550100150", "before the kill")
        async with asyncio.timeout(10):
            while rig.alive:
                await asyncio.sleep(0.01)
        assert rig.stored_inbound() == {"before the kill": 1}
        assert [m.text for m in card.sms.values()] == ["before the kill"]
        # Two more arrive while no daemon listens (no +CMTI will ever be seen for them).
        rig.bank.send_sms(iccid, "+15550100151", "while down 1")
        rig.bank.send_sms(iccid, "+15550100151", "while down 2")
        await _restarted(rig)
        async with asyncio.timeout(10):
            while card.sms:
                await asyncio.sleep(0.05)
        assert rig.stored_inbound() == {"before the kill": 1, "while down 1": 1, "while down 2": 1}
        rows = rig.query("SELECT iccid, sender FROM inbound_sms ORDER BY id")
        assert {r[0] for r in rows} == {iccid}
        # Senders are kept as keyed hashes under the install's secret.
        hasher = DestinationHasher(load_or_create_secret(tmp_path / "state"))
        senders = ["+15550100150", "+15550100151", "+15550100151"]
        assert [r[1] for r in rows] == [hasher.hash(s) for s in senders]
        # And a restart with nothing new stores nothing new.
        rig.kill()
        await _restarted(rig)
        await asyncio.sleep(0.5)
        assert sum(rig.stored_inbound().values()) == 3
        assert rig.check_ledger() == []


async def _kill_loop(
    tmp_path: Path, broker: PrivateMosquitto, base_topic: str, kills: int, policy: Policy
) -> KillLoop:
    seed = int(os.environ.get("SIMBANK_KILL_SEED", str(time.time_ns() % 1_000_000)))
    async with kill_rig(tmp_path, broker, base_topic, fast_modem(800), policy) as rig:
        loop = KillLoop(rig, seed)
        started = time.monotonic()
        every = max(1, kills // 20)
        try:
            for n in range(kills):
                await loop.cycle()
                if (n + 1) % every == 0:
                    print(f"[seed {seed}] {loop.figures.report(time.monotonic() - started)}")
            await loop.finish()
        finally:
            print(f"\n[seed {seed}] {loop.figures.report(time.monotonic() - started)}")
    return loop


def _nothing_lost_or_repeated(loop: KillLoop, kills: int) -> Figures:
    """Every kill done, no ledger problem, no action repeated, no inbound SMS lost or kept
    twice; the figures, for what each test checks besides."""
    figures = loop.figures
    assert figures.kills == kills
    assert figures.problems == []
    assert figures.repeated == 0
    assert figures.inbound_lost == 0 and figures.inbound_duplicated == 0
    return figures


@pytest.mark.timeout(300)
async def test_sigkill_at_random_points_keeps_ledger_identity_and_idempotency(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """The default-suite version: a dozen kills (SIMBANK_KILLS_QUICK, default 12; the soak
    below makes a thousand); a tight call quota, so refusals across restarts are exercised
    too."""
    kills = int(os.environ.get("SIMBANK_KILLS_QUICK", "12"))
    loop = await _kill_loop(tmp_path, mosquitto, base_topic, kills, Policy(calls_per_hour=6))
    figures = _nothing_lost_or_repeated(loop, kills)
    assert figures.retried > 0


@pytest.mark.soak
@pytest.mark.timeout(4 * 3600)
async def test_soak_a_thousand_sigkills(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """``make soak``: 1,000 kills (SIMBANK_KILLS), figures printed (run with ``-s``)."""
    kills = int(os.environ.get("SIMBANK_KILLS", "1000"))
    loop = await _kill_loop(tmp_path, mosquitto, base_topic, kills, Policy(calls_per_hour=150))
    _nothing_lost_or_repeated(loop, kills)
