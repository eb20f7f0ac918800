"""A PBX on the modem's second AT port, end to end: real PTYs, a real mosquitto, real FastAGI.

Each simulated modem has two AT ports on one radio (``ports = 2``): simbankd opens the first,
the test PBX (:class:`simbank.simulator.pbx.Pbx`) dials on the second, as chan_quectel does on
a real stick. ``m1`` (SIMCom SIM7600) sends its unsolicited lines, ``+CLCC`` call reports
included, to simbankd's port; ``m2`` (Quectel EC21) sends them to the PBX's port, so simbankd
sees its calls only by polling ``AT+CLCC``. In one run:

- a call dialled on the second port without asking is booked ``unauthorized`` on the SIM in
  the slot, announced, charged its talk time when it ends and counted in ``sim/report`` — on
  both modems, through both paths;
- Asterisk's side of FastAGI authorizes (device and booking), the PBX dials on that device's
  port, the hangup handler completes: the call is the booking's, never booked twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from bankrig import BankRig, running

from simbank.agi.asterisk import AsteriskPeer
from simbank.bank.usage import UsageKind, UsageRecord
from simbank.config.agi import AgiConfig
from simbank.config.models import ComplianceConfig, PolicyConfig
from simbank.daemon.app import Daemon
from simbank.daemon.commands.pbx import TXN_PREFIX
from simbank.daemon.outbound_calls import unauthorized
from simbank.mosquitto import PrivateMosquitto, free_port
from simbank.simulator import Scenario, SimulatedBank
from simbank.simulator.pbx import Pbx
from simbank.simulator.scenario import ModemSpec, SimSpec, Timing, make_iccid

pytestmark = pytest.mark.integration

FAST = Timing(boot_s=0.3, sim_init_s=0.2, ring_s=0.1, talk_s=600.0, rssi_period_s=5)
POLICY = PolicyConfig(
    quiet_hours=[], min_call_gap_s=0, calls_per_hour=10, calls_per_destination_per_day=5
)
S1, S2, S3 = make_iccid(1801), make_iccid(1802), make_iccid(1803)
DEVICES = {"m1": "simcom0", "m2": "quectel1"}


def scenario(m1_slots: int = 1) -> Scenario:
    def one(iccid: str) -> list[SimSpec]:
        return [SimSpec(iccid=iccid, registration_delay_s=0.1)]

    m1 = one(S1) + (one(S3) if m1_slots == 2 else [])
    return Scenario(
        timing=FAST,
        modems=[
            ModemSpec(id="m1", dialect="simcom", slots=m1, ports=2, urc_port=1),  # type: ignore[arg-type]
            ModemSpec(id="m2", dialect="quectel-ec21", slots=one(S2), ports=2, urc_port=2),  # type: ignore[arg-type]
        ],
    )


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path,
    broker: PrivateMosquitto,
    base: str,
    agi_port: int,
    before: Callable[[SimulatedBank], Awaitable[None]] | None = None,
    *,
    m1_slots: int = 1,
    poll_s: float = 0.2,
) -> AsyncIterator[BankRig]:
    """The gateway over the simulated bank, both modems ready; ``before`` runs on the bank
    before the daemon starts. ``m1_slots``: 2 puts a second SIM in ``m1`` (its inventory
    tour then wants to switch); ``poll_s``: the watch's idle poll (a call listed: 0.2 s)."""

    def fast(daemon: Daemon) -> None:
        for sup in daemon.supervisors.values():
            sup.call_watch.poll_s = poll_s
            sup.call_watch.live_poll_s = 0.2

    async with running(
        tmp_path,
        broker,
        base,
        scenario(m1_slots),
        devices=DEVICES,
        before=before,
        tune=fast,
        policy=POLICY,
        slots={"m1": m1_slots, "m2": 1},  # every slot holds a SIM: no empty slot toured
        compliance=ComplianceConfig(max_call_duration_s=600),
        agi=AgiConfig(enabled=True, port=agi_port),
    ) as bank_rig:
        sups = bank_rig.daemon.supervisors.values()
        await bank_rig.until(lambda: all(s.ready and s.iccid and s.registration for s in sups), 30)
        yield bank_rig


async def talk(pbx: Pbx, number: str, seconds: float) -> None:
    """What chan_quectel does on its port: dial, wait for the answer, talk, hang up."""
    await pbx.dial(number)
    await pbx.wait_connected()
    await asyncio.sleep(seconds)
    await pbx.hangup()


async def test_a_pbx_on_the_second_port_is_seen_booked_or_matched(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    agi_port = free_port()
    async with rig(tmp_path, mosquitto, base_topic, agi_port) as r:
        gw = r.daemon.runtime
        sups = r.daemon.supervisors
        # The SIMCom modem reports calls on simbankd's port; the Quectel one cannot (its URCs
        # go to the PBX's port), so only the poll sees its calls.
        assert r.bank.modems["m1"].urc_port == 1 and r.bank.modems["m2"].urc_port == 2
        driver1 = sups["m1"].driver
        assert driver1 is not None and driver1.capabilities.get("call_reports") is True

        def calls(iccid: str) -> list[UsageRecord]:
            return [u for u in gw.ledger.usage_records(iccid, 0) if u.kind is UsageKind.CALL]

        # 1. Dialled on the second port without asking: booked unauthorized, on both modems.
        for modem, iccid, number in (("m1", S1, "+15550100151"), ("m2", S2, "+15550100152")):
            async with Pbx(r.bank.aux_port(modem)) as pbx:
                await pbx.dial(number)
                await r.until(lambda m=modem: r.events("unauthorized_call", modem=m))  # type: ignore[misc]
                [event] = r.events("unauthorized_call", modem=modem)
                assert event["iccid"] == iccid and number not in str(event)
                [row] = calls(iccid)
                assert unauthorized(row.transaction) and not row.completed
                assert sups[modem].in_call  # no switch under it
                await pbx.wait_connected()
                await asyncio.sleep(0.6)
                await pbx.hangup()
            await r.until(lambda i=iccid: calls(i)[0].completed)
            [row] = calls(iccid)
            assert (
                row.outcome == "completed" and 1 <= row.duration_s < row.reserved_s
            )  # its talk time, not its reservation
            await r.until(lambda m=modem: not sups[m].in_call)  # type: ignore[misc]
            report = await r.request("sim/report", {"iccid": iccid})
            assert report["status"] == "ok", report
            assert report["data"]["calls_unauthorized"] == 1

        # 2. Asked first, over FastAGI: the device's port dials, the call is the booking's.
        granted = await AsteriskPeer().run(agi_port, "authorize", ["+15550100153", "m1", "90"])
        assert granted["SIMBANK_REFUSED"] == "", granted
        assert granted["SIMBANK_DEVICE"] == DEVICES["m1"] and granted["SIMBANK_ICCID"] == S1
        booking = granted["SIMBANK_BOOKING"]
        async with Pbx(r.bank.aux_port("m1")) as pbx:
            await pbx.dial("+15550100153")
            await r.until(lambda: sups["m1"].in_call)
            await pbx.wait_connected()
            await asyncio.sleep(0.6)
            await pbx.hangup()
        await r.until(lambda: not sups["m1"].in_call)
        after_dial = {
            "SIMBANK_BOOKING": booking,
            "DIALSTATUS": "ANSWER",
            "ANSWEREDTIME": "1",
            "HANGUPCAUSE": "16",
        }
        settled = await AsteriskPeer(after_dial).run(agi_port, "complete")
        assert (
            settled.get("SIMBANK_ERROR", "") == "" and settled["SIMBANK_COMPLETED"] == "completed"
        )
        # Seen, matched to its booking, never booked again: two rows on S1, one per call.
        assert len(r.events("unauthorized_call", modem="m1")) == 1
        rows = calls(S1)
        assert [unauthorized(u.transaction) for u in rows] == [True, False]
        assert rows[1].transaction == TXN_PREFIX + booking
        assert rows[1].completed and rows[1].duration_s == 1
        report = await r.request("sim/report", {"iccid": S1})
        assert report["data"]["calls_unauthorized"] == 1


async def test_a_call_up_on_a_pbx_modem_at_start_is_left_up_and_booked(
    tmp_path: Path, mosquitto: PrivateMosquitto, base_topic: str
) -> None:
    """simbankd (re)starts while the PBX talks on ``m1``, a two-slot modem: the call may be
    the PBX's, live on its own port, so simbankd does not hang it up as it would on a modem no
    PBX uses; it asks ``AT+CLCC`` before it identifies the SIM (the idle poll is 30 s away
    here), so the call is known before anything could switch: the inventory tour of the
    other slot, which starts at once, is refused and the call stays up. It is booked (nobody
    authorized it in this run)."""
    ports: list[Pbx] = []

    async def pbx_talking(bank: SimulatedBank) -> None:
        await asyncio.wait_for(bank.modems["m1"].wait_registered(), 20)
        pbx = Pbx(bank.aux_port("m1"))
        await pbx.open()
        ports.append(pbx)
        await pbx.dial("+15550100154")
        await pbx.wait_connected()

    async with rig(
        tmp_path, mosquitto, base_topic, free_port(), before=pbx_talking, m1_slots=2, poll_s=30.0
    ) as r:
        try:
            sup = r.daemon.supervisors["m1"]
            assert sup.in_call  # known by the time the modem is ready
            await r.until(lambda: r.events("unauthorized_call", modem="m1"))
            [event] = r.events("unauthorized_call", modem="m1")
            assert event["iccid"] == S1
            gw = r.daemon.runtime
            # The tour was started when the SIM was read (before ready): it is over, refused.
            await r.until(lambda: not any(t.get_name() == "inventory-m1" for t in gw._background))
            m1 = r.bank.modems["m1"]
            assert m1.call is not None and m1.hangups == []  # still up: not ours to end
            assert sup.active_slot == 1 and sup.in_call
        finally:
            await ports[0].close()
